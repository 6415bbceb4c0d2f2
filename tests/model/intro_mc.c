/* SPDX-License-Identifier: MIT */
/*
 * intro_mc: an explicit-state model checker for the intro workflow, over the
 * pure machines of proto/intro_machine.h (issue 13).
 *
 * The world is one or two connectors and two parties a and b, a clock, and a
 * network.  Every move is one atomic step of one node (sound because every
 * output of a step waits for its commit): a party's owner accepts, declines
 * or accepts again; a connector's owner withdraws; a node's sweep ticks; the
 * clock advances; the network delivers any message in flight (so messages
 * are delayed and reordered freely), the ACK of a delivery is lost (so the
 * sender sends it again and the receiver's seen set absorbs the duplicate),
 * a message that gets no ACK stays (drop-then-retry); and a party crashes and
 * restarts, losing only what is not committed.  A party keeps its refusals
 * of verified proposals (expired on arrival) as tombstones, committed with
 * the refusal (node/intro.c); --volatile-refusals models the node before
 * that, which kept them in memory only (lost on restart).  Inputs that the
 * node draws at random (the close delay) or that its owner's policy decides
 * (accept, decline, ask) are branched on.
 *
 * The search is breadth-first over 64-bit fingerprints (BLAKE2b of the
 * world's canonical bytes), so the first violation found has a shortest
 * trace; it is printed as numbered steps a person can replay.  Checked in
 * every reachable world:
 *   - consent: a party that adds the other holds an introduction that
 *     carries both parties' signed acceptances of that intro, and the
 *     connector is introduced;
 *   - exactly once: at most one contact per party per intro, and every
 *     event at most once per machine (intro.replied once per side and
 *     decision: an acceptance, and a decline once the intro is over);
 *   - one acceptance per party per intro (R26);
 *   - terminal states stay terminal (a party's closed or expired item with
 *     a stored acceptance may still become introduced, R30);
 *   - agreement when quiescent (network empty, nothing scheduled): the
 *     connector is introduced iff both parties are; otherwise neither party
 *     is pending, accepted or introduced;
 * and, when the whole space was explored, privacy (R31): every view party a
 * has of an intro b declined (a's record, the clock, the messages to a) is
 * also a view a can have of an intro the connector withdrew; likewise for b.
 * With --adversary, party a of intro 0 may also sign replies its machine
 * would not (a different acceptance, a decline; at most ADVERSARY_MAX, at
 * any time), its view includes the ACKs its replies got, and a second
 * privacy property is checked: every view a has once b declined or the
 * connector withdrew, until a close reaches a, is also a view of an intro
 * where neither happened (the connector takes a's replies as if the intro
 * still asked; --mutant overquiet is the behaviour before, which it must
 * find).
 *
 * Usage:
 *   intro_mc [--config parallel|sequential|two] [--max-states N] [--depth N]
 *            [--verbs N] [--no-policy] [--mutant m1|nodelay|overquiet] [--adversary]
 *            [--ignore PROPERTY]
 *            [--volatile-refusals] [--strict-liveness] [--expect-violation TEXT]
 *   intro_mc --table connector|party     (the machine's table in markdown)
 *   intro_mc --check docs/PROTOCOL.md    (its tables are the machine's)
 *
 * ctest -L model runs the three configurations with the bounds in
 * tests/model/CMakeLists.txt (measured on the shared 2-core machine: parallel
 * with 2 owner verbs per party, 305,093 states, all of them, 2 s; sequential,
 * 74,762 states, all, 0.6 s; two connectors with 1 verb, stopped at 3,000,000
 * states, depth 9, 22 s and 440 MB), and two mutants it must catch.  For a
 * release, run the larger bounds (about 3 minutes, 1.3 GB at most):
 *   build/tests/model/intro_mc --config parallel --verbs 4
 *       (2,607,585 states, all of them, 29 s, 200 MB)
 *   build/tests/model/intro_mc --config sequential --verbs 3
 *       (265,512 states, all of them, 2 s)
 *   build/tests/model/intro_mc --config two --verbs 2 --max-states 8000000
 *       (stops at 8,000,000 states, depth 10, 98 s, 1.2 GB)
 * Each prints the number of states and transitions explored; any exit status
 * but 0 is a failure.
 *
 * What the model leaves out: the nodes share one clock (no skew); an
 * envelope's own expiry (30 days after the intro's) lies beyond the model's
 * horizon, so every message is delivered in the end; a duplicate of an
 * envelope that was processed and ACKed ok is absorbed by the receiver's
 * seen set, which is committed with the step (R20), so it is no move; budget
 * refusals (reason 7), blocked connectors and tombstones are not modelled.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "proto/err.h"
#include "proto/intro_machine.h"

/* ---- The model's configuration --------------------------------------- */

#define MAX_INTROS 2
#define MAX_MSGS 16
#define ADVERSARY_MAX 2 /* replies the adversary may forge in one run */
#define NONE 0xff

/* Times are small integers: created at 0, expires at EXPIRES. */
#define EXPIRES 2
#define SKEW 1
#define DELAY_MIN 1
#define DELAY_MAX 2
/* An accepted item expires GRACE after the intro (30 days in twofoldd). */
#define GRACE 2
#define T_MAX (EXPIRES + SKEW + DELAY_MAX)
_Static_assert(EXPIRES + GRACE + 1 <= T_MAX, "the model reaches the accepted items' expiry");

struct config {
    int n_intros;          /* 1, or 2 (two connectors, both asking a and b) */
    bool sequential;       /* intro 0's mode (intro 1 is always parallel) */
    int party_verbs;       /* owner verbs per party per intro */
    int conn_verbs;        /* withdrawals per intro (0 or 1) */
    bool policy;           /* branch on the party's policy at each proposal */
    bool mutant_m1;        /* the party signs again after its own decline (issue 12) */
    bool mutant_nodelay;   /* a decline's close leaves at once (issue 12) */
    bool adversary;        /* intro 0's party a may send replies of its own making */
    bool mutant_overquiet; /* replies while a delayed close waits change nothing (before R31's fix)
                            */
    bool durable_refusals; /* a party's refusals survive a restart (the node's tombstones) */
    bool strict_liveness;  /* a close no one will ACK is a violation, not a note */
    const char *ignore[4]; /* properties (prefixes of their messages) not to report */
    int n_ignore;
    uint64_t max_states;
    unsigned max_depth;
};

/* ---- The world: fixed size, no pointers, only bytes ------------------ */

enum msg_kind { K_PROPOSAL, K_ACCEPT, K_DECLINE, K_INTRODUCTION, K_CLOSE };

struct msg {
    uint8_t kind;  /* enum msg_kind */
    uint8_t intro; /* which intro (and so which connector) */
    uint8_t side;  /* the party: recipient, or sender of a reply */
    uint8_t gen;   /* ACCEPT: the acceptance's number; INTRODUCTION: gen_a << 4 | gen_b */
    uint8_t late;  /* ACCEPT, DECLINE: signed after expires + skew */
};

enum cause {
    CAUSE_NONE,
    CAUSE_INTRODUCED,
    CAUSE_DECLINED_A,
    CAUSE_DECLINED_B,
    CAUSE_WITHDRAWN,
    CAUSE_EXPIRED
};

struct conn_w {
    uint8_t state, side[2];
    uint8_t close_at[2]; /* NONE or a time */
    uint8_t stored_gen[2];
    uint8_t verbs;
    uint8_t cause; /* history: what ended the asking */
    uint8_t emits[2];
    uint8_t replied[2][2]; /* intro.replied per side, per decision (accept) */
};

struct party_w {
    uint8_t state, has_accept;
    uint8_t signed_n; /* acceptances signed; the stored one is number signed_n */
    uint8_t my_late;  /* the stored acceptance was signed after expires + skew */
    uint8_t refused;  /* volatile: proposal refused lately */
    uint8_t verbs;
    uint8_t contacts;   /* history: contacts added */
    uint8_t intro_gens; /* history: gens in the introduction materialised */
    uint8_t emits[2];
    uint8_t forged; /* --adversary: replies sent outside the party's machine */
    uint8_t acks;   /* --adversary: the ACKs its replies got, 2 bits each, newest last */
};

struct world {
    uint8_t now, n_msgs;
    struct conn_w c[MAX_INTROS];
    struct party_w p[2][MAX_INTROS];
    struct msg m[MAX_MSGS];
};
_Static_assert(sizeof(struct world) == 2 + MAX_INTROS * sizeof(struct conn_w) +
                                           2 * MAX_INTROS * sizeof(struct party_w) +
                                           MAX_MSGS * sizeof(struct msg),
               "the world has no padding, so its bytes are canonical");

