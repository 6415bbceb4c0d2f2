# SPDX-License-Identifier: MIT
"""Install and package: a release build of the programs (TF_TEST_HOOKS=OFF,
no tests) is installed into a temporary prefix and the installed programs
introduce two people across three nodes; its systemd units are checked
(systemd-analyze verify where available) and the daemon is run from a
unit's ExecStart line; cpack's .deb is checked with dpkg-deb -c/-I and its
extracted daemon run.  Usage: test_install.py SOURCE_DIR WORK_DIR."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

SRC, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
del sys.argv[1:3]
TREE = os.path.join(WORK, "release")
PREFIX = tempfile.mkdtemp(prefix="tf-install-")
os.environ["TF_TWOFOLD"] = os.path.join(PREFIX, "bin", "twofold")
os.environ["TF_TWOFOLDD"] = os.path.join(PREFIX, "sbin", "twofoldd")
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
from harness import NodeTestCase, wait_for  # noqa: E402

BUILD_TIMEOUT = 1500
EXPECTED = [  # relative to the prefix
    "bin/twofold", "sbin/twofoldd", "share/man/man1/twofold.1", "share/man/man8/twofoldd.8",
    "lib/systemd/system/twofoldd@.service", "lib/systemd/user/twofoldd.service",
    "share/bash-completion/completions/twofold", "share/bash-completion/completions/twofoldd",
    "share/zsh/vendor-completions/_twofold",
    "share/doc/twofold/README.md", "share/doc/twofold/copyright",
    "share/doc/twofold/PROTOCOL.md", "share/doc/twofold/CONTROL.md",
    "share/doc/twofold/POLICY.md",
]
# Debian 12's library packages the programs link against.
DEBIAN_LIBS = ["libsodium23", "libuv1", "liblmdb0", "libmsgpackc2", "libjansson4", "libc6"]


def run(*cmd, **kw):
    r = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(cmd), r.returncode, r.stdout,
                                                         r.stderr))
    return r


def setUpModule():
    # A tree kept between runs, so that a rerun only rebuilds what changed.
    run("cmake", "-S", SRC, "-B", TREE, "-DCMAKE_BUILD_TYPE=Release", "-DTF_TEST_HOOKS=OFF",
        "-DTF_BUILD_TESTS=OFF", "-DCMAKE_INSTALL_PREFIX=/usr", timeout=BUILD_TIMEOUT)
    run("cmake", "--build", TREE, "-j2", timeout=BUILD_TIMEOUT)
    run("cmake", "--install", TREE, "--prefix", PREFIX, timeout=BUILD_TIMEOUT)


def tearDownModule():
    shutil.rmtree(PREFIX, ignore_errors=True)


def exec_start(unit):
    with open(unit) as f:
        lines = [line.strip() for line in f if line.startswith("ExecStart=")]
    assert len(lines) == 1, lines
    return lines[0][len("ExecStart="):].split()


class Installed(NodeTestCase):
    def test_files_and_version(self):
        for rel in EXPECTED:
            self.assertTrue(os.path.exists(os.path.join(PREFIX, rel)), rel)
        self.assertTrue(os.access(os.environ["TF_TWOFOLDD"], os.X_OK))
        out = run(os.environ["TF_TWOFOLDD"], "--version").stdout
        self.assertIn("(test hooks: off)", out)
        # The man pages are well-formed for man(1).
        if shutil.which("man"):
            for page in ("share/man/man1/twofold.1", "share/man/man8/twofoldd.8"):
                r = subprocess.run(["man", "--warnings", "-l", "-Tutf8",
                                    os.path.join(PREFIX, page)],
                                   capture_output=True, text=True, timeout=60,
                                   env=dict(os.environ, MANWIDTH="80"))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn("warning", r.stderr, page)

    def test_installed_programs_make_an_introduction(self):
        carol, alice, bob = (self.node(n, port=True) for n in ("carol", "alice", "bob"))
        for n in (carol, alice, bob):
            n.init()
            n.start()
        carol.cli("contact", "add", alice.card(), "--alias", "alice")
        carol.cli("contact", "add", bob.card(), "--alias", "bob")
        alice.cli("contact", "add", carol.card(), "--alias", "carol")
        bob.cli("contact", "add", carol.card(), "--alias", "carol")
        intro = carol.json("propose", "alice", "bob", "--topic", "real-estate-law")["id"]
        for n in (alice, bob):
            wait_for("the proposal at " + n.name,
                     lambda n=n: any(i["id"] == intro for i in n.json("inbox")), 30)
            n.cli("accept", intro)
        wait_for("Alice and Bob introduced",
                 lambda: len(alice.json("contact", "list")) == 2
                 and len(bob.json("contact", "list")) == 2, 60)
        names = sorted(c["name"] for c in alice.json("contact", "list"))
        self.assertEqual(names, ["Bob", "Carol"])

    def test_units(self):
        for unit in ("lib/systemd/system/twofoldd@.service", "lib/systemd/user/twofoldd.service"):
            path = os.path.join(PREFIX, unit)
            self.assertEqual(exec_start(path), [os.path.join(PREFIX, "sbin", "twofoldd")])
            with open(path) as f:
                text = f.read()
            self.assertIn("Type=notify", text)
            self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", text)
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed: units not verified")
        work = tempfile.mkdtemp(prefix="tf-units-")
        self.addCleanup(shutil.rmtree, work, True)
        # verify wants an instance of the template.
        shutil.copy(os.path.join(PREFIX, "lib/systemd/system/twofoldd@.service"),
                    os.path.join(work, "twofoldd@root.service"))
        shutil.copy(os.path.join(PREFIX, "lib/systemd/user/twofoldd.service"), work)
        for name in ("twofoldd@root.service", "twofoldd.service"):
            r = subprocess.run([analyze, "verify", "--man=no", os.path.join(work, name)],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, "%s: %s%s" % (name, r.stdout, r.stderr))
            self.assertNotIn(name, r.stderr, r.stderr)  # no complaint about the unit itself

    def test_daemon_runs_from_the_units_exec_start(self):
        """ExecStart (with HOME and NOTIFY_SOCKET set, as systemd does for a
        Type=notify unit with User=) runs the node on the user's default
        home, and it reports READY=1."""
        home_dir = tempfile.mkdtemp(prefix="tf-user-")
        self.addCleanup(shutil.rmtree, home_dir, True)
        env = dict(os.environ, HOME=home_dir)
        for k in ("TWOFOLD_HOME", "XDG_DATA_HOME"):
            env.pop(k, None)
        home = os.path.join(home_dir, ".local/share/twofold")
        run(os.environ["TF_TWOFOLD"], "init", "--name", "Unit", "--listen",
            "127.0.0.1:%d" % free_port(), env=env)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(os.path.join(home_dir, "notify"))
        notify.settimeout(30)
        self.addCleanup(notify.close)
        env["NOTIFY_SOCKET"] = os.path.join(home_dir, "notify")
        cmd = exec_start(os.path.join(PREFIX, "lib/systemd/system/twofoldd@.service"))
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            got = notify.recv(4096).decode()
            self.assertIn("READY=1", got.split("\n"))
            self.assertIn("control %s/control.sock" % home, got)
            out = run(os.environ["TF_TWOFOLD"], "--json", "status", env=env).stdout
            self.assertIn('"contacts": 0', out)
        finally:
            proc.terminate()
            log, _ = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, log)
        self.assertIn("STOPPING=1", notify.recv(4096).decode())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        return s.getsockname()[1]
    finally:
        s.close()


class Package(unittest.TestCase):
    def test_deb(self):
        for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps"):
            if shutil.which(tool) is None:
                self.skipTest("%s is not installed (dpkg-dev): no .deb built" % tool)
        for old in os.listdir(TREE):
            if old.endswith(".deb"):
                os.remove(os.path.join(TREE, old))
        run("cpack", "-G", "DEB", cwd=TREE, timeout=BUILD_TIMEOUT)
        debs = [f for f in os.listdir(TREE) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, debs)
        deb = os.path.join(TREE, debs[0])
        self.assertRegex(debs[0], r"^twofold_\d+\.\d+\.\d+_[a-z0-9]+\.deb$")
        listing = run("dpkg-deb", "-c", deb).stdout
        files = {line.split()[5].lstrip(".") for line in listing.splitlines()}
        for rel in EXPECTED:
            self.assertIn("/usr/" + rel, files, listing)
        # Nothing outside /usr, and no test or build leftovers.
        self.assertTrue(all(f.startswith("/usr/") or f == "/" for f in files), files)
        self.assertFalse([f for f in files if "tf-" in f or "test" in f.lower()], files)
        info = run("dpkg-deb", "-I", deb).stdout
        fields = dict(line.strip().split(": ", 1) for line in info.splitlines()
                      if ": " in line and line.startswith(" ") and not line.startswith("  "))
        self.assertEqual(fields.get("Package"), "twofold", info)
        self.assertEqual(fields.get("Section"), "net", info)
        self.assertTrue(fields.get("Maintainer"), info)
        depends = [d.split()[0] for d in fields.get("Depends", "").split(", ")]
        for lib in DEBIAN_LIBS:
            self.assertIn(lib, depends, info)
        self.assertIn("postinst", info)
        self.assertIn("postrm", info)
        # The packaged programs and units, extracted (not installed on this
        # machine): the daemon is a release build, the units name /usr/sbin.
        root = tempfile.mkdtemp(prefix="tf-deb-")
        self.addCleanup(shutil.rmtree, root, True)
        run("dpkg-deb", "-x", deb, root)
        out = run(os.path.join(root, "usr/sbin/twofoldd"), "--version").stdout
        self.assertIn("(test hooks: off)", out)
        self.assertEqual(exec_start(os.path.join(root, "usr/lib/systemd/system/twofoldd@.service")),
                         ["/usr/sbin/twofoldd"])
        ctl = run("dpkg-deb", "-e", deb, os.path.join(root, "DEBIAN"))
        del ctl
        for script in ("postinst", "postrm"):
            path = os.path.join(root, "DEBIAN", script)
            self.assertTrue(os.access(path, os.X_OK), script)
            run("sh", "-n", path)


if __name__ == "__main__":
    unittest.main()
