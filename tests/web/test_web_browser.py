# SPDX-License-Identifier: MIT
"""The web page in a real browser: three real nodes (Carol the connector,
Alice and Bob), each with `twofold web`, driven by browser/scenario.mjs in
Debian's headless Chromium through playwright-core.  Carol proposes from her
page, Bob declines and Alice accepts from theirs, then a second intro is
accepted by both; the pages update without a reload; peer-written <script>
and bidi text render inert.  Screenshots at desktop and phone widths go to
TF_WEB_ARTIFACTS.

playwright-core is installed from npm at test time into TF_WEB_NPM (never at
build time, and no browser is downloaded) with `npm ci --ignore-scripts`:
the versions and integrity hashes of browser/package-lock.json, no install
scripts.  Without Chromium, node, npm or
the npm registry the test is skipped (exit 77), saying why.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from webharness import Web  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from test_intro import IntroTestCase  # noqa: E402

SKIP = 77
PLAYWRIGHT = "1.65.2"  # browser/package.json
NODE_MIN = 20  # its "engines" in browser/package-lock.json
CHROMIUM = os.environ.get("TF_CHROMIUM", "/usr/bin/chromium")
NPM_DIR = os.environ.get("TF_WEB_NPM", os.path.join(HERE, "node_modules_build"))
ARTIFACTS = os.environ.get("TF_WEB_ARTIFACTS", os.path.join(NPM_DIR, "artifacts"))
HOSTILE = {
    "note": '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
            '<b class="hostile">bold</b> &amp; "quotes"',
    "bidi": "\u202egnp.exe\u202c invoice \u2067\u05e9\u05dc\u05d5\u05dd\u2069",
}


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def prepare():
    """Checks the tools and installs playwright-core; returns the directory
    that holds it (and a copy of the scenario)."""
    if not os.access(CHROMIUM, os.X_OK):
        skip("no Chromium at %s (Debian package chromium)" % CHROMIUM)
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            skip("no %s on PATH" % tool)
    v = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    if not v.startswith("v") or int(v[1:].split(".")[0]) < NODE_MIN:
        skip("playwright-core %s needs Node.js %d or later, not %s" % (
            PLAYWRIGHT, NODE_MIN, v or "unknown"))
    os.makedirs(NPM_DIR, exist_ok=True)
    for f in ("package.json", "package-lock.json", "scenario.mjs", "load.mjs"):
        shutil.copy(os.path.join(HERE, "browser", f), NPM_DIR)
    # What the last successful install used: install again when the lock
    # file changed.
    stamp = os.path.join(NPM_DIR, "installed-package-lock.json")
    with open(os.path.join(NPM_DIR, "package-lock.json"), "rb") as f:
        lock = f.read()
    installed = None
    if os.path.exists(stamp):
        with open(stamp, "rb") as f:
            installed = f.read()
    if installed != lock or not os.path.isdir(os.path.join(NPM_DIR, "node_modules",
                                                           "playwright-core")):
        # Exactly the locked versions, checked against the lock file's
        # integrity hashes, and no package's install scripts run.
        env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
        try:
            r = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                                "--loglevel=error"],
                               cwd=NPM_DIR, env=env, capture_output=True, text=True,
                               timeout=600)
        except subprocess.TimeoutExpired:
            skip("npm ci of playwright-core took over 10 min")
        if r.returncode != 0:
            skip("npm ci of playwright-core failed (registry unreachable?): " +
                 r.stderr.strip()[-500:])
        with open(stamp, "wb") as f:
            f.write(lock)
    return NPM_DIR


class WebBrowser(IntroTestCase):
    def setUp(self):
        super().setUp()
        self.webs = []

    def tearDown(self):
        # twofold web must stop cleanly (exit 0; under the sanitizers this
        # also catches leaks and memory errors).
        codes = [(w.stop(), w.stderr) for w in self.webs]
        super().tearDown()
        for rc, err in codes:
            self.assertEqual(rc, 0, "twofold web exited %d: %s" % (rc, err[-2000:]))

    def test_three_people_in_the_browser(self):
        npm_dir = prepare()
        # Carol knows Alice ("alice") and Bob ("bob"); they know her ("carol").
        nodes = self.cast()
        carol, alice, bob = nodes
        # A policy file with an error on line 2, for the policy page to show.
        with open(os.path.join(carol.home, "policy"), "w") as f:
            f.write("ask\nfrobnicate when topic is rust\n")
        cfg = {"chromium": CHROMIUM, "artifacts": ARTIFACTS, "hostile": HOSTILE,
               "restart_request": os.path.join(self.root, "restart-carol"),
               "propose_request": os.path.join(self.root, "propose-after-restart"),
               "stranger_request": os.path.join(self.root, "stranger-proposes")}
        for n in nodes:
            w = Web(n)
            self.webs.append(w)
            cfg[n.name] = {"url": w.url}
        os.makedirs(ARTIFACTS, exist_ok=True)
        cfg_path = os.path.join(self.root, "browser.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        proc = subprocess.Popen(["node", os.path.join(npm_dir, "scenario.mjs"), cfg_path],
                                cwd=npm_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        restarted = proposed = stranger = False
        deadline = time.monotonic() + 900
        while proc.poll() is None and time.monotonic() < deadline:
            if not restarted and os.path.exists(cfg["restart_request"]):
                # Down longer than the page's first retry (3 s): that retry
                # fails and the page must try again by itself.
                # The broken policy would keep the node from starting.
                carol.stop()
                os.remove(os.path.join(carol.home, "policy"))
                time.sleep(6)
                carol.start()
                restarted = True
            if not proposed and os.path.exists(cfg["propose_request"]):
                carol.cli("propose", "alice", "bob", "--topic", "after-restart")
                proposed = True
            if not stranger and os.path.exists(cfg["stranger_request"]):
                self.stranger_proposes(alice, bob)
                stranger = True
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
        print(out)
        print(err, file=sys.stderr)
        self.assertEqual(proc.returncode, 0, "the browser scenario failed")
        self.assertTrue(restarted and proposed and stranger)
        ids = json.loads(out.strip().splitlines()[-1])
        # The nodes agree with what the pages showed.
        self.assertEqual(carol.json("show", ids["first"])["state"], "declined")
        self.assertEqual(carol.json("show", ids["second"])["state"], "introduced")
        names = [c["name"] for c in alice.json("contact", "list")]
        self.assertIn("Bob", names)
        shots = sorted(f for f in os.listdir(ARTIFACTS) if f.endswith(".png"))
        self.assertIn("propose-phone.png", shots)
        self.assertIn("inbox-desktop.png", shots)
        print("screenshots in %s: %s" % (ARTIFACTS, ", ".join(shots)))

    def stranger_proposes(self, alice, bob):
        """Mallory, whose card calls her "carol" (Alice's alias for Carol)
        and whom Alice does not know, introduces Alice and Bob."""
        mallory = self.node("mallory", port=True)
        mallory.init("carol")
        mallory.start()
        mallory.cli("contact", "add", alice.card(), "--alias", "a")
        mallory.cli("contact", "add", bob.card(), "--alias", "b")
        mallory.cli("propose", "a", "b", "--topic", "from-a-stranger")


if __name__ == "__main__":
    if os.environ.get("TF_WEB_SKIP_BROWSER"):
        skip("TF_WEB_SKIP_BROWSER is set")
    unittest.main()