/* ---- Moves ----------------------------------------------------------- */

enum move_type {
    MV_DELIVER,
    MV_TICK_C,
    MV_TICK_P,
    MV_ACCEPT,
    MV_DECLINE,
    MV_WITHDRAW,
    MV_CRASH,
    MV_ADVANCE,
    MV_FORGE
};

/* type:4 a:4 b:4 idx:8 choice:4 lost:1 */
static uint32_t mv(enum move_type t, unsigned a, unsigned b, unsigned idx, unsigned choice,
                   unsigned lost)
{
    return (uint32_t)t | a << 4 | b << 8 | idx << 12 | choice << 20 | lost << 24;
}
#define MV_TYPE(m) ((enum move_type)((m)&0xf))
#define MV_A(m) (((m) >> 4) & 0xf)
#define MV_B(m) (((m) >> 8) & 0xf)
#define MV_IDX(m) (((m) >> 12) & 0xff)
#define MV_CHOICE(m) (((m) >> 20) & 0xf)
#define MV_LOST(m) (((m) >> 24) & 1)

/* ---- A run: the config, and what went wrong -------------------------- */

struct run {
    struct config cfg;
    char violation[256];
    bool overflow; /* a step put more than MAX_MSGS in flight */
    FILE *trace;   /* non-NULL while replaying a trace: describe each action */
};

__attribute__((format(printf, 2, 3))) static void violate(struct run *r, const char *fmt, ...)
{
    va_list ap;
    if (r->violation[0] != '\0')
        return; /* the first one found is the one reported */
    va_start(ap, fmt);
    vsnprintf(r->violation, sizeof r->violation, fmt, ap);
    va_end(ap);
    for (int k = 0; k < r->cfg.n_ignore; k++)
        if (strncmp(r->violation, r->cfg.ignore[k], strlen(r->cfg.ignore[k])) == 0)
            r->violation[0] = '\0';
}

/* ---- Conversions between the world and the machines ------------------ */

static struct tf_proto_im_conn conn_of(const struct conn_w *c)
{
    struct tf_proto_im_conn s;
    memset(&s, 0, sizeof s);
    s.state = (enum tf_proto_im_conn_state)c->state;
    s.side[0] = (enum tf_proto_im_side_state)c->side[0];
    s.side[1] = (enum tf_proto_im_side_state)c->side[1];
    s.expires = EXPIRES;
    for (int x = 0; x < 2; x++)
        s.close_at[x] = c->close_at[x] == NONE ? TF_PROTO_IM_NEVER : c->close_at[x];
    return s;
}

static void conn_put(struct conn_w *c, const struct tf_proto_im_conn *s)
{
    c->state = (uint8_t)s->state;
    c->side[0] = (uint8_t)s->side[0];
    c->side[1] = (uint8_t)s->side[1];
    for (int x = 0; x < 2; x++)
        c->close_at[x] = s->close_at[x] == TF_PROTO_IM_NEVER ? NONE : (uint8_t)s->close_at[x];
}

static struct tf_proto_im_party party_of(const struct party_w *p)
{
    struct tf_proto_im_party s;
    memset(&s, 0, sizeof s);
    s.state = (enum tf_proto_im_party_state)p->state;
    s.has_accept = p->has_accept;
    s.expires = p->state == TF_PROTO_IM_PARTY_UNKNOWN ? 0 : EXPIRES;
    s.grace = p->state == TF_PROTO_IM_PARTY_UNKNOWN ? 0 : GRACE;
    return s;
}

static const char *side_name(int x)
{
    return x ? "b" : "a";
}

static const char *kind_name(uint8_t k)
{
    static const char *const names[] = {"PROPOSAL", "ACCEPT", "DECLINE", "INTRODUCTION", "CLOSE"};
    return k < 5 ? names[k] : "?";
}

/* ---- Network --------------------------------------------------------- */

static int msg_cmp(const void *p, const void *q)
{
    return memcmp(p, q, sizeof(struct msg));
}

static void net_add(struct run *r, struct world *w, struct msg m)
{
    if (w->n_msgs == MAX_MSGS) {
        r->overflow = true;
        return;
    }
    w->m[w->n_msgs++] = m;
    if (r->trace)
        fprintf(r->trace, "      sends %s %s %s (intro %d)\n", kind_name(m.kind),
                m.kind == K_ACCEPT || m.kind == K_DECLINE ? "from" : "to", side_name(m.side),
                m.intro);
}

static void net_remove(struct world *w, unsigned i)
{
    memmove(&w->m[i], &w->m[i + 1], (w->n_msgs - i - 1) * sizeof w->m[0]);
    w->n_msgs--;
    memset(&w->m[w->n_msgs], 0, sizeof w->m[0]);
}

static void net_sort(struct world *w)
{
    qsort(w->m, w->n_msgs, sizeof w->m[0], msg_cmp);
}

/* ---- Carrying out the machines' actions (the model's executor) ------- */

static void note_emit(struct run *r, uint8_t emits[2], enum tf_proto_im_emit e, const char *who)
{
    unsigned bit = (unsigned)e;
    uint8_t *b = &emits[bit / 8];
    if (*b & (1u << (bit % 8)))
        violate(r, "exactly once: %s emitted %s twice", who, tf_proto_im_emit_name(e));
    *b = (uint8_t)(*b | (1u << (bit % 8)));
    if (r->trace)
        fprintf(r->trace, "      event %s\n", tf_proto_im_emit_name(e));
}

/* The connector of intro i steps; reply is the message being processed. */
static enum tf_proto_im_ack conn_step(struct run *r, struct world *w, int i,
                                      const struct tf_proto_im_conn_input *in,
                                      const struct msg *reply)
{
    struct conn_w *c = &w->c[i];
    struct tf_proto_im_conn s = conn_of(c), next;
    struct tf_proto_im_out out;
    tf_proto_im_conn_step(&s, in, &next, &out);
    if (r->cfg.mutant_overquiet && in->event == TF_PROTO_IM_CONN_REPLY &&
        s.state != TF_PROTO_IM_CONN_ASKING && s.state != TF_PROTO_IM_CONN_INTRODUCED &&
        s.close_at[in->side] != TF_PROTO_IM_NEVER && out.ack == TF_PROTO_IM_ACK_OK) {
        /* Before the fix: a reply while x's delayed close waits changed
         * nothing (nor was a second acceptance refused unless x had
         * accepted before the intro ended). */
        next = s;
        out.n = 0;
    }
    for (size_t k = 0; k < out.n && r->cfg.mutant_nodelay; k++) {
        /* The node before issue 12: a decline's close leaves at once. */
        struct tf_proto_im_action *a = &out.a[k];
        if (a->kind == TF_PROTO_IM_ACT_SCHEDULE_CLOSE && in->event == TF_PROTO_IM_CONN_REPLY) {
            a->kind = TF_PROTO_IM_ACT_SEND;
            next.close_at[a->side] = TF_PROTO_IM_NEVER;
        }
    }
    for (size_t k = 0; k < out.n; k++) {
        const struct tf_proto_im_action *a = &out.a[k];
        struct msg m;
        memset(&m, 0, sizeof m);
        switch (a->kind) {
        case TF_PROTO_IM_ACT_SEND:
            m.intro = (uint8_t)i;
            m.side = (uint8_t)a->side;
            switch (a->msg) {
            case TF_PROTO_IM_MSG_PROPOSAL:
                m.kind = K_PROPOSAL;
                break;
            case TF_PROTO_IM_MSG_INTRODUCTION:
                m.kind = K_INTRODUCTION;
                m.gen = (uint8_t)(c->stored_gen[0] << 4 | c->stored_gen[1]);
                break;
            case TF_PROTO_IM_MSG_CLOSE:
                m.kind = K_CLOSE;
                break;
            case TF_PROTO_IM_MSG_DECLINE:
                violate(r, "the connector sent a party's message");
                break;
            }
            net_add(r, w, m);
            break;
        case TF_PROTO_IM_ACT_STORE_REPLY:
            assert(reply != NULL);
            c->stored_gen[a->side] = reply->gen;
            break;
        case TF_PROTO_IM_ACT_EMIT:
            if (a->emit == TF_PROTO_IM_EMIT_INTRO_REPLIED) {
                if (++c->replied[reply->side][reply->kind == K_ACCEPT] > 1)
                    violate(r, "exactly once: intro.replied (%s) twice for side %s (intro %d)",
                            reply->kind == K_ACCEPT ? "accept" : "decline", side_name(reply->side),
                            i);
            } else {
                note_emit(r, c->emits, a->emit, "the connector");
            }
            break;
        case TF_PROTO_IM_ACT_SCHEDULE_CLOSE:
        case TF_PROTO_IM_ACT_DROP_CLOSE:
        case TF_PROTO_IM_ACT_STORE:
            break;
        case TF_PROTO_IM_ACT_SIGN_ACCEPT:
        case TF_PROTO_IM_ACT_RESEND_ACCEPT:
        case TF_PROTO_IM_ACT_ADD_CONTACT:
        case TF_PROTO_IM_ACT_REMEMBER_REFUSED:
            violate(r, "the connector ran a party's action");
            break;
        }
    }
    if (c->state == TF_PROTO_IM_CONN_ASKING && next.state != TF_PROTO_IM_CONN_ASKING) {
        switch (next.state) {
        case TF_PROTO_IM_CONN_ASKING:
            break;
        case TF_PROTO_IM_CONN_INTRODUCED:
            c->cause = CAUSE_INTRODUCED;
            break;
        case TF_PROTO_IM_CONN_DECLINED:
            c->cause =
                next.side[0] == TF_PROTO_IM_SIDE_DECLINED ? CAUSE_DECLINED_A : CAUSE_DECLINED_B;
            break;
        case TF_PROTO_IM_CONN_WITHDRAWN:
            c->cause = CAUSE_WITHDRAWN;
            break;
        case TF_PROTO_IM_CONN_EXPIRED:
            c->cause = CAUSE_EXPIRED;
            break;
        }
    }
    conn_put(c, &next);
    if (r->trace && (out.ack == TF_PROTO_IM_ACK_REFUSE || out.verb_rc != TF_OK))
        fprintf(r->trace, "      refused: %s\n", out.why);
    return out.ack;
}

