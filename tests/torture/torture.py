#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Crash torture (issue 8): real twofoldd nodes on loopback, a seeded
workload of introductions among them, nodes killed with kill -9 and
restarted at random moments, one node SIGSTOPped for a while (a hung peer);
when the workload has drained, an independent checker (checker.py) reads
every node's state and verifies invariants 1-3 of issue 8, counting lost,
duplicated and unwarranted introductions.  All counts must be zero.

    torture.py --short              the CI version (well under 3 minutes)
    torture.py --long               the release check (>= 30 kills, >= 500 intros)
    torture.py --seed S [...]       replay a run's plan (printed at the start)
    torture.py --power --short      power-loss mode, the CI version (about a minute)
    torture.py --power --long       power-loss mode, the release check (>= 1,000 cuts)
    torture.py --mailbox --short    mailbox mode, the CI version (composes with --power)

In mailbox mode (--mailbox) a further node, "mb", runs a mailbox: it takes
no part in the introductions, hosts --tenants of the nodes (default 2,
drawn from the seed), and is killed like the others.  The tenants run with
no_listen = 1 and list mb on their cards (`mailbox use`); the first one
advertises no address of its own, the others an address where nothing
listens, so that everything sent to a tenant is carried by mb (or by a link
the tenant made itself).  mb logs at debug level; the run fails if it held
no envelope, and it has not settled until mb holds nothing.  The checker
reads only the nodes of the plan, as in the other modes.

In power-loss mode (--power) every node's home is on its own tf-plfs mount
(tests/powerloss/plfs.c, from TF_PLFS) and every kill is a power cut: the
node's unsynced writes are lost (all of them, or all but a torn last write,
or all but a random share, drawn per cut; half of the cuts wait for the
node's next commit and land inside it), the file system is remounted on
what survived and the node restarted on it; a node that dies on the crash
hook loses its unsynced writes too.  It needs root, /dev/fuse and
fusermount3, and exits 77 (skipped) without them.

Options override the preset: --nodes, --intros, --kills, --stops,
--duration (seconds of workload), --drain (seconds allowed to settle),
--idle-expiry (seconds, for the intros left to expire), --hook-rate (share
of restarts armed with TWOFOLD_TEST_CRASH=after-receive-commit, which kills
the node right after it commits a received envelope, before its ACK).
--json prints a JSON summary on stdout; --keep keeps the homes and logs.

The seed fixes the plan (contacts, policies, intros, answers) and the chaos
schedule (when and whom to kill); the interleaving with the nodes' own
timers still varies from run to run.

