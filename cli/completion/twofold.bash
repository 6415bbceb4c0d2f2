# SPDX-License-Identifier: MIT
# bash completion for twofold: verbs, sub-verbs, options, settings, and the
# aliases of your contacts (asked of the running node, when there is one).

_twofold_aliases()
{
    local home=()
    [[ -n $1 ]] && home=(--home "$1")
    twofold "${home[@]}" --json contact list 2>/dev/null |
        sed -n 's/^ *"alias": "\(.*\)",\{0,1\}$/\1/p'
}

_twofold()
{
    local cur prev words cword
    _init_completion || return

    local verbs="init id card contact propose intros show withdraw inbox accept decline
        message messages outbox ping status watch policy profile config help"
    local home="" verb="" sub="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --home) home=${words[i + 1]}; ((i++)) ;;
        --json) ;;
        -*) ;;
        *)
            if [[ -z $verb ]]; then verb=${words[i]}
            elif [[ -z $sub ]]; then sub=${words[i]}
            fi
            ;;
        esac
    done

    case $prev in
    --home) _filedir -d; return ;;
    --trust) COMPREPLY=($(compgen -W "close known acquaintance" -- "$cur")); return ;;
    --mode) COMPREPLY=($(compgen -W "parallel sequential" -- "$cur")); return ;;
    --state) COMPREPLY=($(compgen -W "asking introduced declined withdrawn expired" -- "$cur")); return ;;
    --connector) COMPREPLY=($(compgen -W "unknown $(_twofold_aliases "$home")" -- "$cur")); return ;;
    --name | --listen | --advertise | --topic | --note | --note-a | --note-b | --about-a | \
        --about-b | --reason | --alias | --tag | --limit | --after | --before | --since | \
        --expires | --offers | --seeks)
        return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--home --json --help --version" -- "$cur"))
        return
    fi
    case $verb in
    "") COMPREPLY=($(compgen -W "$verbs" -- "$cur")) ;;
    contact)
        if [[ -z $sub ]]; then
            COMPREPLY=($(compgen -W "add list show set rm block unblock" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_twofold_aliases "$home")" -- "$cur"))
        fi
        ;;
    policy) [[ -z $sub ]] && COMPREPLY=($(compgen -W "check reload show test" -- "$cur")) ;;
    profile) [[ -z $sub ]] && COMPREPLY=($(compgen -W "set" -- "$cur")) ;;
    intros | inbox) [[ -z $sub ]] && COMPREPLY=($(compgen -W "rm" -- "$cur")) ;;
    config)
        if [[ -z $sub ]]; then
            COMPREPLY=($(compgen -W "list get set unset" -- "$cur"))
        elif [[ $sub != list && $prev == "$sub" ]]; then
            local h=()
            [[ -n $home ]] && h=(--home "$home")
            COMPREPLY=($(compgen -W "$(twofold "${h[@]}" config list 2>/dev/null |
                awk '{print $1}')" -- "$cur"))
        fi
        ;;
    propose | message | messages | ping)
        COMPREPLY=($(compgen -W "$(_twofold_aliases "$home")" -- "$cur")) ;;
    help) COMPREPLY=($(compgen -W "$verbs" -- "$cur")) ;;
    esac
} &&
    complete -F _twofold twofold

_twofoldd()
{
    local cur prev words cword
    _init_completion || return
    case $prev in
    --home) _filedir -d; return ;;
    --log-level) COMPREPLY=($(compgen -W "error warn info debug" -- "$cur")); return ;;
    esac
    COMPREPLY=($(compgen -W "--home --log-level --help --version" -- "$cur"))
} &&
    complete -F _twofoldd twofoldd