/* Party x of intro i steps; intro is the introduction being processed. */
static struct tf_proto_im_out party_step(struct run *r, struct world *w, int x, int i,
                                         const struct tf_proto_im_party_input *in,
                                         const struct msg *intro)
{
    struct party_w *p = &w->p[x][i];
    struct tf_proto_im_party s = party_of(p), next;
    struct tf_proto_im_out out;
    tf_proto_im_party_step(&s, in, &next, &out);
    if (r->cfg.mutant_m1 && in->event == TF_PROTO_IM_PARTY_ACCEPT &&
        s.state == TF_PROTO_IM_PARTY_DECLINED) {
        /* The node before issue 12: accepting after one's own decline signs
         * a second acceptance. */
        next = s;
        next.state = TF_PROTO_IM_PARTY_ACCEPTED;
        next.has_accept = true;
        memset(&out, 0, sizeof out);
        out.a[out.n++].kind = TF_PROTO_IM_ACT_SIGN_ACCEPT;
        out.a[out.n++].kind = TF_PROTO_IM_ACT_STORE;
    }
    for (size_t k = 0; k < out.n; k++) {
        const struct tf_proto_im_action *a = &out.a[k];
        struct msg m;
        memset(&m, 0, sizeof m);
        m.intro = (uint8_t)i;
        m.side = (uint8_t)x;
        m.late = w->now > EXPIRES + SKEW;
        switch (a->kind) {
        case TF_PROTO_IM_ACT_SIGN_ACCEPT:
            p->signed_n++;
            p->my_late = m.late;
            m.kind = K_ACCEPT;
            m.gen = p->signed_n;
            net_add(r, w, m);
            break;
        case TF_PROTO_IM_ACT_RESEND_ACCEPT:
            m.kind = K_ACCEPT;
            m.gen = p->signed_n;
            m.late = p->my_late;
            net_add(r, w, m);
            break;
        case TF_PROTO_IM_ACT_SEND:
            if (a->msg != TF_PROTO_IM_MSG_DECLINE)
                violate(r, "a party sent a connector's message");
            m.kind = K_DECLINE;
            net_add(r, w, m);
            break;
        case TF_PROTO_IM_ACT_ADD_CONTACT: {
            assert(intro != NULL);
            p->contacts++;
            p->intro_gens = intro->gen;
            int ga = intro->gen >> 4, gb = intro->gen & 0xf;
            /* --adversary: an acceptance a made outside its machine is a's
             * signature all the same. */
            bool forged_a = i == 0 && ga >= 8 && ga < 8 + w->p[0][0].forged;
            if (ga < 1 || gb < 1 || (ga > w->p[0][i].signed_n && !forged_a) ||
                gb > w->p[1][i].signed_n)
                violate(r, "consent: party %s added the other without both acceptances (intro %d)",
                        side_name(x), i);
            if (w->c[i].state != TF_PROTO_IM_CONN_INTRODUCED)
                violate(r,
                        "consent: party %s added the other, the connector is not introduced "
                        "(intro %d)",
                        side_name(x), i);
            if (r->trace)
                fprintf(r->trace, "      adds the other party as a contact\n");
            break;
        }
        case TF_PROTO_IM_ACT_REMEMBER_REFUSED:
            p->refused = 1;
            break;
        case TF_PROTO_IM_ACT_EMIT:
            note_emit(r, p->emits, a->emit, x ? "party b" : "party a");
            break;
        case TF_PROTO_IM_ACT_STORE:
            break;
        case TF_PROTO_IM_ACT_STORE_REPLY:
        case TF_PROTO_IM_ACT_SCHEDULE_CLOSE:
        case TF_PROTO_IM_ACT_DROP_CLOSE:
            violate(r, "a party ran a connector's action");
            break;
        }
    }
    p->state = (uint8_t)next.state;
    p->has_accept = next.has_accept;
    if (r->trace && (out.ack == TF_PROTO_IM_ACK_REFUSE || out.verb_rc != TF_OK))
        fprintf(r->trace, "      refused: %s\n", out.why);
    return out;
}

static bool anything_due(const struct run *r, const struct world *w)
{
    for (int i = 0; i < r->cfg.n_intros; i++) {
        struct tf_proto_im_conn c = conn_of(&w->c[i]);
        if (tf_proto_im_conn_deadline(&c) <= w->now)
            return true;
        for (int x = 0; x < 2; x++) {
            struct tf_proto_im_party p = party_of(&w->p[x][i]);
            if (tf_proto_im_party_deadline(&p) <= w->now)
                return true;
        }
    }
    return false;
}

/* The close delays a choice stands for: bit 0 for side a, bit 1 for b. */
static uint64_t delay_of(unsigned choice, int side)
{
    return choice & (1u << side) ? DELAY_MAX : DELAY_MIN;
}

