# SPDX-License-Identifier: MIT
"""The bash and zsh completions (cli/completion) against the CLI itself.

Each completion function is called outside a terminal: bash's with
COMP_WORDS/COMP_CWORD set, reading COMPREPLY; zsh's with words/CURRENT set
and compadd replaced by a function that prints the words that start with
the word being completed.  The verbs and
sub-verbs they offer must be exactly those `twofold help` lists, and the
options of a verb those `twofold help VERB` documents.

usage: test_completion.py TWOFOLD COMPLETION_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

TWOFOLD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "twofold"
DIR = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "cli/completion"
ENV = dict(os.environ, PATH=os.path.dirname(TWOFOLD) + os.pathsep + os.environ["PATH"],
           TWOFOLD_HOME="/nonexistent/twofold-completion-test")


def cli_help(*words):
    r = subprocess.run([TWOFOLD, "help", *words], capture_output=True, text=True, env=ENV,
                       timeout=30)
    return r.returncode, r.stdout + r.stderr


def commands():
    """{verb: [sub-verbs]} from `twofold help`: a line's second word is a
    sub-verb when `twofold help VERB SUB` is that sub-verb's help."""
    code, text = cli_help()
    assert code == 0, text
    section = text.split("verbs:\n", 1)[1].split("\n\n", 1)[0]
    out = {}
    for line in section.splitlines():
        words = line.split()
        verb = words[0]
        out.setdefault(verb, [])
        if len(words) > 1:
            code, sub_help = cli_help(verb, words[1])
            if code == 0 and sub_help.startswith("usage: twofold %s %s" % (verb, words[1])):
                out[verb].append(words[1])
    return out


def options(*words):
    _, text = cli_help(*words)
    return set(re.findall(r"--[a-z][a-z0-9-]*", text))


def bash(*words):
    """What bash completion offers for `twofold WORDS...` (the last word
    being the one completed)."""
    script = ('source %s/twofold.bash\nCOMP_WORDS=("$@")\nCOMP_CWORD=$(($# - 1))\n'
              '_%s\nprintf "%%s\\n" "${COMPREPLY[@]}"\n') % (DIR, words[0])
    r = subprocess.run(["bash", "--norc", "-c", script, "bash", *words], capture_output=True,
                       text=True, env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    return set(w for w in r.stdout.split("\n") if w)


def zsh(*words):
    """What zsh completion offers for `twofold WORDS...`."""
    script = ('source %s/_twofold >/dev/null 2>&1\n'
              # compadd keeps the words that start with what was typed.
              'compadd() { [[ $1 == -- ]] && shift; local w p=$words[CURRENT]\n'
              '  for w in "$@"; do [[ ${w[1,$#p]} == "$p" ]] && print -r -- $w; done; true }\n'
              '_files() { print "<files>" }\n_directories() { print "<directories>" }\n'
              'words=("$@"); CURRENT=$#; service=$1\n_twofold\n') % DIR
    r = subprocess.run(["zsh", "-f", "-c", script, "zsh", *words], capture_output=True,
                       text=True, env=ENV, timeout=60)
    assert r.returncode in (0, 1), r.stderr
    return set(w for w in r.stdout.split("\n") if w)


GLOBAL = {"--home", "--json", "--help", "--version"}


class Completion:
    """The checks, run once per shell (complete is bash or zsh)."""

    def test_every_verb_and_only_verbs(self):
        self.assertEqual(self.complete("twofold", ""), set(self.cmds))
        self.assertEqual(self.complete("twofold", "--home", "/tmp", ""), set(self.cmds))
        self.assertEqual(self.complete("twofold", "help", ""), set(self.cmds))
        self.assertEqual(self.complete("twofold", "re"), {"restore", "requests"})

    def test_every_sub_verb(self):
        with_subs = {v: s for v, s in self.cmds.items() if s}
        self.assertGreaterEqual(len(with_subs), 7, with_subs)
        for verb, subs in with_subs.items():
            self.assertEqual(self.complete("twofold", verb, ""), set(subs), verb)
            self.assertEqual(self.complete("twofold", "help", verb, ""), set(subs), verb)

    def test_a_verbs_options_come_from_its_help(self):
        for words in (["propose"], ["mailbox", "host"], ["ask"], ["backup"], ["contact", "set"]):
            want = options(*words) | GLOBAL
            self.assertIn("--help", want)
            self.assertGreater(len(want), len(GLOBAL), words)
            self.assertEqual(self.complete("twofold", *words, "--"), want, words)
        self.assertEqual(self.complete("twofold", "propose", "--to"), {"--topic"})

    def test_values_of_options(self):
        self.assertEqual(self.complete("twofold", "contact", "set", "x", "--trust", ""),
                         {"close", "known", "acquaintance"})
        self.assertEqual(self.complete("twofold", "feedback", "abc", "--helped", ""),
                         {"yes", "no"})
        self.assertEqual(self.complete("twofoldd", "--log-level", ""),
                         {"error", "warn", "info", "debug"})
        self.assertEqual(self.complete("twofoldd", ""),
                         {"--home", "--log-level", "--help", "--version"})

    def test_settings_of_config(self):
        with tempfile.TemporaryDirectory() as root:
            home = os.path.join(root, "home")
            r = subprocess.run([TWOFOLD, "--home", home, "init", "--name", "Test"],
                               capture_output=True, text=True, env=ENV, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = subprocess.run([TWOFOLD, "--home", home, "config", "list"],
                               capture_output=True, text=True, env=ENV, timeout=60)
            keys = set(line.split()[0] for line in r.stdout.splitlines() if line.strip())
            self.assertIn("retry_max_ms", keys)
            self.assertEqual(self.complete("twofold", "--home", home, "config", "get", ""), keys)
            self.assertEqual(self.complete("twofold", "--home", home, "config", "set", "retry_"),
                             set(k for k in keys if k.startswith("retry_")))


class Bash(Completion, unittest.TestCase):
    cmds = None

    @classmethod
    def setUpClass(cls):
        cls.cmds = commands()

    def complete(self, *words):
        return bash(*words)


class Zsh(Completion, unittest.TestCase):
    cmds = None

    @classmethod
    def setUpClass(cls):
        if shutil.which("zsh") is None:
            raise AssertionError("zsh is not installed (./dev installs it)")
        cls.cmds = commands()

    def complete(self, *words):
        return zsh(*words)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