Binaries: TF_TWOFOLDD and TF_TWOFOLD (as ctest sets them), else twofoldd
and twofold on PATH.  Needs mdb_dump (lmdb-utils), python3-nacl and
python3-msgpack.  Exit status 0 only if every count is zero and every node
restarted and stopped cleanly.
"""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checker import Checker, read_store, self_test  # noqa: E402
from cluster import Chaos, NodeFailure, Refused, TortureNode, Unavailable  # noqa: E402
from plfs import SKIP, unavailable  # noqa: E402
from workload import Driver, Plan  # noqa: E402

PRESETS = {
    "short": dict(nodes=5, intros=300, kills=12, stops=1, duration=60, drain=60,
                  idle_expiry=20, hook_rate=0.15),
    "long": dict(nodes=6, intros=800, kills=40, stops=3, duration=300, drain=180,
                 idle_expiry=30, hook_rate=0.15),
    # Power-loss mode: kills are power cuts, many more of them.
    # The intros left to expire live 30 s: an answer must get through the
    # cuts (and a slow sanitizer build) before that, or the checker sees an
    # expiry where the plan says declined.
    "power-short": dict(nodes=4, intros=120, kills=40, stops=0, duration=30, drain=60,
                        idle_expiry=30, hook_rate=0.1),
    "power-long": dict(nodes=6, intros=1500, kills=1000, stops=2, duration=600, drain=240,
                       idle_expiry=30, hook_rate=0.1),
}
# How a power cut treats the unsynced writes (tests/powerloss/plfs.c), drawn
# per cut: at once, with all lost, a torn last write, or each page kept at
# random; or inside the node's next commit (cluster.ARMED_CUTS).
POWER_MODES = ("all", "tear", "any 50", "at-data-sync", "between-syncs", "after-meta")
POWER_DOWNTIME = (0.0, 0.2)
# Mailbox mode: the mailbox node's name, and how long the tenants may take
# to link to it at the start.
MAILBOX_NODE = "mb"
MAILBOX_LINK_WAIT = 30.0
# A restarted peer is retried within a second; closes caused by a decline or
# a withdrawal wait 0-1 s (the default is 1-24 h).
NODE_CONFIG = {"retry_max_ms": 1000, "close_delay_min_s": 0, "close_delay_max_s": 1,
               "mailbox_retry_max_ms": 1000}
DOWNTIME = (0.0, 1.0)  # seconds a killed node stays down
STOP_SECONDS = (3.0, 6.0)  # how long a SIGSTOPped node hangs


def log(msg, t0=[None]):
    if t0[0] is None:
        t0[0] = time.monotonic()
    sys.stderr.write("[%7.2f] %s\n" % (time.monotonic() - t0[0], msg))
    sys.stderr.flush()


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="the CI preset (default)")
    ap.add_argument("--long", action="store_true", help="the release-check preset")
    ap.add_argument("--seed", type=int, help="default: random (printed)")
    for key in ("nodes", "intros", "kills", "stops", "duration", "drain", "idle_expiry"):
        ap.add_argument("--" + key.replace("_", "-"), type=int, dest=key)
    ap.add_argument("--hook-rate", type=float, dest="hook_rate")
    ap.add_argument("--power", action="store_true",
                    help="power-loss mode: homes on tf-plfs, kills are power cuts")
    ap.add_argument("--mailbox", action="store_true",
                    help="mailbox mode: some nodes do not listen; a mailbox node carries "
                    "their envelopes")
    ap.add_argument("--tenants", type=int, default=2,
                    help="mailbox mode: how many nodes use the mailbox (default 2)")
    ap.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    ap.add_argument("--keep", action="store_true", help="keep the homes and logs")
    args = ap.parse_args(argv)
    args.preset = ("power-" if args.power else "") + ("long" if args.long else "short")
    preset = dict(PRESETS[args.preset])
    for key in preset:
        if getattr(args, key) is not None:
            preset[key] = getattr(args, key)
    if preset["nodes"] < 4:
        ap.error("--nodes must be at least 4 (a connector and two contacts, plus strangers)")
    if args.mailbox and not 1 <= args.tenants <= preset["nodes"]:
        ap.error("--tenants must be between 1 and the number of nodes")
    args.cfg = preset
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2 ** 31)
    return args


def chaos_schedule(seed, cfg, n_nodes, power=False):
    """(t, kind, node, param) events: the kills spread over the workload,
    the stops in its middle."""
    rng = random.Random(seed * 7919 + 1)
    events = []
    for _ in range(cfg["kills"]):
        t = rng.uniform(1.0, cfg["duration"])
        param = (rng.uniform(*(POWER_DOWNTIME if power else DOWNTIME)),
                 rng.random() < cfg["hook_rate"])
        if power:
            param += (rng.choice(POWER_MODES),)
        events.append((t, "kill", rng.randrange(n_nodes), param))
    for _ in range(cfg["stops"]):
        t = rng.uniform(0.2, 0.7) * cfg["duration"]
        events.append((t, "stop", rng.randrange(n_nodes), rng.uniform(*STOP_SECONDS)))
    return sorted(events)


def draw_tenants(seed, names, count):
    """Mailbox mode: the nodes that use the mailbox, drawn from the seed."""
    return sorted(random.Random(seed * 104729 + 3).sample(names, count))


def setup(root, plan, nodes, power_seed=None, tenants=None):
    """Initialises and starts every node (into nodes, a dict, so that the
    caller can stop them whatever happens) with its policy, and exchanges
    the cards as planned (friends tagged).  power_seed: power-loss mode.
    tenants: mailbox mode, the nodes the mailbox node hosts (they do not
    listen and list it on their cards before the cards are exchanged)."""
    names = list(plan.names) + ([MAILBOX_NODE] if tenants else [])
    for i, name in enumerate(names):
        n = TortureNode(root, name, None if power_seed is None else power_seed + 1000 * i,
                        log_level="debug" if name == MAILBOX_NODE else "info")
        n.init(dict(NODE_CONFIG, no_listen=1) if tenants and name in tenants else NODE_CONFIG)
        if name in plan.policies:
            n.write_policy(plan.policies[name])
        nodes[name] = n
    for n in nodes.values():
        n.start()
    if tenants:
        use_mailbox(nodes, tenants)
    cards = {name: nodes[name].card() for name in plan.names}
    for name in plan.names:
        n = nodes[name]
        for other in plan.knows[name]:
            extra = ["--tag", "friend"] if other in plan.friends[name] else []
            n.must("contact", "add", cards[other], "--alias", other, *extra)
    return nodes


def use_mailbox(nodes, tenants):
    """Mailbox mode: the mailbox node hosts each tenant, the tenant lists it
    on its card (the first tenant with no address of its own), and every
    tenant's link to it comes up."""
    mb = nodes[MAILBOX_NODE]
    mb_card = mb.card()
    for i, name in enumerate(tenants):
        n = nodes[name]
        if i == 0:
            n.must("profile", "set", "--advertise", "")
        mb.must("contact", "add", n.card(), "--alias", name)
        mb.must("mailbox", "host", name)
        n.must("mailbox", "use", mb_card)
    deadline = time.monotonic() + MAILBOX_LINK_WAIT
    for name in tenants:
        n = nodes[name]
        while not all(m["connected"] for m in
                      n.call_retry("mailbox", "status", deadline=deadline)["mailboxes"]):
            if time.monotonic() >= deadline:
                raise NodeFailure("%s did not link to its mailbox within %.0fs" % (
                    name, MAILBOX_LINK_WAIT))
            time.sleep(0.1)
        st = n.call_retry("mailbox", "status", deadline=deadline)
        if st["listening"] or len(st["mailboxes"]) != 1:
            raise NodeFailure("%s: mailbox status %s" % (name, st))