/* Applies move to w, into n.  Returns false if the move does nothing. */
static bool apply(struct run *r, const struct world *w, uint32_t move, struct world *n)
{
    *n = *w;
    switch (MV_TYPE(move)) {
    case MV_DELIVER: {
        unsigned idx = MV_IDX(move);
        const struct msg m = w->m[idx];
        enum tf_proto_im_ack ack;
        int i = m.intro, x = m.side;
        if (m.kind == K_ACCEPT || m.kind == K_DECLINE) {
            struct tf_proto_im_conn c = conn_of(&n->c[i]);
            struct tf_proto_im_conn_input in = {
                TF_PROTO_IM_CONN_REPLY,
                n->now,
                x,
                m.kind == K_ACCEPT,
                c.side[x] == TF_PROTO_IM_SIDE_ACCEPTED && m.gen == n->c[i].stored_gen[x],
                m.late != 0,
                {delay_of(MV_CHOICE(move), 0), delay_of(MV_CHOICE(move), 1)}};
            ack = conn_step(r, n, i, &in, &m);
            if (r->cfg.adversary && i == 0 && x == 0 && !MV_LOST(move))
                n->p[0][0].acks = (uint8_t)((unsigned)n->p[0][0].acks << 2 | (unsigned)ack);
        } else {
            struct tf_proto_im_party_input in = {
                0, n->now, EXPIRES, GRACE, TF_PROTO_IM_POLICY_ASK, false, n->p[x][i].refused != 0};
            switch ((enum msg_kind)m.kind) {
            case K_PROPOSAL:
                in.event = TF_PROTO_IM_PARTY_PROPOSAL;
                in.policy = (enum tf_proto_im_policy)MV_CHOICE(move);
                break;
            case K_INTRODUCTION:
                in.event = TF_PROTO_IM_PARTY_INTRODUCTION;
                in.materialises = n->p[x][i].has_accept &&
                                  ((x ? m.gen & 0xf : m.gen >> 4) == n->p[x][i].signed_n);
                break;
            case K_CLOSE:
                in.event = TF_PROTO_IM_PARTY_CLOSE;
                break;
            case K_ACCEPT:
            case K_DECLINE:
                break;
            }
            ack = party_step(r, n, x, i, &in, &m).ack;
        }
        /* The steps added messages at the end, so idx still names this
         * one.  An ACK that is lost makes the sender send the envelope
         * again; after an ok ACK the receiver's seen set (committed with the
         * step, R20) absorbs the copy, so that loss is no move at all; after a
         * refusal nothing was recorded and the copy is processed again. */
        switch (ack) {
        case TF_PROTO_IM_ACK_OK:
            if (MV_LOST(move))
                return false;
            net_remove(n, idx);
            break;
        case TF_PROTO_IM_ACK_REFUSE:
        case TF_PROTO_IM_ACK_LATE:
            if (!MV_LOST(move))
                net_remove(n, idx);
            break;
        case TF_PROTO_IM_ACK_RETRY:
            if (MV_LOST(move))
                return false; /* the same as without the loss */
            break;
        case TF_PROTO_IM_ACK_NONE:
            violate(r, "a delivery got no ACK decision");
            break;
        }
        break;
    }
    case MV_TICK_C: {
        struct tf_proto_im_conn_input in = {TF_PROTO_IM_CONN_TICK, n->now, 0, 0, 0, 0, {0, 0}};
        (void)conn_step(r, n, (int)MV_A(move), &in, NULL);
        break;
    }
    case MV_TICK_P: {
        struct tf_proto_im_party_input in = {TF_PROTO_IM_PARTY_TICK, n->now, 0, 0, 0, 0, 0};
        (void)party_step(r, n, (int)MV_A(move), (int)MV_B(move), &in, NULL);
        break;
    }
    case MV_ACCEPT:
    case MV_DECLINE: {
        int x = (int)MV_A(move), i = (int)MV_B(move);
        struct tf_proto_im_party_input in = {MV_TYPE(move) == MV_ACCEPT ? TF_PROTO_IM_PARTY_ACCEPT
                                                                        : TF_PROTO_IM_PARTY_DECLINE,
                                             n->now,
                                             0,
                                             0,
                                             0,
                                             0,
                                             0};
        struct tf_proto_im_out out = party_step(r, n, x, i, &in, NULL);
        if (out.verb_rc != TF_OK)
            return false; /* refused (the table test checks that nothing changes) */
        n->p[x][i].verbs--;
        break;
    }
    case MV_WITHDRAW: {
        int i = (int)MV_A(move);
        struct tf_proto_im_conn_input in = {
            TF_PROTO_IM_CONN_WITHDRAW,
            n->now,
            0,
            0,
            0,
            0,
            {delay_of(MV_CHOICE(move), 0), delay_of(MV_CHOICE(move), 1)}};
        if (n->c[i].state != TF_PROTO_IM_CONN_ASKING)
            return false;
        (void)conn_step(r, n, i, &in, NULL);
        if (n->c[i].state != TF_PROTO_IM_CONN_WITHDRAWN)
            return false; /* it had expired: the tick move covers that */
        n->c[i].verbs--;
        break;
    }
    case MV_CRASH:
        for (int i = 0; i < MAX_INTROS; i++)
            n->p[MV_A(move)][i].refused = 0;
        break;
    case MV_ADVANCE:
        n->now++;
        break;
    case MV_FORGE: {
        /* Party a of intro 0 signs a reply its own machine would not: a
         * different acceptance (a gen no honest signing uses) or a decline,
         * at any time. */
        struct msg m = {MV_CHOICE(move) ? K_DECLINE : K_ACCEPT, 0, 0,
                        (uint8_t)(MV_CHOICE(move) ? 0 : 8 + n->p[0][0].forged), 0};
        n->p[0][0].forged++;
        net_add(r, n, m);
        break;
    }
    }
    net_sort(n);
    return memcmp(w, n, sizeof *w) != 0;
}

/* Every move enabled in w. */
static size_t moves(const struct run *r, const struct world *w, uint32_t *out)
{
    size_t n = 0;
    for (unsigned k = 0; k < w->n_msgs; k++) {
        if (k > 0 && memcmp(&w->m[k], &w->m[k - 1], sizeof w->m[k]) == 0)
            continue; /* identical copies: one representative */
        /* A proposal: the policy's answer.  A reply: the delay of the
         * close it may schedule (choice 0: the shortest, 3: the longest). */
        bool reply = w->m[k].kind == K_DECLINE || w->m[k].kind == K_ACCEPT;
        unsigned choices = w->m[k].kind == K_PROPOSAL ? (r->cfg.policy ? 3 : 1)
                           : reply                    ? (DELAY_MIN != DELAY_MAX ? 2 : 1)
                                                      : 1;
        for (unsigned c = 0; c < choices; c++)
            for (unsigned lost = 0; lost < 2; lost++)
                out[n++] = mv(MV_DELIVER, 0, 0, k, reply ? c * 3 : c, lost);
    }
    for (int i = 0; i < r->cfg.n_intros; i++) {
        struct tf_proto_im_conn c = conn_of(&w->c[i]);
        if (tf_proto_im_conn_deadline(&c) <= w->now)
            out[n++] = mv(MV_TICK_C, (unsigned)i, 0, 0, 0, 0);
        if (w->c[i].verbs > 0 && w->c[i].state == TF_PROTO_IM_CONN_ASKING)
            for (unsigned d = 0; d < (DELAY_MIN != DELAY_MAX ? 4u : 1u); d++)
                out[n++] = mv(MV_WITHDRAW, (unsigned)i, 0, 0, d, 0); /* each close its own */
        for (int x = 0; x < 2; x++) {
            struct tf_proto_im_party p = party_of(&w->p[x][i]);
            if (tf_proto_im_party_deadline(&p) <= w->now)
                out[n++] = mv(MV_TICK_P, (unsigned)x, (unsigned)i, 0, 0, 0);
            if (w->p[x][i].verbs > 0) {
                out[n++] = mv(MV_ACCEPT, (unsigned)x, (unsigned)i, 0, 0, 0);
                out[n++] = mv(MV_DECLINE, (unsigned)x, (unsigned)i, 0, 0, 0);
            }
        }
    }
    for (int x = 0; x < 2; x++) {
        bool volatile_state = false;
        for (int i = 0; i < r->cfg.n_intros; i++)
            volatile_state |= w->p[x][i].refused != 0;
        if (volatile_state && !r->cfg.durable_refusals)
            out[n++] = mv(MV_CRASH, (unsigned)x, 0, 0, 0, 0);
    }
    if (r->cfg.adversary && w->p[0][0].forged < ADVERSARY_MAX)
        for (unsigned c = 0; c < 2; c++)
            out[n++] = mv(MV_FORGE, 0, 0, 0, c, 0);
    /* The sweep runs every second: time moves on only once nothing is due. */
    if (w->now < T_MAX && !anything_due(r, w))
        out[n++] = mv(MV_ADVANCE, 0, 0, 0, 0, 0);
    return n;
}

/* ---- Properties ------------------------------------------------------ */

static bool quiescent(const struct run *r, const struct world *w)
{
    if (w->n_msgs > 0)
        return false;
    for (int i = 0; i < r->cfg.n_intros; i++) {
        struct tf_proto_im_conn c = conn_of(&w->c[i]);
        if (tf_proto_im_conn_deadline(&c) != TF_PROTO_IM_NEVER)
            return false;
        for (int x = 0; x < 2; x++) {
            struct tf_proto_im_party p = party_of(&w->p[x][i]);
            if (tf_proto_im_party_deadline(&p) != TF_PROTO_IM_NEVER)
                return false;
        }
    }
    return true;
}

