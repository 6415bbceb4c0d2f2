# SPDX-License-Identifier: MIT
# bash completion for twofold: verbs, sub-verbs, each verb's options (read
# from `twofold help VERB`, so they never go stale), settings, and the
# aliases of your contacts (asked of the running node, when there is one).
# tests/cli/test_completion.py checks the lists below against `twofold help`.

_twofold_aliases()
{
    local home=()
    [[ -n $1 ]] && home=(--home "$1")
    twofold "${home[@]}" --json contact list 2>/dev/null |
        sed -n 's/^ *"alias": "\(.*\)",\{0,1\}$/\1/p'
}

# The options `twofold help VERB [SUB]` documents.
_twofold_options()
{
    twofold help "$@" 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u
}

_twofold_subverbs()
{
    case $1 in
    contact) echo "add list show set rm block unblock" ;;
    intros | inbox) echo "rm" ;;
    requests) echo "show decline withdraw" ;;
    policy) echo "check reload show test" ;;
    profile) echo "set" ;;
    mailbox) echo "host unhost list use status" ;;
    config) echo "list get set unset" ;;
    esac
}

_twofold()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local verbs="help init id card contact propose intros show withdraw inbox accept
        decline message messages outbox ping status watch policy backup restore profile
        web ask requests suggest feedback mailbox config"
    local home="" verb="" sub="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --home) home=${words[i + 1]}; ((i++)) ;;
        -*) ;;
        *)
            if [[ -z $verb ]]; then verb=${words[i]}
            elif [[ -z $sub ]]; then sub=${words[i]}
            fi
            ;;
        esac
    done

    case $prev in
    --home) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --trust) COMPREPLY=($(compgen -W "close known acquaintance" -- "$cur")); return ;;
    --state) COMPREPLY=($(compgen -W "asking introduced declined withdrawn expired" -- "$cur")); return ;;
    --helped) COMPREPLY=($(compgen -W "yes no" -- "$cur")); return ;;
    --connector | --for | --requester)
        COMPREPLY=($(compgen -W "$(_twofold_aliases "$home")" -- "$cur")); return ;;
    --passphrase-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac

    local subs
    subs=$(_twofold_subverbs "$verb")
    if [[ $cur == -* ]]; then
        local known=()
        [[ -n $verb ]] && known=("$verb")
        [[ -n $sub && " $subs " == *" $sub "* ]] && known+=("$sub")
        COMPREPLY=($(compgen -W "--home --json --help --version $(_twofold_options "${known[@]}")" -- "$cur"))
        return
    fi
    case $verb in
    "") COMPREPLY=($(compgen -W "$verbs" -- "$cur")); return ;;
    help)
        if [[ -z $sub ]]; then COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
        elif [[ $prev == "$sub" ]]; then COMPREPLY=($(compgen -W "$(_twofold_subverbs "$sub")" -- "$cur"))
        fi
        return ;;
    backup | restore) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [[ -n $subs && -z $sub ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        return
    fi
    case $verb in
    contact)
        [[ $sub != add && $sub != list ]] &&
            COMPREPLY=($(compgen -W "$(_twofold_aliases "$home")" -- "$cur")) ;;
    mailbox)
        [[ $sub == host || $sub == unhost ]] &&
            COMPREPLY=($(compgen -W "$(_twofold_aliases "$home")" -- "$cur")) ;;
    config)
        if [[ $sub != list && $prev == "$sub" ]]; then
            local h=()
            [[ -n $home ]] && h=(--home "$home")
            COMPREPLY=($(compgen -W "$(twofold "${h[@]}" config list 2>/dev/null |
                awk '{print $1}')" -- "$cur"))
        fi
        ;;
    policy) [[ $sub == check ]] && COMPREPLY=($(compgen -f -- "$cur")) ;;
    propose | message | messages | ping | ask)
        COMPREPLY=($(compgen -W "$(_twofold_aliases "$home")" -- "$cur")) ;;
    esac
} &&
    complete -F _twofold twofold

_twofoldd()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    case $prev in
    --home) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --log-level) COMPREPLY=($(compgen -W "error warn info debug" -- "$cur")); return ;;
    esac
    COMPREPLY=($(compgen -W "--home --log-level --help --version" -- "$cur"))
} &&
    complete -F _twofoldd twofoldd