def unsettled(nodes, deadline):
    """None if nothing is in flight (every outbox empty, no intro asking, no
    inbox item pending or accepted, no envelope held by a mailbox), else
    what still is."""
    mb = nodes.get(MAILBOX_NODE)
    if mb is not None:
        held = [t for t in mb.call_retry("mailbox", "list", deadline=deadline)["tenants"]
                if t["envelopes"]]
        if held:
            return "the mailbox holds %d envelopes for %s" % (held[0]["envelopes"],
                                                               held[0]["alias"])
    for name, n in nodes.items():
        out = n.call_retry("outbox", deadline=deadline)
        if out:
            return "%s's outbox holds %d (%s to %s)" % (name, len(out), out[0]["type"],
                                                        out[0]["alias"])
        asking = n.list_all("intros", "--state", "asking", deadline=deadline)
        if asking:
            return "%s has %d intros asking (%s)" % (name, len(asking), asking[0]["topic"])
        items = [i for i in n.list_all("inbox", "--all", deadline=deadline)
                 if i["state"] in ("pending", "accepted")]
        if items:
            return "%s has %d inbox items %s (%s)" % (name, len(items), items[0]["state"],
                                                      items[0]["topic"])
    return None


def drain(nodes, driver, seconds):
    """Waits (answering late asks) until settled twice in a row; returns
    the seconds it took, or None if it did not settle in time."""
    t0 = time.monotonic()
    deadline = t0 + seconds
    streak, last_note = 0, t0
    while time.monotonic() < deadline:
        driver.answer_asks()
        try:
            why = unsettled(nodes, deadline)
        except Unavailable as e:
            why = str(e)
        streak = streak + 1 if why is None else 0
        if streak >= 2:
            return time.monotonic() - t0
        if why is not None and time.monotonic() - last_note >= 5:
            log("drain: waiting: " + why)
            last_note = time.monotonic()
        time.sleep(0.5)
    return None


def snapshot(nodes):
    """Each node's state through the CLI, while it runs."""
    deadline = time.monotonic() + 60
    out = {}
    for name, n in nodes.items():
        out[name] = {"intros": n.list_all("intros", deadline=deadline),
                     "inbox": n.list_all("inbox", "--all", deadline=deadline),
                     "contacts": n.call_retry("contact", "list", deadline=deadline),
                     "outbox": n.call_retry("outbox", deadline=deadline)}
    return out


def stop_all(nodes):
    """SIGTERM to every node; the names of those that did not exit 0."""
    unclean = []
    for name, n in nodes.items():
        try:
            rc = n.stop()
        except NodeFailure as e:
            unclean.append("%s (%s)" % (name, e))
            continue
        if rc != 0:
            unclean.append("%s (exit %s; log tail:\n%s)" % (name, rc, n.log_tail()))
    return unclean