static void check(struct run *r, const struct world *w, const struct world *n)
{
    for (int i = 0; i < r->cfg.n_intros; i++) {
        const struct conn_w *c0 = &w->c[i], *c1 = &n->c[i];
        if (c0->state != TF_PROTO_IM_CONN_ASKING && c1->state != c0->state)
            violate(r, "terminal: the connector left %s (intro %d)",
                    tf_proto_im_conn_state_name(c0->state), i);
        if (c1->state == TF_PROTO_IM_CONN_INTRODUCED &&
            (c1->stored_gen[0] < 1 || c1->stored_gen[1] < 1))
            violate(r, "consent: the connector introduced without both acceptances (intro %d)", i);
        for (int x = 0; x < 2; x++) {
            const struct party_w *p0 = &w->p[x][i], *p1 = &n->p[x][i];
            if (p1->signed_n > 1)
                violate(r, "one acceptance: party %s signed two acceptances (intro %d)",
                        side_name(x), i);
            if (p1->contacts > 1)
                violate(r, "exactly once: party %s added the contact twice (intro %d)",
                        side_name(x), i);
            bool left = p1->state != p0->state;
            /* closed and expired may still become introduced (R30), when an
             * acceptance is stored. */
            bool over =
                p0->state == TF_PROTO_IM_PARTY_CLOSED || p0->state == TF_PROTO_IM_PARTY_EXPIRED;
            if (left && (p0->state == TF_PROTO_IM_PARTY_INTRODUCED ||
                         (over && !(p1->state == TF_PROTO_IM_PARTY_INTRODUCED && p0->has_accept))))
                violate(r, "terminal: a party left %s (intro %d)",
                        tf_proto_im_party_state_name(p0->state), i);
        }
    }
    if (!quiescent(r, n))
        return;
    for (int i = 0; i < r->cfg.n_intros; i++) {
        bool introduced = n->c[i].state == TF_PROTO_IM_CONN_INTRODUCED;
        for (int x = 0; x < 2; x++) {
            uint8_t s = n->p[x][i].state;
            if (introduced && s != TF_PROTO_IM_PARTY_INTRODUCED)
                violate(r,
                        "agreement: quiescent, the connector introduced, party %s not "
                        "(intro %d)",
                        side_name(x), i);
            if (!introduced && (s == TF_PROTO_IM_PARTY_INTRODUCED ||
                                s == TF_PROTO_IM_PARTY_ACCEPTED || s == TF_PROTO_IM_PARTY_PENDING))
                violate(r,
                        "agreement: quiescent, the intro is over, party %s still open "
                        "(intro %d)",
                        side_name(x), i);
        }
    }
}

/* Party x's view of intro i: its record, the clock, the messages to it. */
static uint64_t view_of(const struct world *w, int x, int i)
{
    uint8_t buf[4 + sizeof(struct party_w) + MAX_MSGS];
    size_t len = 0;
    struct party_w p = w->p[x][i];
    buf[len++] = (uint8_t)x;
    buf[len++] = (uint8_t)i;
    buf[len++] = w->now;
    memcpy(buf + len, &p, sizeof p);
    len += sizeof p;
    for (unsigned k = 0; k < w->n_msgs; k++) {
        const struct msg *m = &w->m[k];
        if (m->intro == i && m->side == x && m->kind != K_ACCEPT && m->kind != K_DECLINE) {
            buf[len++] = m->kind;
        }
    }
    uint8_t h[16];
    crypto_generichash(h, sizeof h, buf, len, NULL, 0);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return v;
}

/* ---- Visited set: fingerprints, parents and moves -------------------- */

struct visited {
    uint64_t *fp;     /* by state index */
    uint32_t *parent; /* by state index */
    uint32_t *move;   /* by state index */
    uint32_t *table;  /* open addressing: state index + 1, or 0 */
    uint64_t n, cap, table_cap;
};

static uint64_t fingerprint(const struct world *w)
{
    uint8_t h[16];
    crypto_generichash(h, sizeof h, (const uint8_t *)w, sizeof *w, NULL, 0);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return v;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "intro_mc: out of memory\n");
        exit(2);
    }
    return p;
}

static void visited_init(struct visited *v, uint64_t max_states)
{
    v->cap = max_states + 1;
    v->table_cap = 1;
    while (v->table_cap < v->cap * 2)
        v->table_cap <<= 1;
    v->fp = xcalloc(v->cap, sizeof *v->fp);
    v->parent = xcalloc(v->cap, sizeof *v->parent);
    v->move = xcalloc(v->cap, sizeof *v->move);
    v->table = xcalloc(v->table_cap, sizeof *v->table);
    v->n = 0;
}

static void visited_free(struct visited *v)
{
    free(v->fp);
    free(v->parent);
    free(v->move);
    free(v->table);
}

/* Adds fp; returns its index, or -1 if it was there, or -2 if full. */
static int64_t visited_add(struct visited *v, uint64_t fp, uint32_t parent, uint32_t move)
{
    uint64_t mask = v->table_cap - 1;
    for (uint64_t h = fp & mask;; h = (h + 1) & mask) {
        uint32_t slot = v->table[h];
        if (slot == 0) {
            if (v->n == v->cap)
                return -2;
            v->fp[v->n] = fp;
            v->parent[v->n] = parent;
            v->move[v->n] = move;
            v->table[h] = (uint32_t)(v->n + 1);
            return (int64_t)v->n++;
        }
        if (v->fp[slot - 1] == fp)
            return -1;
    }
}

/* A set of 64-bit views, and for each the first (so shallowest) state that
 * gave it. */
struct set64 {
    uint64_t *slot;
    uint64_t n, cap;
};

static void set_add(struct set64 *s, uint64_t v)
{
    if (v == 0)
        v = 1;
    if ((s->n + 1) * 2 > s->cap) {
        struct set64 bigger = {xcalloc(s->cap ? s->cap * 2 : 1024, sizeof(uint64_t)), 0,
                               s->cap ? s->cap * 2 : 1024};
        for (uint64_t k = 0; k < s->cap; k++)
            if (s->slot[k])
                set_add(&bigger, s->slot[k]);
        free(s->slot);
        *s = bigger;
    }
    for (uint64_t h = v & (s->cap - 1);; h = (h + 1) & (s->cap - 1)) {
        if (s->slot[h] == v)
            return;
        if (s->slot[h] == 0) {
            s->slot[h] = v;
            s->n++;
            return;
        }
    }
}

static bool set_has(const struct set64 *s, uint64_t v);

struct views {
    struct set64 set;
    uint64_t *item; /* pairs: view, state index */
    size_t n, cap;
};

static void views_add(struct views *v, uint64_t view, uint64_t state)
{
    if (set_has(&v->set, view))
        return;
    set_add(&v->set, view);
    if (v->n + 2 > v->cap) {
        v->cap = v->cap ? v->cap * 2 : 1024;
        v->item = realloc(v->item, v->cap * sizeof *v->item);
        if (v->item == NULL) {
            fprintf(stderr, "intro_mc: out of memory\n");
            exit(2);
        }
    }
    v->item[v->n++] = view;
    v->item[v->n++] = state;
}

/* How many views of a are not among b's; *first is the state of the first. */
static uint64_t views_missing(const struct views *a, const struct views *b, uint64_t *first)
{
    uint64_t missing = 0;
    for (size_t k = 0; k < a->n; k += 2)
        if (!set_has(&b->set, a->item[k]) && missing++ == 0)
            *first = a->item[k + 1];
    return missing;
}

static bool set_has(const struct set64 *s, uint64_t v)
{
    if (v == 0)
        v = 1;
    if (s->cap == 0)
        return false;
    for (uint64_t h = v & (s->cap - 1);; h = (h + 1) & (s->cap - 1)) {
        if (s->slot[h] == v)
            return true;
        if (s->slot[h] == 0)
            return false;
    }
}

/* ---- Initial world and traces ---------------------------------------- */

static void initial(struct run *r, struct world *w)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < MAX_INTROS; i++) {
        w->c[i].close_at[0] = w->c[i].close_at[1] = NONE;
        for (int x = 0; x < 2; x++) {
            w->p[x][i].state = TF_PROTO_IM_PARTY_UNKNOWN;
            w->p[x][i].verbs = (uint8_t)r->cfg.party_verbs;
        }
    }
    for (int i = 0; i < r->cfg.n_intros; i++) {
        struct tf_proto_im_conn s;
        struct tf_proto_im_out out;
        tf_proto_im_conn_propose(i == 0 && r->cfg.sequential, EXPIRES, &s, &out);
        conn_put(&w->c[i], &s);
        w->c[i].verbs = (uint8_t)r->cfg.conn_verbs;
        for (size_t k = 0; k < out.n; k++)
            if (out.a[k].kind == TF_PROTO_IM_ACT_SEND)
                net_add(r, w, (struct msg){K_PROPOSAL, (uint8_t)i, (uint8_t)out.a[k].side, 0, 0});
    }
    net_sort(w);
}

