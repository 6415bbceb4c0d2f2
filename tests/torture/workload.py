# SPDX-License-Identifier: MIT
"""The torture workload: a seeded plan (who knows whom, each node's policy,
every intro with the answers each side will give), the policy files that
make the nodes answer as planned, and the driver that carries the plan out
through the CLI while nodes are being killed.

Everything random comes from one random.Random(seed), drawn in a fixed
order, so a seed gives the same plan (the timing of a run still varies).
"""
import random
import time
from collections import deque

from cluster import Refused, Unavailable

# Topic categories: each intro's topic is CATEGORY-NNNNN, unique in the run.
CATEGORIES = (("work", 0.60), ("misc", 0.25), ("spam", 0.15))
# Node roles (each node's policy, see policy_text):
#   open:  declines spam, accepts the rest from any known connector;
#   picky: declines spam and misc, accepts from connectors tagged friend,
#          asks about the rest;
#   asker: declines spam and sequential intros, asks about the rest.
ROLES = ("open", "picky", "asker")
P_SEQUENTIAL = 0.2
P_WITHDRAW = 0.12  # of the intros with an asked side: the connector withdraws
P_IDLE = 0.06  # of the intros with an asked side: nobody answers, it expires
P_OWNER_ACCEPT = 0.8  # the driver's answer when asked
TOPICS_PER_RULE = 16  # docs/POLICY.md: at most 16 tags in a 'topic is' list
WITHDRAW_AFTER = (1.0, 6.0)  # seconds after the proposal


class PlannedIntro:
    """One intro of the plan.  Sides are 0 (a) and 1 (b).

    policy[x]: what x's policy decides ("accept", "decline" or "ask");
    answer[x]: what x finally does: "accept" or "decline" (by policy or by
    the driver), "hold" (asked; the driver waits for the withdrawal) or
    "ignore" (asked; the driver never answers, the intro expires)."""

    def __init__(self, k, connector, a, b, category, mode, at):
        self.k = k
        self.connector = connector
        self.parties = (a, b)
        self.category = category
        self.topic = "%s-%05d" % (category, k)
        self.mode = mode
        self.at = at
        self.kind = "normal"  # or "withdraw", "idle"
        self.expires_s = None  # None: the node's default (14 days)
        self.withdraw_after = None
        self.policy = [None, None]
        self.answer = [None, None]
        self.policy_line = [None, None]  # expected decided_by "policy:N"

    def note(self, x):
        """The accept note side x sends the other (owner accepts only)."""
        return "hello-from-%s-%s" % ("ab"[x], self.topic)

    def reason(self, x):
        """The private decline reason of side x (owner declines only)."""
        return "secret-reason-%s-%s" % ("ab"[x], self.topic)

    def ledger(self):
        """The plan of this intro as plain data, for the checker."""
        return {"k": self.k, "topic": self.topic, "connector": self.connector,
                "parties": list(self.parties), "mode": self.mode, "kind": self.kind,
                "policy": list(self.policy), "answer": list(self.answer),
                "policy_line": list(self.policy_line),
                "notes": [self.note(0), self.note(1)],
                "reasons": [self.reason(0), self.reason(1)]}