def work(nodes, plan, args, summary, failures):
    """Runs the workload under chaos and waits for the nodes to settle;
    stops the chaos.  Returns the driver and the chaos thread."""
    cfg = args.cfg
    order = [nodes[name] for name in plan.names]
    if MAILBOX_NODE in nodes:
        order.append(nodes[MAILBOX_NODE])
    chaos = Chaos(order, chaos_schedule(args.seed, cfg, len(order), args.power), log)
    driver = Driver(plan, nodes, chaos, log)
    chaos.start()
    try:
        t0 = time.monotonic()
        if not driver.run(cfg["duration"], t0 + cfg["duration"] * 2 + 60):
            failures.append("the workload did not finish in time")
        chaos.schedule_done.wait(cfg["duration"] + 120)
        log("workload: %d proposed, %d refused, %d withdrawals, %d owner answers (%.1fs)" % (
            len(driver.ids), len(driver.refused), sum(driver.withdrawn.values()),
            len(driver.answered), time.monotonic() - t0))
        allowed = cfg["drain"] + cfg["idle_expiry"]
        drained = drain(nodes, driver, allowed)
        if drained is None:
            failures.append("the nodes did not settle within %ds" % allowed)
        else:
            log("drain: settled in %.1fs" % drained)
        summary["drain_s"] = None if drained is None else round(drained, 1)
    finally:
        chaos.quit()
    failures += ["chaos: " + f for f in chaos.failures]
    if driver.refused:
        failures.append("%d proposals refused: %s" % (
            len(driver.refused), sorted(set(driver.refused.values()))))
    summary.update({"kills": chaos.kills, "hook_crashes": chaos.hook_crashes,
                    "power_cuts": sum(n.power_cuts for n in nodes.values()),
                    "armed_cuts": sum(n.armed_cuts for n in nodes.values()),
                    "lazy_unmounts": sum(n.fs.lazy_unmounts for n in nodes.values()
                                         if n.fs is not None),
                    "stops": chaos.stops, "stopped_s": round(chaos.stopped_s, 1),
                    "driver": driver.counts})
    mb = nodes.get(MAILBOX_NODE)
    if mb is not None:
        held = mb.log_count(": holding ")
        summary["mailbox"] = {"tenants": args.tenants_drawn, "held": held,
                              "kills": sum(1 for _, kind, i, _ in chaos.schedule
                                           if kind == "kill" and order[i] is mb)}
        if held == 0:
            failures.append("mailbox mode: the mailbox held no envelope")
    return driver


def check(nodes, plan, driver, summary, failures):
    """Reads every node (CLI, then the stopped stores), runs the checker
    and its self-test."""
    ids = {name: nodes[name].text_id for name in plan.names}
    cli = snapshot({name: nodes[name] for name in plan.names})
    failures += ["did not stop cleanly: " + u for u in stop_all(nodes)]
    stores = {name: read_store(nodes[name].home) for name in plan.names}
    ledger = driver.results()
    checker = Checker(ids, plan.knows, cli, stores, ledger)
    report = checker.run()
    summary.update({
        "intros": {"planned": len(plan.intros), "proposed": len(driver.ids),
                   "refused": len(driver.refused), **checker.outcomes},
        "counts": report.counts, "checked": report.stats, "invariant3": checker.invariant3,
        "findings": report.findings})
    if not report.ok():
        failures.append("checker: " + ", ".join("%s %d" % kv for kv in report.counts.items()
                                                  if kv[1]))
    caught, total, missed = self_test(ids, plan.knows, cli, stores, ledger)
    summary["self_test"] = {"caught": caught, "planted": total, "missed": missed}
    log("checker self-test: %d of %d planted faults caught%s" % (
        caught, total, "; missed: " + "; ".join(missed) if missed else ""))
    if any("no case" not in m for m in missed):
        failures.append("the checker missed planted faults: %s" % missed)