static void describe_move(const struct world *w, uint32_t move, char *buf, size_t cap)
{
    const struct msg *m = &w->m[MV_IDX(move)];
    static const char *const policies[] = {"ask", "accept", "decline"};
    switch (MV_TYPE(move)) {
    case MV_DELIVER:
        if (m->kind == K_ACCEPT || m->kind == K_DECLINE)
            snprintf(buf, cap, "t=%d net delivers %s%.0d(%s%s) to C%d (close delay %d)%s", w->now,
                     m->kind == K_ACCEPT ? "ACCEPT#" : "DECLINE", m->gen, side_name(m->side),
                     m->late ? ", signed late" : "", m->intro, (int)delay_of(MV_CHOICE(move), 0),
                     MV_LOST(move) ? "; its ACK is lost" : "");
        else if (m->kind == K_PROPOSAL)
            snprintf(buf, cap, "t=%d net delivers PROPOSAL(intro %d) to %s (policy: %s)%s", w->now,
                     m->intro, side_name(m->side), policies[MV_CHOICE(move)],
                     MV_LOST(move) ? "; its ACK is lost" : "");
        else if (m->kind == K_INTRODUCTION)
            snprintf(buf, cap,
                     "t=%d net delivers INTRODUCTION(intro %d, acceptances a#%d b#%d) to %s%s",
                     w->now, m->intro, m->gen >> 4, m->gen & 0xf, side_name(m->side),
                     MV_LOST(move) ? "; its ACK is lost" : "");
        else
            snprintf(buf, cap, "t=%d net delivers CLOSE(intro %d) to %s%s", w->now, m->intro,
                     side_name(m->side), MV_LOST(move) ? "; its ACK is lost" : "");
        break;
    case MV_TICK_C:
        snprintf(buf, cap, "t=%d C%u's sweep ticks", w->now, MV_A(move));
        break;
    case MV_TICK_P:
        snprintf(buf, cap, "t=%d %s's sweep ticks (intro %u)", w->now, side_name((int)MV_A(move)),
                 MV_B(move));
        break;
    case MV_ACCEPT:
    case MV_DECLINE:
        snprintf(buf, cap, "t=%d %s's owner %s intro %u", w->now, side_name((int)MV_A(move)),
                 MV_TYPE(move) == MV_ACCEPT ? "accepts" : "declines", MV_B(move));
        break;
    case MV_WITHDRAW:
        snprintf(buf, cap, "t=%d C%u's owner withdraws (close delays: a %d, b %d)", w->now,
                 MV_A(move), (int)delay_of(MV_CHOICE(move), 0), (int)delay_of(MV_CHOICE(move), 1));
        break;
    case MV_CRASH:
        snprintf(buf, cap, "t=%d %s crashes and restarts (forgets refused proposals)", w->now,
                 side_name((int)MV_A(move)));
        break;
    case MV_ADVANCE:
        snprintf(buf, cap, "t=%d the clock advances to t=%d", w->now, w->now + 1);
        break;
    case MV_FORGE:
        snprintf(buf, cap, "t=%d a signs a %s of its own making", w->now,
                 MV_CHOICE(move) ? "decline" : "different acceptance");
        break;
    }
}

/* --adversary: party a of intro 0 has been sent a close (or holds one). */
static bool a_closed(const struct world *w)
{
    if (w->p[0][0].state == TF_PROTO_IM_PARTY_CLOSED)
        return true;
    for (unsigned k = 0; k < w->n_msgs; k++)
        if (w->m[k].kind == K_CLOSE && w->m[k].intro == 0 && w->m[k].side == 0)
            return true;
    return false;
}

static void print_world(const struct run *r, const struct world *w)
{
    for (int i = 0; i < r->cfg.n_intros; i++) {
        const struct conn_w *c = &w->c[i];
        printf("      C%d %s (a %s, b %s)", i, tf_proto_im_conn_state_name(c->state),
               tf_proto_im_side_state_name(c->side[0]), tf_proto_im_side_state_name(c->side[1]));
        for (int x = 0; x < 2; x++)
            printf("; %s %s%s", side_name(x), tf_proto_im_party_state_name(w->p[x][i].state),
                   w->p[x][i].has_accept ? " (acceptance stored)" : "");
        printf("\n");
    }
    printf("      in flight:");
    for (unsigned k = 0; k < w->n_msgs; k++) {
        if (w->m[k].kind == K_ACCEPT)
            printf(" ACCEPT#%d<-%s", w->m[k].gen, side_name(w->m[k].side));
        else
            printf(" %s%s%s", kind_name(w->m[k].kind), w->m[k].kind == K_DECLINE ? "<-" : "->",
                   side_name(w->m[k].side));
        if (r->cfg.n_intros > 1)
            printf("(%d)", w->m[k].intro);
    }
    printf("%s\n", w->n_msgs ? "" : " nothing");
}

/* Replays the moves that lead to state index s, printing each step. */
static void print_trace(struct run *r, const struct visited *v, uint64_t s, uint32_t last_move,
                        bool with_last)
{
    size_t len = 0;
    for (uint64_t k = s; k != 0; k = v->parent[k])
        len++;
    uint32_t *path = xcalloc(len + 1, sizeof *path);
    size_t i = len;
    for (uint64_t k = s; k != 0; k = v->parent[k])
        path[--i] = v->move[k];
    if (with_last)
        path[len++] = last_move;
    struct world w, n;
    struct run quiet = *r;
    quiet.trace = NULL;
    initial(&quiet, &w);
    quiet.trace = stdout;
    printf("  0. C proposes: %s, expires at t=%d (skew %d, close delay %d..%d)\n",
           r->cfg.sequential ? "sequential" : "parallel", EXPIRES, SKEW, DELAY_MIN, DELAY_MAX);
    print_world(r, &w);
    for (size_t k = 0; k < len; k++) {
        char what[256];
        describe_move(&w, path[k], what, sizeof what);
        printf("%3zu. %s\n", k + 1, what);
        quiet.violation[0] = '\0';
        (void)apply(&quiet, &w, path[k], &n);
        print_world(r, &n);
        w = n;
    }
    free(path);
}

/* ---- The search ------------------------------------------------------ */

