# SPDX-License-Identifier: MIT
"""Integration tests for requests for an introduction (docs/CONTROL.md
"Requests"): real nodes ask, answer with a proposal that names the request,
decline and withdraw; a claim to answer a request is checked by the asker's
node; strangers' requests are bounded."""
import os
import random
import re
import subprocess
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FLOOD, NodeTestCase, flood, recv_frame, wait_for, watch_events  # noqa: E402

WAIT = 30


def parse_flood(r):
    m = re.match(r"ok=(\d+) refused=(\d+) other=(\d+) noack=(\d+)", r.stdout)
    if m is None:
        raise AssertionError("tf-flood said %r (stderr %r)" % (r.stdout, r.stderr))
    return tuple(int(x) for x in m.groups())


class Requests(NodeTestCase):
    def start(self, name, policy=None, **config):
        n = self.node(name, port=True)
        n.init()
        n.write_config(retry_max_ms=2000, **config)
        if policy is not None:
            with open(os.path.join(n.home, "policy"), "w") as f:
                f.write(policy)
        n.start()
        return n

    def knows(self, a, b, alias, *extra):
        a.cli("contact", "add", b.card(), "--alias", alias, *extra)

    def trio(self, **config):
        """Carol (the connector) knows Alice and Bob; both know Carol."""
        carol = self.start("carol", **config)
        alice = self.start("alice")
        bob = self.start("bob")
        self.knows(carol, alice, "alice")
        self.knows(carol, bob, "bob")
        self.knows(alice, carol, "carol")
        self.knows(bob, carol, "carol")
        return alice, bob, carol

    def request(self, n, rid):
        for r in n.json("requests"):
            if r["id"] == rid:
                return r
        return None

    def wait_request(self, n, rid, state):
        return wait_for("%s: request %s %s" % (n.name, rid[:8], state),
                        lambda: (lambda r: r if r and r["state"] == state else None)(
                            self.request(n, rid)), WAIT)

    def item(self, n, iid):
        for i in n.json("inbox", "--all"):
            if i["id"] == iid:
                return i
        return None

    def wait_item(self, n, iid, state):
        return wait_for("%s: intro %s %s" % (n.name, iid[:8], state),
                        lambda: (lambda i: i if i and i["state"] == state else None)(
                            self.item(n, iid)), WAIT)

    def ask(self, asker, connector, tag, *extra):
        rid = asker.json("ask", connector, "--seeking", tag, *extra)["id"]
        self.assertEqual(len(rid), 64)
        return rid

    def test_ask_then_propose_by_hand_with_answers(self):
        alice, bob, carol = self.trio()
        rid = self.ask(bob, "carol", "real-estate-law", "--note", "buying a flat")
        mine = self.request(bob, rid)
        self.assertEqual((mine["role"], mine["state"], mine["seeking"]),
                         ("sent", "open", "real-estate-law"))
        got = self.wait_request(carol, rid, "open")
        self.assertEqual((got["role"], got["note"], got["asker"]),
                         ("received", "buying a flat", bob.text_id()))
        self.assertEqual(got["alias"], "bob")
        # The human listing shows it too.
        self.assertIn("real-estate-law", carol.cli("requests").stdout)
        # Carol answers by hand; the topic defaults to what Bob seeks.
        iid = carol.json("propose", "alice", "bob", "--answers", rid[:12])["id"]
        self.assertEqual(carol.json("show", iid)["topic"], "real-estate-law")
        self.assertEqual(self.request(carol, rid)["state"], "answered")
        self.assertEqual(self.request(carol, rid)["intro"], iid)
        self.assertEqual(self.request(carol, rid)["decided_by"], "owner")
        # Bob's node checked the claim: his own open request, to Carol.
        self.wait_item(bob, iid, "pending")
        answered = self.wait_request(bob, rid, "answered")
        self.assertEqual(answered["intro"], iid)
        # Alice is never told that someone asked.
        self.wait_item(alice, iid, "pending")
        self.assertEqual(alice.json("requests"), [])
        self.assertNotIn("request", alice.log().replace("requests", ""))
        # A second answer to the same request is refused at Carol.
        r = carol.cli("propose", "alice", "bob", "--topic", "other-topic", "--answers", rid,
                      check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("answered", r.stderr)
        bob.cli("accept", iid)
        alice.cli("accept", iid)
        self.wait_item(bob, iid, "introduced")
        self.wait_item(alice, iid, "introduced")
        wait_for("carol: introduced", lambda: carol.json("show", iid)["state"] == "introduced",
                 WAIT)
        # Answered requests survive a restart as they were.
        bob.stop()
        bob.start()
        self.assertEqual(self.request(bob, rid)["state"], "answered")

    def test_decline_and_withdraw(self):
        alice, bob, carol = self.trio()
        r1 = self.ask(bob, "carol", "tax-law")
        self.wait_request(carol, r1, "open")
        out = carol.cli("requests", "decline", r1[:10]).stdout
        self.assertIn("declined", out)
        self.assertEqual(self.wait_request(bob, r1, "declined")["decided_by"], "connector")
        # Alice learns nothing of it.
        self.assertEqual(alice.json("requests"), [])
        # The watch events on both ends.
        for n, want in ((carol, ["request.received", "request.declined"]),
                        (bob, ["request.sent", "request.declined"])):
            events, done, _ = watch_events(n, lambda ev: [e.get("type") for e in ev
                                                          if e.get("id") == r1][-2:] == want)
            self.assertTrue(done, [e.get("type") for e in events])
        # Withdrawn: closed at both ends, and no longer answerable.
        r2 = self.ask(bob, "carol", "tax-law")
        self.wait_request(carol, r2, "open")
        bob.cli("requests", "withdraw", r2)
        self.assertEqual(self.request(bob, r2)["state"], "withdrawn")
        self.wait_request(carol, r2, "withdrawn")
        r = carol.cli("propose", "alice", "bob", "--answers", r2, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("withdrawn", r.stderr)
        self.assertEqual(carol.json("intros"), [])
        # Wrong role: the asker cannot decline, the connector cannot withdraw.
        r = bob.cli("requests", "decline", r1, check=False)
        self.assertNotEqual(r.returncode, 0)
        r = carol.cli("requests", "withdraw", r1, check=False)
        self.assertNotEqual(r.returncode, 0)
        # A request whose asker is neither party cannot be answered.
        dave = self.start("dave")
        self.knows(carol, dave, "dave")
        self.knows(dave, carol, "carol")
        r3 = self.ask(dave, "carol", "tax-law")
        self.wait_request(carol, r3, "open")
        r = carol.cli("propose", "alice", "bob", "--answers", r3, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.request(carol, r3)["state"], "open")

    def test_claims_that_do_not_hold_are_not_answers(self):
        """A proposal claiming a request the party never made, made to
        another connector, or already closed, is an ordinary proposal: the
        request is not marked answered."""
        alice, bob, carol = self.trio()
        rid = self.ask(bob, "carol", "real-estate-law")
        self.wait_request(carol, rid, "open")
        # A stranger claims Bob's real, open request (made to Carol, not to
        # the stranger), and another claims one Bob never made.
        for claim in (rid, "ab" * 32):
            r = flood("proposals", "--target", bob.listen, "--victim", bob.home,
                      "--identities", 1, "--per", 1, "--request", claim)
            self.assertEqual(parse_flood(r), (1, 0, 0, 0), r.stderr)
        bob.wait_log("which is not this node's own request to that connector", WAIT)
        bob.wait_log("which this node never made", WAIT)
        self.assertEqual(self.request(bob, rid)["state"], "open")
        self.assertIsNone(self.request(bob, rid)["intro"])
        # Closed: withdrawn at Bob, so Carol's stale claim is no answer.
        bob.cli("requests", "withdraw", rid)
        r = flood("proposals", "--target", bob.listen, "--victim", bob.home,
                  "--identities", 1, "--per", 1, "--request", rid)
        self.assertEqual(parse_flood(r)[0], 1, r.stderr)
        self.assertEqual(self.request(bob, rid)["state"], "withdrawn")

    def test_stranger_requests_are_bounded(self):
        carol = self.start("carol", max_stranger_requests=5)
        r = flood("requests", "--target", carol.listen, "--victim", carol.home,
                  "--identities", 8)
        ok, refused, other, noack = parse_flood(r)
        self.assertEqual((ok, refused, other, noack), (5, 3, 0, 0), r.stderr)
        got = carol.json("requests")
        self.assertEqual(len(got), 5)
        self.assertTrue(all(x["stranger"] and x["state"] == "open" for x in got))
        carol.wait_log("max_stranger_requests reached (5)", WAIT)

    def test_withdrawn_strangers_requests_do_not_hold_the_budget(self):
        """Two strangers ask and withdraw, round after round: what they
        withdraw is forgotten at once, each has one open request at a time,
        and a third stranger's first request is still taken."""
        carol = self.start("carol", max_stranger_requests=2)
        strangers = [self.start(name) for name in ("mallory1", "mallory2", "dave")]
        for m in strangers:
            self.knows(m, carol, "carol")
        for m in strangers[:2]:
            for _ in range(2):
                rids = [self.ask(m, "carol", "t%d" % i) for i in range(4)]
                self.wait_request(carol, rids[0], "open")
                carol.wait_log("one open request per stranger reached (1)", WAIT)
                for rid in rids:
                    if self.request(m, rid)["state"] == "open":
                        m.cli("requests", "withdraw", rid)
                wait_for("carol forgot the withdrawn requests",
                         lambda: all(self.request(carol, rid) is None for rid in rids), WAIT)
        self.assertEqual(carol.json("requests"), [])
        rid = self.ask(strangers[2], "carol", "tax-law")
        self.assertTrue(self.wait_request(carol, rid, "open")["stranger"])
        self.assertNotIn("max_stranger_requests reached", carol.log())

    def test_strangers_closed_requests_are_kept_oldest_first(self):
        """Declined strangers' requests stay listed, at most
        max_stranger_requests of them, the oldest forgotten first."""
        carol = self.start("carol", "decline when requester is unknown\n",
                           max_stranger_requests=2)
        for i in range(4):
            r = flood("requests", "--target", carol.listen, "--victim", carol.home,
                      "--identities", 1)
            self.assertEqual(parse_flood(r), (1, 0, 0, 0), r.stderr)
            wait_for("carol declined %d" % (i + 1),
                     lambda: len([x for x in carol.json("requests")
                                  if x["state"] == "declined"]) == min(i + 1, 2), WAIT)
        self.assertNotIn("max_stranger_requests reached", carol.log())

    def blocked_pair(self, **config):
        """Carol knows Bob and Eve (blocked); both know Carol."""
        carol = self.start("carol", **config)
        bob = self.start("bob")
        eve = self.start("eve")
        for n, alias in ((bob, "bob"), (eve, "eve")):
            self.knows(carol, n, alias)
            self.knows(n, carol, "carol")
        carol.cli("contact", "set", "eve", "--block")
        return bob, eve, carol

    def acks(self, asker, n, tag=None):
        """Asks n times (about tag, or t0, t1, ...), one at a time; returns
        each request's ACK as the asker's node saw it: "ok" or "rejected"."""
        out = []
        for i in range(n):
            before = asker.log().count("rejected:")
            self.ask(asker, "carol", tag or "t%d" % i)
            wait_for("%s: the request delivered" % asker.name,
                     lambda: asker.json("outbox") == [], WAIT)
            out.append("rejected" if asker.log().count("rejected:") > before else "ok")
        return out

    def test_a_blocked_asker_gets_the_acks_anyone_gets(self):
        """A blocked contact's requests count against the same budgets:
        its ACKs are those of a contact that is not blocked, and Carol sees
        nothing of them."""
        bob, eve, carol = self.blocked_pair(max_open_requests_per_asker=2)
        want = ["ok", "ok", "rejected", "rejected"]
        self.assertEqual(self.acks(bob, 4), want)
        self.assertEqual(self.acks(eve, 4), want)
        self.assertEqual([x["alias"] for x in carol.json("requests")], ["bob", "bob"])
        events, _, _ = watch_events(carol, lambda ev: False, timeout=5)
        got = [e["type"] for e in events if str(e.get("type", "")).startswith("request.")]
        self.assertEqual(got, ["request.received"] * 2)

    def test_a_blocked_asker_is_declined_by_a_rule_as_anyone(self):
        """R49a: a rule's decline applies to a blocked contact's requests
        too.  Before, they skipped the rules: a decline rule freed an
        unblocked asker's open slot and told it no, while the blocked one's
        requests stayed open, filled its budget and were refused (reason 7):
        the asker could tell the block from its ACKs."""
        bob, eve, carol = self.blocked_pair(
            policy="decline when requester is known and topic is spam\n",
            max_open_requests_per_asker=2)
        for asker in (bob, eve):
            self.assertEqual(self.acks(asker, 4, "spam"), ["ok"] * 4, asker.name)
            wait_for("%s: every request declined" % asker.name,
                     lambda: [r["state"] for r in asker.json("requests")] == ["declined"] * 4,
                     WAIT)
        # Carol still sees nothing of Eve's.
        self.assertEqual([(x["alias"], x["state"]) for x in carol.json("requests")],
                         [("bob", "declined")] * 4)
        events, _, _ = watch_events(carol, lambda ev: False, timeout=3)
        got = [e["type"] for e in events if str(e.get("type", "")).startswith("request.")]
        self.assertEqual(got, ["request.received", "request.declined"] * 4)

    def test_a_decline_to_a_stranger_is_given_up_after_a_day(self):
        """A stranger's request may ask for 90 days; the decline queued for
        it is given up after a day (as a stranger's declined proposal), so
        that strangers who never acknowledge cannot hold
        outbox_max_strangers for months."""
        carol = self.start("carol")
        sam = self.start("sam")
        xav = self.start("xav")
        self.knows(sam, carol, "carol")
        self.knows(sam, xav, "xav")
        # Sam proposes Carol and Xav: Carol keeps the proposal (her policy
        # asks), and with it Sam's card, so she can write to him.
        iid = sam.json("propose", "carol", "xav", "--topic", "chess")["id"]
        wait_for("carol: sam's proposal",
                 lambda: any(i["id"] == iid for i in carol.json("inbox", "--all")), WAIT)
        rid = self.ask(sam, "carol", "tax-law", "--expires", "90d")
        wait_for("sam: the request delivered", lambda: sam.json("outbox") == [], WAIT)
        self.assertTrue(self.wait_request(carol, rid, "open")["stranger"])
        sam.stop()  # he never acknowledges the decline
        now = int(time.time())
        carol.cli("requests", "decline", rid)
        queued = [e for e in carol.json("outbox") if e["type"] == "request-close"]
        self.assertEqual(len(queued), 1, carol.json("outbox"))
        self.assertLessEqual(queued[0]["expires"], now + 86400 + 60)
        self.assertGreaterEqual(queued[0]["expires"], now + 86400 - 60)

    def test_a_refused_request_closes_at_the_asker(self):
        """A request the connector's node refuses (its budget is full)
        closes at once at the asker, as "refused", with an event; a blocked
        asker sees the same."""
        bob, eve, carol = self.blocked_pair(max_open_requests_per_asker=1)
        for n in (bob, eve):
            first = self.ask(n, "carol", "tax-law")
            wait_for("%s: delivered" % n.name, lambda: n.json("outbox") == [], WAIT)
            second = self.ask(n, "carol", "tax-law")
            got = self.wait_request(n, second, "refused")
            self.assertEqual(got["decided_by"], "connector")
            self.assertEqual(self.request(n, first)["state"], "open")
            events, done, _ = watch_events(
                n, lambda ev: [e.get("type") for e in ev if e.get("id") == second]
                == ["request.sent", "request.refused"])
            self.assertTrue(done, [e.get("type") for e in events])
            # Closed: it cannot be withdrawn any more.
            r = n.cli("requests", "withdraw", second, check=False)
            self.assertNotEqual(r.returncode, 0)

    def test_requests_are_listed_in_pages(self):
        """request.list pages in id order (limit, after); the CLI says how
        to get the next page."""
        alice, bob, carol = self.trio(max_open_requests_per_asker=10)
        rids = [self.ask(bob, "carol", "t%d" % i) for i in range(5)]
        for rid in rids:
            self.wait_request(carol, rid, "open")
        pages, after = [], []
        for _ in range(5):  # bounded: 3 pages expected
            page = carol.json("requests", "--limit", "2", *after)
            pages.append([r["id"] for r in page])
            if len(page) < 2:
                break
            after = ["--after", page[-1]["id"]]
        self.assertEqual([len(p) for p in pages], [2, 2, 1])
        self.assertEqual(sum(pages, []), sorted(rids))
        r = carol.cli("requests", "--limit", "2")
        self.assertIn("more: twofold requests --after %s" % pages[0][1], r.stderr)
        self.assertEqual(r.stdout.count("open"), 2)
        self.assertIn("no requests after that one",
                      carol.cli("requests", "--after", pages[2][0]).stdout)
        for bad in (["--limit", "0"], ["--limit", "1001"], ["--after", "abc"]):
            r = carol.cli("requests", *bad, check=False)
            self.assertNotEqual(r.returncode, 0, bad)
        self.assertEqual(len(carol.json("requests")), 5)  # the default page holds them all

    def test_a_changed_retention_reschedules_closed_requests(self):
        """Closed requests are collected by the request_retention_s in
        force, not by the one they closed under: lowered across a restart,
        a declined request is collected at once."""
        alice, bob, carol = self.trio(request_retention_s=1000000)
        rid = self.ask(bob, "carol", "tax-law")
        self.wait_request(carol, rid, "open")
        carol.cli("requests", "decline", rid)
        self.assertEqual(self.request(carol, rid)["state"], "declined")
        carol.stop()
        carol.write_config(retry_max_ms=2000, request_retention_s=1)
        carol.start()
        wait_for("carol collected the declined request",
                 lambda: self.request(carol, rid) is None, WAIT)
        carol.wait_log("request_retention_s is 1: schedule redone", WAIT)

    def test_open_requests_per_asker_are_bounded_and_expire(self):
        carol = self.start("carol", max_open_requests_per_asker=2, request_retention_s=1)
        bob = self.start("bob")
        self.knows(carol, bob, "bob")
        self.knows(bob, carol, "carol")
        # Long enough to stay open while the third is refused, even on a
        # loaded machine; short enough to watch them expire.
        first = [self.ask(bob, "carol", "t%d" % i, "--expires", "20s") for i in range(2)]
        for rid in first:
            self.wait_request(carol, rid, "open")
        third = self.ask(bob, "carol", "t3")
        carol.wait_log("max_open_requests_per_asker reached (2)", WAIT)
        self.assertIsNone(self.request(carol, third))
        # Expired at both ends, then collected at Carol after the retention.
        for rid in first:
            wait_for("bob: %s expired" % rid[:8],
                     lambda: self.request(bob, rid)["state"] == "expired", 90)
        wait_for("carol collected the expired requests",
                 lambda: all(self.request(carol, rid) is None for rid in first), 90)
        # With room again, a new request is taken.
        fourth = self.ask(bob, "carol", "t4")
        self.wait_request(carol, fourth, "open")

    def test_policy_answers_a_request_on_every_side(self):
        """Bob asks Carol for real-estate-law; Carol's request rule proposes
        Alice (who offers it, trust close); Bob's `answers my request` and
        Alice's `topic in offers` accept; both materialise, each with two
        signed acceptances, and every automatic step names its rule."""
        carol = self.start("carol", "propose when requester trust >= known and a contact "
                                    "offers the topic with trust >= close\n")
        alice = self.start("alice", "accept when topic in offers\n")
        bob = self.start("bob", "accept when answers my request\nask\n")
        dave = self.start("dave")
        alice.cli("profile", "set", "--offers", "real-estate-law")
        dave.cli("profile", "set", "--offers", "real-estate-law")
        self.knows(carol, alice, "alice", "--trust", "close")
        self.knows(carol, dave, "dave", "--trust", "known")  # offers it too, less trusted
        self.knows(carol, bob, "bob")  # known (the default)
        self.knows(alice, carol, "carol")
        self.knows(bob, carol, "carol")
        # policy test shows what the rules would do, without doing it.
        out = carol.cli("policy", "test", "--requester", "bob", "--topic",
                        "real-estate-law").stdout
        self.assertEqual(out.strip(), "propose %s (policy:1)" % alice.text_id())
        out = bob.cli("policy", "test", "--connector", "carol", "--topic", "x",
                      "--answers-request").stdout
        self.assertEqual(out.strip(), "accept (policy:1)")
        out = bob.cli("policy", "test", "--connector", "carol", "--topic", "x").stdout
        self.assertEqual(out.strip(), "ask (policy:2)")
        self.assertEqual(carol.json("intros"), [])

        rid = self.ask(bob, "carol", "real-estate-law")
        got = self.wait_request(carol, rid, "answered")
        self.assertEqual(got["decided_by"], "policy:1")
        iid = got["intro"]
        intro = carol.json("show", iid)
        self.assertEqual(intro["topic"], "real-estate-law")
        self.assertEqual({intro["a"]["alias"], intro["b"]["alias"]}, {"alice", "bob"})
        self.assertEqual(self.wait_request(bob, rid, "answered")["intro"], iid)
        for n in (alice, bob):
            item = self.wait_item(n, iid, "introduced")
            self.assertEqual(item["decided_by"], "policy:1")
        wait_for("carol: introduced", lambda: carol.json("show", iid)["state"] == "introduced",
                 WAIT)
        # Each side holds the other as a contact, with the provenance.
        for me, other in ((alice, bob), (bob, alice)):
            c = me.json("contact", "show", other.text_id())
            self.assertEqual(c["intro"], iid)
            self.assertEqual(c["introduced_by"], carol.text_id())
        # Dave, the runner-up, was never asked.
        self.assertEqual(dave.json("inbox", "--all"), [])
        # A proposal by hand without --answers is not accepted by Bob's rule.
        eve = self.start("eve")
        self.knows(carol, eve, "eve")
        self.knows(eve, carol, "carol")
        iid2 = carol.json("propose", "eve", "bob", "--topic", "real-estate-law")["id"]
        self.assertIsNone(self.wait_item(bob, iid2, "pending")["decided_by"])

    def test_policy_declines_strangers_requests_and_asks_otherwise(self):
        carol = self.start("carol", "decline when requester is unknown\n"
                                    "propose when requester is known and a contact offers the "
                                    "topic\n")
        bob = self.start("bob")
        self.knows(carol, bob, "bob")
        self.knows(bob, carol, "carol")
        # Nobody offers it: no rule matches, the request waits for Carol.
        rid = self.ask(bob, "carol", "tax-law")
        self.wait_request(carol, rid, "open")
        self.assertIsNone(self.request(carol, rid)["decided_by"])
        # A stranger's request: declined by rule 1.
        r = flood("requests", "--target", carol.listen, "--victim", carol.home,
                  "--identities", 1)
        self.assertEqual(parse_flood(r), (1, 0, 0, 0), r.stderr)
        got = wait_for("carol: the stranger's request declined",
                       lambda: [x for x in carol.json("requests") if x["stranger"]
                                and x["state"] == "declined"], WAIT)
        self.assertEqual(got[0]["decided_by"], "policy:1")

    # suggest ----------------------------------------------------------

    TRUST = {"acquaintance": 1, "known": 2, "close": 3}

    @staticmethod
    def recency(now, issued):
        age = now - issued
        return 5 if age <= 30 * 86400 else 2 if age <= 180 * 86400 else 0

    def expected(self, contacts, now, excluded_pairs=(), blocked=(), topic=None, who=None,
                 requests=()):
        """The documented ranking, computed independently: score desc, then
        topic, seeker id, offerer id."""
        out = []
        for x in contacts:
            for y in contacts:
                if x is y or x["alias"] in blocked or y["alias"] in blocked:
                    continue
                if who is not None and who not in (x["alias"], y["alias"]):
                    continue
                if frozenset((x["alias"], y["alias"])) in excluded_pairs:
                    continue
                for t in x["seeks"]:
                    if t not in y["offers"] or (topic is not None and t != topic):
                        continue
                    score = (100 if (x["alias"], t) in requests else 0) + \
                        10 * (self.TRUST[x["trust"]] + self.TRUST[y["trust"]]) + \
                        self.recency(now, x["issued"]) + self.recency(now, y["issued"])
                    out.append((-score, t, x["id"], y["id"], score))
        out.sort()
        return [(o[4], o[1], o[2], o[3]) for o in out]

    @staticmethod
    def got(items):
        return [(i["score"], i["topic"], i["seeker"], i["offerer"]) for i in items]

    def test_suggest_200_contacts_in_the_documented_order(self):
        carol = self.start("carol")
        rnd = random.Random(15)
        topics = ["t%02d" % i for i in range(30)]
        now = int(time.time())
        ages = (10 * 86400, 100 * 86400, 400 * 86400)
        contacts, spec = [], []
        for i in range(200):
            offers = rnd.sample(topics, rnd.choice((0, 1, 2)))
            seeks = rnd.sample([t for t in topics if t not in offers], rnd.choice((0, 1, 2)))
            c = {"alias": "c%03d" % i, "offers": offers, "seeks": seeks,
                 "trust": rnd.choice(("acquaintance", "known", "close")),
                 "issued": now - rnd.choice(ages)}
            contacts.append(c)
            spec.append("%s %s %s %d" % (c["alias"], ",".join(offers) or "-",
                                         ",".join(seeks) or "-", c["issued"]))
        r = subprocess.run([FLOOD, "cards"], input="\n".join(spec) + "\n", capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        cards = r.stdout.split()
        self.assertEqual(len(cards), 200)
        for c, card in zip(contacts, cards):
            c["id"] = carol.json("contact", "add", card, "--alias", c["alias"],
                                 "--trust", c["trust"])["id"]
        want = self.expected(contacts, now)
        self.assertGreater(len(want), 100)
        # The default page is the first 50, the largest the first 1000.
        self.assertEqual(self.got(carol.json("suggest")), want[:50])
        self.assertEqual(self.got(carol.json("suggest", "--limit", 1000)), want[:1000])
        # Filters.
        t = want[0][1]
        self.assertEqual(self.got(carol.json("suggest", "--topic", t, "--limit", 1000)),
                         self.expected(contacts, now, topic=t))
        who = next(c for c in contacts if c["id"] == want[0][2])["alias"]
        self.assertEqual(self.got(carol.json("suggest", "--for", who, "--limit", 1000)),
                         self.expected(contacts, now, who=who))
        # Each line shows the command, and nothing was proposed.
        first = carol.json("suggest", "--limit", 1)[0]
        x = next(c for c in contacts if c["id"] == first["seeker"])
        y = next(c for c in contacts if c["id"] == first["offerer"])
        self.assertEqual(first["command"], "twofold propose %s %s --topic %s" % (
            x["alias"], y["alias"], first["topic"]))
        self.assertIn(first["command"], carol.cli("suggest", "--limit", 3).stdout)
        self.assertEqual(carol.json("intros"), [])
        # Excluded: a pair with an open intro (any topic, either order), and
        # blocked contacts.
        carol.cli("propose", y["alias"], x["alias"], "--topic", "some-other-topic")
        blocked = next(c for c in contacts if c["id"] == want[1][3])["alias"]
        if blocked in (x["alias"], y["alias"]):
            blocked = next(c for c in contacts if c["id"] == want[1][2])["alias"]
        carol.cli("contact", "block", blocked)
        excl = {frozenset((x["alias"], y["alias"]))}
        self.assertEqual(self.got(carol.json("suggest", "--limit", 1000)),
                         self.expected(contacts, now, excluded_pairs=excl,
                                       blocked=(blocked,))[:1000])

    def test_suggest_puts_open_requests_first_and_leaves_out_met_pairs(self):
        carol = self.start("carol")
        alice = self.start("alice")
        bob = self.start("bob")
        dave = self.start("dave")
        alice.cli("profile", "set", "--offers", "law")
        for n in (bob, dave):
            n.cli("profile", "set", "--seeks", "law")
        for n, alias in ((alice, "alice"), (bob, "bob"), (dave, "dave")):
            self.knows(carol, n, alias, "--trust", "close" if alias == "dave" else "known")
            self.knows(n, carol, "carol")
        pairs = lambda: [(i["seeker_name"], i["offerer_name"]) for i in carol.json("suggest")]
        # Dave's trust is higher, so he comes first ...
        self.assertEqual(pairs(), [("dave", "alice"), ("bob", "alice")])
        # ... until Bob asks for it: an open request goes first, and the
        # command answers it.
        rid = self.ask(bob, "carol", "law")
        self.wait_request(carol, rid, "open")
        top = carol.json("suggest")[0]
        self.assertEqual((top["seeker_name"], top["request"]), ("bob", rid))
        self.assertGreaterEqual(top["score"], 100)
        self.assertEqual(top["command"],
                         "twofold propose bob alice --topic law --answers %s" % rid[:16])
        # Proposed (asking), then declined by Bob: left out either way.
        iid = carol.json("propose", "bob", "alice", "--answers", rid[:16])["id"]
        self.assertEqual(pairs(), [("dave", "alice")])
        self.wait_item(bob, iid, "pending")
        bob.cli("decline", iid)
        wait_for("carol: declined", lambda: carol.json("show", iid)["state"] == "declined", WAIT)
        self.assertEqual(pairs(), [("dave", "alice")])
        # Introduced: left out too.
        iid2 = carol.json("propose", "dave", "alice", "--topic", "law")["id"]
        for n in (dave, alice):
            self.wait_item(n, iid2, "pending")
            n.cli("accept", iid2)
        wait_for("carol: introduced", lambda: carol.json("show", iid2)["state"] == "introduced",
                 WAIT)
        self.assertEqual(carol.json("suggest"), [])
        self.assertIn("no suggestions", carol.cli("suggest").stdout)

    # feedback ---------------------------------------------------------

    def introduce(self, carol, a, b, alias_a, alias_b, topic):
        iid = carol.json("propose", alias_a, alias_b, "--topic", topic)["id"]
        for n in (a, b):
            self.wait_item(n, iid, "pending")
            n.cli("accept", iid)
        for n in (a, b):
            self.wait_item(n, iid, "introduced")
        wait_for("carol: introduced", lambda: carol.json("show", iid)["state"] == "introduced",
                 WAIT)
        return iid

    def stats(self, n, alias):
        return n.json("contact", "show", alias)["intro_stats"]

    def test_feedback_once_per_party_counted_and_kept(self):
        carol = self.start("carol")
        alice = self.start("alice")
        bob = self.start("bob", "accept when connector helped >= 1\nask\n")
        dave = self.start("dave")
        for n, alias in ((alice, "alice"), (bob, "bob"), (dave, "dave")):
            self.knows(carol, n, alias)
            self.knows(n, carol, "carol")
        iid = self.introduce(carol, alice, bob, "alice", "bob", "real-estate-law")
        pending = carol.json("propose", "alice", "dave", "--topic", "tax-law")["id"]
        self.wait_item(alice, pending, "pending")
        self.assertEqual(bob.cli("policy", "test", "--connector", "carol", "--topic",
                                 "x").stdout.strip(), "ask (policy:2)")
        # Not introduced: refused, nothing sent.
        r = alice.cli("feedback", pending, "--helped", "yes", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("did not", r.stderr)
        # Bob: it helped; once only.
        out = bob.cli("feedback", iid[:12], "--helped", "yes", "--note", "a great lawyer").stdout
        self.assertIn("it helped", out)
        r = bob.cli("feedback", iid, "--helped", "no", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already", r.stderr)
        alice.cli("feedback", iid, "--helped", "no")
        wait_for("carol: both reports", lambda: self.stats(carol, "alice")["unhelpful"] == 1 and
                 self.stats(carol, "bob")["helpful"] == 1, WAIT)
        want_bob = {"proposed": 1, "accepted": 1, "declined": 0, "helpful": 1, "unhelpful": 0,
                    "connector_helped": 0, "connector_unhelpful": 0}
        want_alice = dict(want_bob, proposed=2, helpful=0, unhelpful=1)
        self.assertEqual(self.stats(carol, "bob"), want_bob)
        self.assertEqual(self.stats(carol, "alice"), want_alice)
        self.assertIn("proposed 1, accepted 1, declined 0, helpful 1 of 1 reported",
                      carol.cli("contact", "show", "bob").stdout)
        # Dave declines his: counted.
        self.wait_item(dave, pending, "pending")
        dave.cli("decline", pending)
        wait_for("carol: dave declined", lambda: self.stats(carol, "dave")["declined"] == 1, WAIT)
        # A non-party's feedback, and feedback on an intro not introduced,
        # are refused (ACK reason 9) and change nothing.
        for party, intro in ((dave, iid), (alice, pending)):
            r = flood("feedback", "--target", carol.listen, "--party", party.home,
                      "--connector", carol.home, "--intro", intro)
            self.assertEqual(r.stdout.strip(), "ack 1/9", r.stderr)
        carol.wait_log("the sender is not a party of the intro", WAIT)
        carol.wait_log("the intro was not introduced", WAIT)
        # The party's side: Bob's rule now accepts Carol's intros.
        self.assertEqual(self.stats(bob, "carol")["connector_helped"], 1)
        self.assertEqual(bob.cli("policy", "test", "--connector", "carol", "--topic",
                                 "x").stdout.strip(), "accept (policy:1)")
        # The watch events, and everything survives restarts.
        events, done, _ = watch_events(carol, lambda ev: sum(
            e.get("type") == "feedback.received" for e in ev) >= 2)
        self.assertTrue(done, events)
        got = sorted((e["party"], e["helped"]) for e in events
                     if e.get("type") == "feedback.received")
        self.assertEqual(got, sorted([(alice.text_id(), False), (bob.text_id(), True)]))
        for n in (carol, bob):
            n.stop()
            n.start()
        self.assertEqual(self.stats(carol, "bob"), want_bob)
        self.assertEqual(self.stats(carol, "alice")["unhelpful"], 1)
        self.assertEqual(self.stats(bob, "carol")["connector_helped"], 1)
        iid3 = carol.json("propose", "bob", "dave", "--topic", "gardening")["id"]
        self.assertEqual(self.wait_item(bob, iid3, "accepted")["decided_by"], "policy:1")
        r = bob.cli("feedback", iid, "--helped", "yes", check=False)
        self.assertNotEqual(r.returncode, 0)
        # The feedback records go with their intro: Carol's two (one per
        # party) when she removes it, Bob's own when he removes his item;
        # the counts stay.  Before, they outlived it.
        before, counts = self.stats_records(carol), self.stats(carol, "bob")
        carol.cli("intros", "rm", iid)
        self.assertEqual(self.stats_records(carol), before - 2)
        self.assertEqual(self.stats(carol, "bob"), counts)
        before, counts = self.stats_records(bob), self.stats(bob, "carol")
        bob.cli("inbox", "rm", iid)
        self.assertEqual(self.stats_records(bob), before - 1)
        self.assertEqual(self.stats(bob, "carol"), counts)

    def stats_records(self, n):
        """Entries of n's intro_stats table (counts and feedback records)."""
        import msgpack  # Debian's python3-msgpack
        body = msgpack.packb({"id": 1, "verb": "status", "args": {"tables": True}})
        s = n.raw_connect()
        try:
            s.sendall(struct.pack(">I", len(body)) + body)
            reply = msgpack.unpackb(recv_frame(s), raw=False)
        finally:
            s.close()
        return reply["result"]["tables"]["intro_stats"]["entries"]


if __name__ == "__main__":
    unittest.main()