def run(args):
    """One torture run; returns its summary (summary["ok"]: passed)."""
    cfg = args.cfg
    wall0 = time.monotonic()
    log("torture: seed %d, preset %s%s: %d nodes, %d intros, %d %s, %d stops, %ds workload" % (
        args.seed, args.preset, " (mailbox mode)" if args.mailbox else "", cfg["nodes"], cfg["intros"], cfg["kills"],
        "power cuts" if args.power else "kills", cfg["stops"], cfg["duration"]))
    plan = Plan(args.seed, cfg["nodes"], cfg["intros"], cfg["duration"], cfg["idle_expiry"])
    log("plan: roles %s, strangers %s" % (plan.roles, sorted(sorted(p) for p in plan.strangers)))
    root = tempfile.mkdtemp(prefix="tf-torture-")
    summary = {"seed": args.seed, "preset": args.preset, "config": cfg, "root": root,
               "mode": "mailbox" if args.mailbox else "plain"}
    failures = []
    nodes = {}
    try:
        if args.mailbox:
            args.tenants_drawn = draw_tenants(args.seed, plan.names, args.tenants)
            log("mailbox mode: %s hosts %s" % (MAILBOX_NODE, args.tenants_drawn))
        setup(root, plan, nodes, args.seed if args.power else None,
              args.tenants_drawn if args.mailbox else None)
        log("setup: %d nodes up, cards exchanged (%.1fs)" % (len(nodes), time.monotonic() - wall0))
        driver = work(nodes, plan, args, summary, failures)
        check(nodes, plan, driver, summary, failures)
    except (NodeFailure, Unavailable, Refused) as e:
        failures.append("%s: %s" % (type(e).__name__, e))
    finally:
        for n in nodes.values():
            try:
                n.stop()
            except NodeFailure:
                pass
            n.unmount()
    summary["failures"] = failures
    summary["wall_s"] = round(time.monotonic() - wall0, 1)
    summary["ok"] = not failures
    if failures or args.keep:
        summary["kept"] = root
    else:
        shutil.rmtree(root, ignore_errors=True)
    return summary


def print_summary(s, out):
    """The human summary of a run, on out."""
    def w(line):
        out.write(line + "\n")

    i, c, ch = s.get("intros"), s.get("counts"), s.get("checked")
    w("torture %s%s: seed %d, %d nodes, wall %.1fs" % (
        s["preset"], " mailbox" if s.get("mode") == "mailbox" else "", s["seed"],
        s["config"]["nodes"], s["wall_s"]))
    if i:
        w("  chaos:   %d kills (%s + restart), %d crashes on the receive hook, "
          "%d SIGSTOPs (%.1fs hung); %d power cuts in all, %d inside a commit, "
          "%d lazy unmounts" % (
              s["kills"], "power cut" if s["preset"].startswith("power") else "kill -9",
              s["hook_crashes"], s["stops"], s["stopped_s"], s.get("power_cuts", 0),
              s.get("armed_cuts", 0), s.get("lazy_unmounts", 0)))
        w("  intros:  %d planned, %d proposed, %d refused; introduced %d, declined %d, "
          "withdrawn %d, expired %d, still asking %d" % (
              i["planned"], i["proposed"], i["refused"], i.get("introduced", 0),
              i.get("declined", 0), i.get("withdrawn", 0), i.get("expired", 0),
              i.get("asking", 0)))
        w("  checked: %d intros, %d signed acceptances and %d party proofs verified, "
          "%d contacts, %d closed items compared %s" % (
              ch["intros_checked"], ch["acceptances_verified"], ch["proofs_verified"],
              ch["contacts_checked"],
              ch["closed_items_compared"], s["invariant3"]["closed_items"]))
        w("  lost %d, duplicated %d, unwarranted %d; wrong outcome %d, unsettled %d, "
          "policy mismatch %d, distinguishable %d, bad record %d" % (
              c["lost"], c["duplicated"], c["unwarranted"], c["wrong_outcome"],
              c["unsettled"], c["policy_mismatch"], c["distinguishable"], c["bad_record"]))
    if "mailbox" in s:
        w("  mailbox: %s hosted %s; it held %d envelopes and was killed %d times" % (
            MAILBOX_NODE, ", ".join(s["mailbox"]["tenants"]), s["mailbox"]["held"],
            s["mailbox"]["kills"]))
    if "self_test" in s:
        w("  checker self-test: %d of %d planted faults caught" % (
            s["self_test"]["caught"], s["self_test"]["planted"]))
    for f in s.get("findings", [])[:40]:
        w("  finding: " + f)
    for f in s["failures"]:
        w("  FAILED: " + f)
    if s["ok"]:
        w("PASS (seed %d)%s" % (s["seed"], "; homes and logs kept in " + s["kept"]
                                if "kept" in s else ""))
    else:
        w("FAIL (seed %d; rerun with --seed %d; homes and logs kept in %s)" % (
            s["seed"], s["seed"], s["kept"]))


def main(argv):
    args = parse_args(argv)
    if args.power:
        why = unavailable()
        if why:
            print("SKIP: power-loss mode: " + why)
            return SKIP
    summary = run(args)
    if args.json:
        print_summary(summary, sys.stderr)
        json.dump(summary, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print_summary(summary, sys.stdout)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