struct result {
    uint64_t states, transitions;
    unsigned depth;
    bool complete, violated;
};

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static struct result search(struct run *r, const char *expect)
{
    struct result res = {0, 0, 0, false, false};
    struct visited v;
    visited_init(&v, r->cfg.max_states);
    struct world *cur = xcalloc(1, sizeof *cur), *next = NULL;
    uint32_t *cur_id = xcalloc(1, sizeof *cur_id), *next_id = NULL;
    size_t n_cur = 1, n_next = 0, cap_next = 0;
    struct views declined, withdrawn, ended, open;
    memset(&declined, 0, sizeof declined);
    memset(&withdrawn, 0, sizeof withdrawn);
    memset(&ended, 0, sizeof ended);
    memset(&open, 0, sizeof open);
    uint64_t stuck = 0, stuck_state = 0, overflows = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    initial(r, &cur[0]);
    (void)visited_add(&v, fingerprint(&cur[0]), 0, 0);
    bool full = false;
    while (n_cur > 0 && !full && res.depth < r->cfg.max_depth) {
        for (size_t k = 0; k < n_cur && !full; k++) {
            const struct world *w = &cur[k];
            uint32_t mvs[4 * MAX_MSGS * 3 + 64];
            size_t n_mv = moves(r, w, mvs);
            for (size_t j = 0; j < n_mv; j++) {
                struct world n;
                r->violation[0] = '\0';
                r->overflow = false;
                if (!apply(r, w, mvs[j], &n))
                    continue;
                if (r->overflow) {
                    overflows++;
                    continue;
                }
                res.transitions++;
                check(r, w, &n);
                if (r->violation[0]) {
                    res.violated = true;
                    printf("VIOLATION (%s) after %" PRIu64 " states, depth %u:\n  %s\n",
                           r->cfg.sequential ? "sequential" : "parallel", v.n, res.depth + 1,
                           r->violation);
                    if (expect == NULL || strstr(r->violation, expect) == NULL) {
                        printf("Shortest trace:\n");
                        char saved[256];
                        memcpy(saved, r->violation, sizeof saved);
                        print_trace(r, &v, cur_id[k], mvs[j], true);
                        memcpy(r->violation, saved, sizeof saved);
                    }
                    goto out;
                }
                int64_t id = visited_add(&v, fingerprint(&n), cur_id[k], mvs[j]);
                if (id == -2) {
                    full = true;
                    break;
                }
                if (id < 0)
                    continue;
                if (n_next == cap_next) {
                    cap_next = cap_next ? cap_next * 2 : 1024;
                    next = realloc(next, cap_next * sizeof *next);
                    next_id = realloc(next_id, cap_next * sizeof *next_id);
                    if (next == NULL || next_id == NULL) {
                        fprintf(stderr, "intro_mc: out of memory\n");
                        exit(2);
                    }
                }
                next[n_next] = n;
                next_id[n_next++] = (uint32_t)id;
                /* Views for the privacy check. */
                for (int i = 0; i < r->cfg.n_intros; i++) {
                    for (int x = 0; x < 2; x++) {
                        uint8_t cause = n.c[i].cause;
                        if (cause == CAUSE_WITHDRAWN)
                            views_add(&withdrawn, view_of(&n, x, i), (uint64_t)id);
                        else if (cause == (x ? CAUSE_DECLINED_A : CAUSE_DECLINED_B))
                            views_add(&declined, view_of(&n, x, i), (uint64_t)id);
                    }
                }
                /* --adversary: a's views once b declined or the owner
                 * withdrew, until a close reaches a; and a's views where
                 * neither happened. */
                if (r->cfg.adversary) {
                    uint8_t cause = n.c[0].cause;
                    if (cause == CAUSE_DECLINED_B || cause == CAUSE_WITHDRAWN) {
                        if (!a_closed(&n))
                            views_add(&ended, view_of(&n, 0, 0), (uint64_t)id);
                    } else {
                        views_add(&open, view_of(&n, 0, 0), (uint64_t)id);
                    }
                }
                /* Retried for ever (until the envelope expires): a close
                 * nobody will ACK. */
                if (n.now == T_MAX && n.n_msgs > 0 && !anything_due(r, &n)) {
                    bool all_retry = true;
                    for (unsigned m = 0; m < n.n_msgs && all_retry; m++)
                        all_retry =
                            n.m[m].kind == K_CLOSE &&
                            n.p[n.m[m].side][n.m[m].intro].state == TF_PROTO_IM_PARTY_UNKNOWN &&
                            !n.p[n.m[m].side][n.m[m].intro].refused;
                    if (all_retry && stuck++ == 0)
                        stuck_state = (uint64_t)id;
                }
            }
        }
        free(cur);
        free(cur_id);
        cur = next;
        cur_id = next_id;
        n_cur = n_next;
        next = NULL;
        next_id = NULL;
        n_next = cap_next = 0;
        res.depth++;
    }
    res.complete = n_cur == 0 && !full;
    printf("%s: %" PRIu64 " states, %" PRIu64 " transitions, depth %u, %.1f s, %s%s\n",
           r->cfg.n_intros == 2 ? "two connectors"
           : r->cfg.sequential  ? "sequential"
                                : "parallel",
           v.n, res.transitions, res.depth, seconds_since(&t0),
           res.complete ? "the whole space explored"
           : full       ? "stopped at the state bound"
                        : "stopped at the depth bound",
           overflows ? " (some steps overflowed the network bound)" : "");
    if (stuck) {
        printf("%s: %" PRIu64 " end states hold closes no one will ACK (retried until the "
               "envelope expires, 30 days after the intro); the shortest:\n",
               r->cfg.strict_liveness ? "VIOLATION: liveness" : "note", stuck);
        print_trace(r, &v, stuck_state, 0, false);
        if (r->cfg.strict_liveness) {
            res.violated = true;
            snprintf(r->violation, sizeof r->violation, "liveness: a close no one will ACK");
        }
    }
    if (res.complete) {
        /* Every view after a decline must be possible after a withdrawal.
         * In parallel mode the converse holds too (the same delays, any
         * time): the two sets are equal.  In sequential mode a party that
         * is closed before it accepted knows the other was never asked,
         * which is the mode, not a leak. */
        uint64_t first_d = 0, first_w = 0;
        uint64_t missing_d = views_missing(&declined, &withdrawn, &first_d);
        bool both_ways = r->cfg.n_intros == 1 && !r->cfg.sequential;
        uint64_t missing_w = both_ways ? views_missing(&withdrawn, &declined, &first_w) : 0;
        printf("privacy: %zu distinct views of a party after the other declined, %zu after a "
               "withdrawal; %" PRIu64 " of the first are not among the second%s",
               declined.n / 2, withdrawn.n / 2, missing_d, both_ways ? "" : "\n");
        if (both_ways)
            printf(", %" PRIu64 " of the second not among the first\n", missing_w);
        if (missing_d || missing_w) {
            res.violated = true;
            snprintf(r->violation, sizeof r->violation,
                     "privacy: a party can tell a decline from a withdrawal");
            printf("VIOLATION: %s; the shortest such %s world:\n", r->violation,
                   missing_d ? "decline" : "withdrawal");
            print_trace(r, &v, missing_d ? first_d : first_w, 0, false);
        }
        /* --adversary: whatever a signs, until its close it cannot tell
         * that the intro ended (by b's decline or a withdrawal) from one
         * where neither happened (R31): the same record, clock, messages
         * and ACKs are possible there. */
        uint64_t first_e = 0;
        uint64_t missing_e = r->cfg.adversary ? views_missing(&ended, &open, &first_e) : 0;
        if (r->cfg.adversary)
            printf("privacy (adversary): %zu distinct views of party a after the intro ended, "
                   "before its close; %" PRIu64 " of them are not views of an intro still open\n",
                   ended.n / 2, missing_e);
        if (missing_e && !res.violated) {
            res.violated = true;
            snprintf(r->violation, sizeof r->violation,
                     "privacy: a party can tell that the intro ended before its close");
            printf("VIOLATION: %s; the shortest such world:\n", r->violation);
            print_trace(r, &v, first_e, 0, false);
        }
    } else {
        printf("privacy: not checked (the space was not explored to the end)\n");
    }
    res.states = v.n;
out:
    res.states = v.n;
    free(cur);
    free(cur_id);
    free(next);
    free(next_id);
    free(declined.set.slot);
    free(declined.item);
    free(withdrawn.set.slot);
    free(withdrawn.item);
    free(ended.set.slot);
    free(ended.item);
    free(open.set.slot);
    free(open.item);
    visited_free(&v);
    return res;
}

/* ---- Tables in markdown ---------------------------------------------- */

static const char *key_name(uint8_t k, const char *(*name)(int))
{
    return k == TF_PROTO_IM_ANY    ? "any"
           : k == TF_PROTO_IM_OVER ? "over"
           : k == TF_PROTO_IM_SAME ? "="
                                   : name(k);
}

static const char *cs_name(int v)
{
    return tf_proto_im_conn_state_name((enum tf_proto_im_conn_state)v);
}
static const char *ss_name(int v)
{
    return tf_proto_im_side_state_name((enum tf_proto_im_side_state)v);
}
static const char *ps_name(int v)
{
    return tf_proto_im_party_state_name((enum tf_proto_im_party_state)v);
}
static const char *bool_name(int v)
{
    return v ? "yes" : "no";
}

static void print_actions(FILE *f, const struct tf_proto_im_expect *a, size_t n)
{
    static const char *const rel[] = {"x", "o", "a", "b", "C"};
    if (n == 0)
        fprintf(f, "-");
    for (size_t k = 0; k < n; k++) {
        const char *sep = k ? ", " : "";
        switch ((enum tf_proto_im_act_kind)a[k].kind) {
        case TF_PROTO_IM_ACT_SEND:
            fprintf(f, "%ssend %s to %s", sep, tf_proto_im_msg_name(a[k].msg), rel[a[k].side]);
            break;
        case TF_PROTO_IM_ACT_SCHEDULE_CLOSE:
            fprintf(f, "%sclose to %s after the delay", sep, rel[a[k].side]);
            break;
        case TF_PROTO_IM_ACT_DROP_CLOSE:
            fprintf(f, "%sdrop the delayed close to %s", sep, rel[a[k].side]);
            break;
        case TF_PROTO_IM_ACT_STORE_REPLY:
            fprintf(f, "%sstore %s's reply", sep, rel[a[k].side]);
            break;
        case TF_PROTO_IM_ACT_EMIT:
            fprintf(f, "%s`%s`", sep, tf_proto_im_emit_name(a[k].emit));
            break;
        case TF_PROTO_IM_ACT_STORE:
        case TF_PROTO_IM_ACT_SIGN_ACCEPT:
        case TF_PROTO_IM_ACT_RESEND_ACCEPT:
        case TF_PROTO_IM_ACT_ADD_CONTACT:
        case TF_PROTO_IM_ACT_REMEMBER_REFUSED:
            fprintf(f, "%s%s", sep, tf_proto_im_act_kind_name(a[k].kind));
            break;
        }
    }
}

static void print_verb(FILE *f, int rc)
{
    fprintf(f, "%s", rc == TF_OK ? "" : tf_err_name(rc));
}