class Plan:
    """Nodes n0..n{N-1}, each knowing every other except a few mutual
    strangers (so that some introductions create a contact, not only a
    provenance); roles, friend tags and the intros."""

    def __init__(self, seed, n_nodes, n_intros, duration, idle_expiry_s):
        rng = random.Random(seed)
        self.names = ["n%d" % i for i in range(n_nodes)]
        roles = [ROLES[i % len(ROLES)] for i in range(n_nodes)]
        rng.shuffle(roles)
        self.roles = dict(zip(self.names, roles))
        self.strangers = self._draw_strangers(rng, n_nodes)
        self.knows = {n: [m for m in self.names if m != n and not self.strangers_pair(n, m)]
                      for n in self.names}
        self.friends = {n: set(m for m in self.knows[n] if rng.random() < 0.5)
                        for n in self.names}
        times = sorted(rng.uniform(0.5, duration * 0.85) for _ in range(n_intros))
        self.intros = [self._draw_intro(rng, k, times[k], idle_expiry_s) for k in range(n_intros)]
        self.policies = {n: self._policy(n) for n in self.names}

    def strangers_pair(self, n, m):
        return frozenset((n, m)) in self.strangers

    def _draw_strangers(self, rng, n_nodes):
        """Disjoint pairs of nodes that do not know each other at first;
        every pair still has a connector who knows both (any third node)."""
        idx = list(range(n_nodes))
        rng.shuffle(idx)
        count = max(1, n_nodes // 2 - 1)
        return set(frozenset(("n%d" % idx[2 * i], "n%d" % idx[2 * i + 1]))
                   for i in range(count))

    def _draw_intro(self, rng, k, at, idle_expiry_s):
        connector = rng.choice(self.names)
        a, b = rng.sample(self.knows[connector], 2)
        mode = "sequential" if rng.random() < P_SEQUENTIAL else "parallel"
        r = rng.random()
        acc = 0.0
        category = CATEGORIES[-1][0]
        for name, weight in CATEGORIES:
            acc += weight
            if r < acc:
                category = name
                break
        it = PlannedIntro(k, connector, a, b, category, mode, at)
        it.policy = [self.decide(p, connector, category, mode) for p in (a, b)]
        asked = [x for x in (0, 1) if it.policy[x] == "ask"]
        r = rng.random()
        if asked and r < P_WITHDRAW:
            it.kind = "withdraw"
            it.withdraw_after = rng.uniform(*WITHDRAW_AFTER)
        elif asked and r < P_WITHDRAW + P_IDLE:
            it.kind = "idle"
            it.expires_s = idle_expiry_s
        for x in (0, 1):
            if it.policy[x] != "ask":
                it.answer[x] = it.policy[x]
            elif it.kind == "withdraw":
                it.answer[x] = "hold"
            elif it.kind == "idle":
                it.answer[x] = "ignore"
            else:
                it.answer[x] = "accept" if rng.random() < P_OWNER_ACCEPT else "decline"
        return it

    def decide(self, party, connector, category, mode):
        """The policy model: what party's rules (policy_text) decide."""
        role = self.roles[party]
        if category == "spam":
            return "decline"
        if role == "open":
            return "accept"
        if role == "picky":
            if category == "misc":
                return "decline"
            return "accept" if connector in self.friends[party] else "ask"
        return "decline" if mode == "sequential" else "ask"

    def _policy(self, node):
        """node's policy file (docs/POLICY.md) matching decide(), and the
        expected "policy:LINE" of each of its automatic decisions."""
        role = self.roles[node]
        mine = [(it, it.parties.index(node)) for it in self.intros if node in it.parties]
        lines = ["# twofold torture run: node %s, role %s (generated)" % (node, role)]
        rule_of = {}  # topic -> line of the 'topic is' rule naming it

        def topic_rules(category):
            topics = [it.topic for it, _ in mine if it.category == category]
            for i in range(0, len(topics), TOPICS_PER_RULE):
                chunk = topics[i:i + TOPICS_PER_RULE]
                lines.append("decline when topic is " + ",".join(chunk))
                for t in chunk:
                    rule_of[t] = len(lines)

        topic_rules("spam")
        if role == "picky":
            topic_rules("misc")
        if role == "open":
            lines.append("accept when connector trust >= known")
        elif role == "picky":
            lines.append("accept when connector tag friend")
        else:
            lines.append("decline when mode is sequential")
        role_line = len(lines)
        lines.append("ask")
        for it, x in mine:
            if it.policy[x] != "ask":
                it.policy_line[x] = "policy:%d" % rule_of.get(it.topic, role_line)
        return "\n".join(lines) + "\n"

    def summary(self):
        return {"roles": self.roles, "strangers": sorted(sorted(p) for p in self.strangers),
                "friends": {n: sorted(f) for n, f in self.friends.items()}}


class Driver:
    """Carries the plan out through the CLI: proposes each intro at its
    moment, answers what the policies leave to the owner, withdraws the
    intros planned for it.  Tolerates nodes that are down or die mid-call:
    a call that may or may not have happened is reconciled from the node's
    state (topics are unique, so a proposal is found by its topic)."""

    def __init__(self, plan, nodes, chaos, log):
        self.plan = plan
        self.nodes = nodes  # name -> TortureNode
        self.chaos = chaos
        self.log = log
        self.by_topic = {it.topic: it for it in plan.intros}
        self.ids = {}  # topic -> intro id
        self.refused = {}  # topic -> error name (a proposal the node refused)
        self.withdrawn = {}  # topic -> True (withdraw went through) / False (too late)
        self.answered = {}  # (topic, side) -> "accept"/"decline"
        self.counts = {"cli_calls": 0, "unavailable": 0, "reconciled": 0}
        # Topics whose `propose` got no answer: it may or may not have been
        # stored (a power cut can make the commit durable and kill the node
        # before its reply), so the node is asked before proposing again.
        self.uncertain = set()
        self.askers = [n for n in plan.names if plan.roles[n] != "open"]

    # One attempt per step; a step that fails stays due -----------------
    def _call(self, node, *args):
        self.counts["cli_calls"] += 1
        try:
            return node.call(*args)
        except Unavailable:
            self.counts["unavailable"] += 1
            raise

    def _hung(self, name):
        s = self.chaos.stopped
        return s is not None and s.name == name

    def propose(self, it):
        """True once the intro is proposed (or refused for good)."""
        c = self.nodes[it.connector]
        if self._hung(it.connector):
            return False
        if it.topic in self.uncertain:
            try:
                found = self._find_topic(c, it.topic) is not None
            except Unavailable:
                return False
            self.uncertain.discard(it.topic)
            if found:
                return True
        a, b = it.parties
        args = ["propose", a, b, "--topic", it.topic, "--note", "about-" + it.topic]
        if it.mode == "sequential":
            args.append("--sequential")
        if it.expires_s is not None:
            args += ["--expires", "%ds" % it.expires_s]
        try:
            self.ids[it.topic] = self._call(c, *args)["id"]
            return True
        except Refused as e:
            # E_EXISTS may be our own earlier attempt that died unanswered.
            if self._find_topic(c, it.topic, time.monotonic() + 60) is None:
                self.refused[it.topic] = e.name
                self.log("driver: %s refused %s: %s" % (it.connector, it.topic, e))
            return True
        except Unavailable:
            self.uncertain.add(it.topic)
            try:
                found = self._find_topic(c, it.topic) is not None
            except Unavailable:
                return False
            self.uncertain.discard(it.topic)
            return found

    def _find_topic(self, c, topic, deadline=0):
        """After a proposal that may have happened: its id, from the node
        (asked until deadline; Unavailable after it)."""
        self.counts["cli_calls"] += 1
        intros = c.list_all("intros", deadline=deadline)
        for o in intros:
            if o["topic"] == topic:
                self.ids[topic] = o["id"]
                self.counts["reconciled"] += 1
                return o["id"]
        return None

    def withdraw(self, it):
        """True once the withdrawal is settled (done, or too late)."""
        c = self.nodes[it.connector]
        if self._hung(it.connector):
            return False
        iid = self.ids[it.topic]
        try:
            self._call(c, "withdraw", iid)
            self.withdrawn[it.topic] = True
        except Refused as e:
            if e.name != "E_BAD_STATE":
                raise
            try:
                state = self._call(c, "show", iid)["state"]
            except Unavailable:
                return False
            # "withdrawn" here: an earlier attempt went through unanswered.
            self.withdrawn[it.topic] = state == "withdrawn"
        except Unavailable:
            return False
        return True

    def answer_asks(self):
        """Answers every pending inbox item of the nodes that ask, as
        planned; "hold" and "ignore" are left pending."""
        for name in self.askers:
            if self._hung(name):
                continue
            node = self.nodes[name]
            try:
                items = self._call(node, "inbox", "--limit", str(node.PAGE))
            except Unavailable:
                continue
            for item in items:
                it = self.by_topic.get(item["topic"])
                if it is None or item["state"] != "pending" or name not in it.parties:
                    continue
                x = it.parties.index(name)
                ans = it.answer[x]
                if ans not in ("accept", "decline"):
                    continue
                args = (["accept", item["id"], "--note", it.note(x)] if ans == "accept"
                        else ["decline", item["id"], "--reason", it.reason(x)])
                try:
                    self._call(node, *args)
                    self.answered[(it.topic, x)] = ans
                except Refused as e:
                    if e.name != "E_BAD_STATE":  # closed meanwhile: nothing to answer
                        raise
                except Unavailable:
                    break  # next round

    def run(self, duration, deadline):
        """The workload: until everything is proposed, withdrawn and
        answered and `duration` has passed, or deadline (monotonic)."""
        t0 = time.monotonic()
        queue = deque(self.plan.intros)
        withdraws = []  # (due, intro)
        next_poll = 0.0
        while time.monotonic() < deadline and not self.chaos.broken:
            now = time.monotonic() - t0
            retry = deque()
            while queue and queue[0].at <= now:
                it = queue.popleft()
                if not self.propose(it):
                    retry.append(it)
                elif it.kind == "withdraw" and it.topic in self.ids:
                    withdraws.append((now + it.withdraw_after, it))
            queue.extendleft(reversed(retry))
            if retry:
                time.sleep(0.05)
            still = []
            for due, it in withdraws:
                if due > now or not self.withdraw(it):
                    still.append((due, it))
            withdraws = still
            if now >= next_poll:
                self.answer_asks()
                next_poll = now + 0.3
            if not queue and not withdraws and now >= duration:
                return True
            time.sleep(0.01)
        return False

    def results(self):
        """What the driver did, per topic, for the checker."""
        out = []
        for it in self.plan.intros:
            d = it.ledger()
            d["id"] = self.ids.get(it.topic)
            d["refused"] = self.refused.get(it.topic)
            d["withdrew"] = self.withdrawn.get(it.topic)
            out.append(d)
        return out