static void print_table(FILE *f, const char *which)
{
    if (strcmp(which, "connector") == 0) {
        fprintf(f, "<!-- intro-table:connector (generated: intro_mc --table connector) -->\n");
        fprintf(f, "| state | x | o | wait | event | next | x then | o then | ACK | verb | actions "
                   "| why |\n");
        fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (size_t k = 0; k < tf_proto_im_conn_table_len; k++) {
            const struct tf_proto_im_conn_row *r = &tf_proto_im_conn_table[k];
            fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | ",
                    key_name(r->state, cs_name), key_name(r->x, ss_name), key_name(r->o, ss_name),
                    key_name(r->wait, bool_name), tf_proto_im_conn_variant_name(r->variant),
                    key_name(r->next, cs_name), key_name(r->next_x, ss_name),
                    key_name(r->next_o, ss_name), tf_proto_im_ack_name(r->ack));
            print_verb(f, r->verb_rc);
            fprintf(f, " | ");
            print_actions(f, r->act, r->n);
            fprintf(f, " | %s |\n", r->note);
        }
        fprintf(f, "<!-- /intro-table:connector -->\n");
        return;
    }
    fprintf(f, "<!-- intro-table:party (generated: intro_mc --table party) -->\n");
    fprintf(f, "| state | accepted before | event | next | accepted after | ACK | verb | actions | "
               "why |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|\n");
    for (size_t k = 0; k < tf_proto_im_party_table_len; k++) {
        const struct tf_proto_im_party_row *r = &tf_proto_im_party_table[k];
        fprintf(f, "| %s | %s | %s | %s | %s | %s | ", key_name(r->state, ps_name),
                key_name(r->has_accept, bool_name), tf_proto_im_party_variant_name(r->variant),
                key_name(r->next, ps_name), key_name(r->next_has_accept, bool_name),
                tf_proto_im_ack_name(r->ack));
        print_verb(f, r->verb_rc);
        fprintf(f, " | ");
        print_actions(f, r->act, r->n);
        fprintf(f, " | %s |\n", r->note);
    }
    fprintf(f, "<!-- /intro-table:party -->\n");
}

/* Checks that file holds both tables exactly as generated, between their
 * markers.  Returns 0 if so. */
static int check_tables(const char *path)
{
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        perror(path);
        return 2;
    }
    char *doc = NULL;
    size_t doc_len = 0;
    FILE *mem = open_memstream(&doc, &doc_len);
    char chunk[4096];
    size_t got;
    while (mem != NULL && (got = fread(chunk, 1, sizeof chunk, in)) > 0)
        fwrite(chunk, 1, got, mem);
    fclose(in);
    if (mem == NULL || fclose(mem) != 0)
        return 2;
    int bad = 0;
    const char *const names[] = {"connector", "party"};
    for (int k = 0; k < 2; k++) {
        char *want = NULL, start[64], stop[64];
        size_t want_len = 0;
        FILE *g = open_memstream(&want, &want_len);
        if (g == NULL)
            return 2;
        print_table(g, names[k]);
        fclose(g);
        snprintf(start, sizeof start, "<!-- intro-table:%s ", names[k]);
        snprintf(stop, sizeof stop, "<!-- /intro-table:%s -->\n", names[k]);
        const char *a = strstr(doc, start);
        const char *b = a ? strstr(a, stop) : NULL;
        if (b == NULL) {
            printf("%s: no %s table (between \"%s\" and \"%.*s\")\n", path, names[k], start,
                   (int)strlen(stop) - 1, stop);
            bad = 1;
        } else if ((size_t)(b + strlen(stop) - a) != want_len || memcmp(a, want, want_len) != 0) {
            printf("%s: the %s table differs from the machine's; regenerate it with\n"
                   "  intro_mc --table %s\n",
                   path, names[k], names[k]);
            bad = 1;
        } else {
            printf("%s: the %s table matches the machine\n", path, names[k]);
        }
        free(want);
    }
    free(doc);
    return bad;
}

/* ---- main ------------------------------------------------------------ */

static void usage(void)
{
    fprintf(
        stderr,
        "usage: intro_mc [--config parallel|sequential|two] [--max-states N]\n"
        "                [--depth N] [--verbs N] [--no-policy] [--mutant m1|nodelay|overquiet]\n"
        "                [--adversary] [--ignore PROPERTY] [--volatile-refusals] "
        "[--strict-liveness]\n"
        "                [--expect-violation TEXT]\n"
        "       intro_mc --table connector|party\n"
        "       intro_mc --check FILE\n");
    exit(2);
}

static unsigned long long number(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0')
        usage();
    return v;
}

int main(int argc, char **argv)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.cfg = (struct config){.n_intros = 1,
                            .party_verbs = 2,
                            .conn_verbs = 1,
                            .policy = true,
                            .durable_refusals = true,
                            .max_states = 5000000,
                            .max_depth = 1000};
    const char *expect = NULL;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        const char *val = k + 1 < argc ? argv[k + 1] : NULL;
        if (strcmp(a, "--table") == 0 && val &&
            (strcmp(val, "connector") == 0 || strcmp(val, "party") == 0)) {
            print_table(stdout, val);
            return 0;
        } else if (strcmp(a, "--check") == 0 && val) {
            return check_tables(val);
        } else if (strcmp(a, "--config") == 0 && val) {
            if (strcmp(val, "parallel") == 0) {
                r.cfg.n_intros = 1;
                r.cfg.sequential = false;
            } else if (strcmp(val, "sequential") == 0) {
                r.cfg.n_intros = 1;
                r.cfg.sequential = true;
            } else if (strcmp(val, "two") == 0) {
                r.cfg.n_intros = 2;
            } else {
                usage();
            }
            k++;
        } else if (strcmp(a, "--max-states") == 0 && val) {
            r.cfg.max_states = number(val);
            k++;
        } else if (strcmp(a, "--depth") == 0 && val) {
            r.cfg.max_depth = (unsigned)number(val);
            k++;
        } else if (strcmp(a, "--verbs") == 0 && val) {
            r.cfg.party_verbs = (int)number(val);
            k++;
        } else if (strcmp(a, "--no-policy") == 0) {
            r.cfg.policy = false;
        } else if (strcmp(a, "--mutant") == 0 && val && strcmp(val, "m1") == 0) {
            r.cfg.mutant_m1 = true;
            k++;
        } else if (strcmp(a, "--mutant") == 0 && val && strcmp(val, "nodelay") == 0) {
            r.cfg.mutant_nodelay = true;
            k++;
        } else if (strcmp(a, "--adversary") == 0) {
            r.cfg.adversary = true;
        } else if (strcmp(a, "--mutant") == 0 && val && strcmp(val, "overquiet") == 0) {
            r.cfg.mutant_overquiet = r.cfg.adversary = true;
            k++;
        } else if (strcmp(a, "--volatile-refusals") == 0) {
            r.cfg.durable_refusals = false;
        } else if (strcmp(a, "--strict-liveness") == 0) {
            r.cfg.strict_liveness = true;
        } else if (strcmp(a, "--ignore") == 0 && val && r.cfg.n_ignore < 4) {
            r.cfg.ignore[r.cfg.n_ignore++] = val;
            k++;
        } else if (strcmp(a, "--expect-violation") == 0 && val) {
            expect = val;
            k++;
        } else {
            usage();
        }
    }
    if (r.cfg.max_states == 0 || r.cfg.max_states > UINT32_MAX - 1 || r.cfg.party_verbs > 15)
        usage();
    if (sodium_init() < 0)
        return 2;
    printf("intro_mc: %s, party verbs %d, withdrawals %d, policy %s, max states %" PRIu64
           ", max depth %u%s\n",
           r.cfg.n_intros == 2 ? "two connectors"
           : r.cfg.sequential  ? "sequential"
                               : "parallel",
           r.cfg.party_verbs, r.cfg.conn_verbs, r.cfg.policy ? "branched" : "ask", r.cfg.max_states,
           r.cfg.max_depth,
           r.cfg.mutant_m1          ? ", mutant m1"
           : r.cfg.mutant_nodelay   ? ", mutant nodelay"
           : r.cfg.mutant_overquiet ? ", mutant overquiet"
           : r.cfg.adversary        ? ", adversary"
                                    : "");
    struct result res = search(&r, expect);
    if (expect != NULL) {
        bool found = res.violated && strstr(r.violation, expect) != NULL;
        printf("%s the expected violation \"%s\"\n", found ? "found" : "did NOT find", expect);
        return found ? 0 : 1;
    }
    return res.violated ? 1 : 0;
}
