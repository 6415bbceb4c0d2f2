/* SPDX-License-Identifier: MIT */
#include "proto/intro_machine.h"

#include <assert.h>
#include <string.h>

#include "proto/err.h"

/* ---- Names ----------------------------------------------------------- */

const char *tf_proto_im_conn_state_name(enum tf_proto_im_conn_state s)
{
    switch (s) {
    case TF_PROTO_IM_CONN_ASKING:
        return "asking";
    case TF_PROTO_IM_CONN_INTRODUCED:
        return "introduced";
    case TF_PROTO_IM_CONN_DECLINED:
        return "declined";
    case TF_PROTO_IM_CONN_WITHDRAWN:
        return "withdrawn";
    case TF_PROTO_IM_CONN_EXPIRED:
        return "expired";
    }
    return "?";
}

const char *tf_proto_im_side_state_name(enum tf_proto_im_side_state s)
{
    switch (s) {
    case TF_PROTO_IM_SIDE_NOT_ASKED:
        return "not_asked";
    case TF_PROTO_IM_SIDE_PENDING:
        return "pending";
    case TF_PROTO_IM_SIDE_ACCEPTED:
        return "accepted";
    case TF_PROTO_IM_SIDE_DECLINED:
        return "declined";
    }
    return "?";
}

const char *tf_proto_im_party_state_name(enum tf_proto_im_party_state s)
{
    switch (s) {
    case TF_PROTO_IM_PARTY_UNKNOWN:
        return "unknown";
    case TF_PROTO_IM_PARTY_PENDING:
        return "pending";
    case TF_PROTO_IM_PARTY_ACCEPTED:
        return "accepted";
    case TF_PROTO_IM_PARTY_DECLINED:
        return "declined";
    case TF_PROTO_IM_PARTY_INTRODUCED:
        return "introduced";
    case TF_PROTO_IM_PARTY_CLOSED:
        return "closed";
    case TF_PROTO_IM_PARTY_EXPIRED:
        return "expired";
    }
    return "?";
}

const char *tf_proto_im_msg_name(enum tf_proto_im_msg m)
{
    switch (m) {
    case TF_PROTO_IM_MSG_PROPOSAL:
        return "proposal";
    case TF_PROTO_IM_MSG_INTRODUCTION:
        return "introduction";
    case TF_PROTO_IM_MSG_CLOSE:
        return "close";
    case TF_PROTO_IM_MSG_DECLINE:
        return "decline";
    }
    return "?";
}

const char *tf_proto_im_emit_name(enum tf_proto_im_emit e)
{
    switch (e) {
    case TF_PROTO_IM_EMIT_INTRO_PROPOSED:
        return "intro.proposed";
    case TF_PROTO_IM_EMIT_INTRO_REPLIED:
        return "intro.replied";
    case TF_PROTO_IM_EMIT_INTRO_INTRODUCED:
        return "intro.introduced";
    case TF_PROTO_IM_EMIT_INTRO_DECLINED:
        return "intro.declined";
    case TF_PROTO_IM_EMIT_INTRO_WITHDRAWN:
        return "intro.withdrawn";
    case TF_PROTO_IM_EMIT_INTRO_EXPIRED:
        return "intro.expired";
    case TF_PROTO_IM_EMIT_INBOX_RECEIVED:
        return "inbox.received";
    case TF_PROTO_IM_EMIT_INBOX_ACCEPTED:
        return "inbox.accepted";
    case TF_PROTO_IM_EMIT_INBOX_DECLINED:
        return "inbox.declined";
    case TF_PROTO_IM_EMIT_INBOX_INTRODUCED:
        return "inbox.introduced";
    case TF_PROTO_IM_EMIT_INBOX_LATE_REVOCATION:
        return "inbox.late_revocation";
    case TF_PROTO_IM_EMIT_INBOX_CLOSED:
        return "inbox.closed";
    case TF_PROTO_IM_EMIT_INBOX_EXPIRED:
        return "inbox.expired";
    }
    return "?";
}

const char *tf_proto_im_ack_name(enum tf_proto_im_ack a)
{
    switch (a) {
    case TF_PROTO_IM_ACK_NONE:
        return "-";
    case TF_PROTO_IM_ACK_OK:
        return "ok";
    case TF_PROTO_IM_ACK_REFUSE:
        return "refuse (9)";
    case TF_PROTO_IM_ACK_LATE:
        return "refuse (3)";
    case TF_PROTO_IM_ACK_RETRY:
        return "no ACK (retry)";
    }
    return "?";
}

const char *tf_proto_im_act_kind_name(enum tf_proto_im_act_kind k)
{
    switch (k) {
    case TF_PROTO_IM_ACT_STORE:
        return "store";
    case TF_PROTO_IM_ACT_STORE_REPLY:
        return "store-reply";
    case TF_PROTO_IM_ACT_SEND:
        return "send";
    case TF_PROTO_IM_ACT_SCHEDULE_CLOSE:
        return "close-later";
    case TF_PROTO_IM_ACT_DROP_CLOSE:
        return "close-dropped";
    case TF_PROTO_IM_ACT_SIGN_ACCEPT:
        return "sign-accept";
    case TF_PROTO_IM_ACT_RESEND_ACCEPT:
        return "resend-accept";
    case TF_PROTO_IM_ACT_ADD_CONTACT:
        return "add-contact";
    case TF_PROTO_IM_ACT_REMEMBER_REFUSED:
        return "remember-refused";
    case TF_PROTO_IM_ACT_EMIT:
        return "emit";
    }
    return "?";
}

const char *tf_proto_im_conn_variant_name(enum tf_proto_im_conn_variant v)
{
    switch (v) {
    case TF_PROTO_IM_CV_ACCEPT:
        return "accept";
    case TF_PROTO_IM_CV_ACCEPT_SAME:
        return "accept (same bytes)";
    case TF_PROTO_IM_CV_ACCEPT_OTHER:
        return "accept (other bytes)";
    case TF_PROTO_IM_CV_ACCEPT_LATE:
        return "accept (signed late)";
    case TF_PROTO_IM_CV_DECLINE:
        return "decline";
    case TF_PROTO_IM_CV_DECLINE_LATE:
        return "decline (signed late)";
    case TF_PROTO_IM_CV_WITHDRAW:
        return "withdraw";
    case TF_PROTO_IM_CV_TICK_IDLE:
        return "tick (nothing due)";
    case TF_PROTO_IM_CV_TICK_EXPIRY:
        return "tick (expired)";
    case TF_PROTO_IM_CV_TICK_CLOSE_A:
        return "tick (close to a due)";
    case TF_PROTO_IM_CV_TICK_CLOSE_B:
        return "tick (close to b due)";
    case TF_PROTO_IM_CV_TICK_CLOSE_AB:
        return "tick (both closes due)";
    }
    return "?";
}

const char *tf_proto_im_party_variant_name(enum tf_proto_im_party_variant v)
{
    switch (v) {
    case TF_PROTO_IM_PV_PROPOSAL_ASK:
        return "proposal (policy: ask)";
    case TF_PROTO_IM_PV_PROPOSAL_ACCEPT:
        return "proposal (policy: accept)";
    case TF_PROTO_IM_PV_PROPOSAL_DECLINE:
        return "proposal (policy: decline)";
    case TF_PROTO_IM_PV_PROPOSAL_EXPIRED:
        return "proposal (expired)";
    case TF_PROTO_IM_PV_PROPOSAL_KNOWN:
        return "proposal (known)";
    case TF_PROTO_IM_PV_ACCEPT:
        return "accept";
    case TF_PROTO_IM_PV_ACCEPT_LATE:
        return "accept (after expires)";
    case TF_PROTO_IM_PV_DECLINE:
        return "decline";
    case TF_PROTO_IM_PV_DECLINE_LATE:
        return "decline (after expires)";
    case TF_PROTO_IM_PV_INTRO_OK:
        return "introduction (check passes)";
    case TF_PROTO_IM_PV_INTRO_BAD:
        return "introduction (check fails)";
    case TF_PROTO_IM_PV_CLOSE:
        return "close";
    case TF_PROTO_IM_PV_CLOSE_REFUSED:
        return "close (proposal refused lately)";
    case TF_PROTO_IM_PV_TICK_IDLE:
        return "tick (nothing due)";
    case TF_PROTO_IM_PV_TICK_EXPIRY:
        return "tick (expiry due)";
    }
    return "?";
}

/* ---- Output helpers -------------------------------------------------- */

static void out_init(struct tf_proto_im_out *out)
{
    memset(out, 0, sizeof *out);
    out->ack = TF_PROTO_IM_ACK_NONE;
    out->verb_rc = TF_OK;
}

static void push(struct tf_proto_im_out *out, enum tf_proto_im_act_kind kind,
                 enum tf_proto_im_msg msg, int side, enum tf_proto_im_emit emit,
                 uint64_t not_before)
{
    assert(out->n < TF_PROTO_IM_ACTIONS_MAX);
    struct tf_proto_im_action *a = &out->a[out->n++];
    a->kind = kind;
    a->msg = msg;
    a->side = side;
    a->emit = emit;
    a->not_before = not_before;
}

static void push_send(struct tf_proto_im_out *out, enum tf_proto_im_msg msg, int side, uint64_t now)
{
    push(out, TF_PROTO_IM_ACT_SEND, msg, side, TF_PROTO_IM_EMIT_INTRO_PROPOSED, now);
}

static void push_emit(struct tf_proto_im_out *out, enum tf_proto_im_emit e)
{
    push(out, TF_PROTO_IM_ACT_EMIT, TF_PROTO_IM_MSG_PROPOSAL, -1, e, 0);
}

static void act(struct tf_proto_im_out *out, enum tf_proto_im_act_kind kind, int side)
{
    push(out, kind, TF_PROTO_IM_MSG_PROPOSAL, side, TF_PROTO_IM_EMIT_INTRO_PROPOSED, 0);
}

static void refuse_verb(struct tf_proto_im_out *out, int rc, const char *why)
{
    out->verb_rc = rc;
    out->why = why;
}

static void refuse_msg(struct tf_proto_im_out *out, const char *why)
{
    out->ack = TF_PROTO_IM_ACK_REFUSE;
    out->why = why;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX - 1 : a + b;
}

/* ---- Connector ------------------------------------------------------- */

static bool asked(enum tf_proto_im_side_state s)
{
    return s == TF_PROTO_IM_SIDE_PENDING || s == TF_PROTO_IM_SIDE_ACCEPTED;
}

static bool conn_equal(const struct tf_proto_im_conn *p, const struct tf_proto_im_conn *q)
{
    return p->state == q->state && p->side[0] == q->side[0] && p->side[1] == q->side[1] &&
           p->expires == q->expires && p->close_at[0] == q->close_at[0] &&
           p->close_at[1] == q->close_at[1];
}

void tf_proto_im_conn_propose(bool sequential, uint64_t expires, struct tf_proto_im_conn *next,
                              struct tf_proto_im_out *out)
{
    out_init(out);
    memset(next, 0, sizeof *next);
    next->state = TF_PROTO_IM_CONN_ASKING;
    next->side[0] = TF_PROTO_IM_SIDE_PENDING;
    next->side[1] = sequential ? TF_PROTO_IM_SIDE_NOT_ASKED : TF_PROTO_IM_SIDE_PENDING;
    next->expires = expires;
    next->close_at[0] = next->close_at[1] = TF_PROTO_IM_NEVER;
    push_send(out, TF_PROTO_IM_MSG_PROPOSAL, 0, 0);
    if (!sequential)
        push_send(out, TF_PROTO_IM_MSG_PROPOSAL, 1, 0);
    push_emit(out, TF_PROTO_IM_EMIT_INTRO_PROPOSED);
    act(out, TF_PROTO_IM_ACT_STORE, -1);
}

uint64_t tf_proto_im_conn_deadline(const struct tf_proto_im_conn *s)
{
    uint64_t d = s->close_at[0] < s->close_at[1] ? s->close_at[0] : s->close_at[1];
    if (s->state == TF_PROTO_IM_CONN_ASKING && s->expires + 1 < d)
        d = s->expires + 1; /* expired once now > expires */
    return d;
}

/* A decline or a withdrawal: the closes to the asked sides (but x, the
 * decliner) leave after the same random delay (R31), but never after the
 * moment the intro would expire: an open intro's closes leave then, so one
 * that waited longer would tell its party that the intro had ended. */
static void schedule_closes(struct tf_proto_im_conn *n, int except, uint64_t now,
                            const uint64_t delay[2], struct tf_proto_im_out *out)
{
    uint64_t expiry = add_sat(n->expires, 1);
    for (int s = 0; s < 2; s++) {
        if (s == except || !asked(n->side[s]))
            continue;
        uint64_t at = add_sat(now, delay[s]);
        n->close_at[s] = at < expiry ? at : expiry;
        push(out, TF_PROTO_IM_ACT_SCHEDULE_CLOSE, TF_PROTO_IM_MSG_CLOSE, s,
             TF_PROTO_IM_EMIT_INTRO_PROPOSED, n->close_at[s]);
    }
}

static void conn_reply(const struct tf_proto_im_conn *s, const struct tf_proto_im_conn_input *in,
                       struct tf_proto_im_conn *n, struct tf_proto_im_out *out)
{
    const int x = in->side, o = 1 - in->side;
    out->ack = TF_PROTO_IM_ACK_OK;
    if (s->side[x] == TF_PROTO_IM_SIDE_NOT_ASKED) {
        refuse_msg(out, "a reply from a side that was not asked");
        return;
    }
    if (in->signed_late) {
        refuse_msg(out, "the reply was signed after the intro expired (R29)");
        out->ack = TF_PROTO_IM_ACK_LATE;
        return;
    }
    switch (s->state) {
    case TF_PROTO_IM_CONN_ASKING:
        if (in->accept && s->side[x] == TF_PROTO_IM_SIDE_ACCEPTED) {
            if (!in->same_as_stored)
                refuse_msg(out, "a second, different acceptance (R26)");
            return; /* the same acceptance again changes nothing */
        }
        if (in->accept) {
            n->side[x] = TF_PROTO_IM_SIDE_ACCEPTED;
            act(out, TF_PROTO_IM_ACT_STORE_REPLY, x);
            push_emit(out, TF_PROTO_IM_EMIT_INTRO_REPLIED);
            if (s->side[o] == TF_PROTO_IM_SIDE_ACCEPTED) {
                n->state = TF_PROTO_IM_CONN_INTRODUCED;
                push_send(out, TF_PROTO_IM_MSG_INTRODUCTION, 0, in->now);
                push_send(out, TF_PROTO_IM_MSG_INTRODUCTION, 1, in->now);
                push_emit(out, TF_PROTO_IM_EMIT_INTRO_INTRODUCED);
            } else if (s->side[o] == TF_PROTO_IM_SIDE_NOT_ASKED) {
                /* Sequential mode: a accepted, now b is asked. */
                n->side[o] = TF_PROTO_IM_SIDE_PENDING;
                push_send(out, TF_PROTO_IM_MSG_PROPOSAL, o, in->now);
            }
            return;
        }
        /* A decline, or a revocation before both acceptances. */
        n->side[x] = TF_PROTO_IM_SIDE_DECLINED;
        n->state = TF_PROTO_IM_CONN_DECLINED;
        schedule_closes(n, x, in->now, in->close_delay, out);
        push_emit(out, TF_PROTO_IM_EMIT_INTRO_DECLINED);
        return;
    case TF_PROTO_IM_CONN_INTRODUCED:
        return; /* too late to change anything */
    case TF_PROTO_IM_CONN_DECLINED:
    case TF_PROTO_IM_CONN_WITHDRAWN:
    case TF_PROTO_IM_CONN_EXPIRED:
        /* A second, different acceptance is refused here too (R26), as
         * while asking: taken otherwise, its ACK would tell its sender that
         * the intro is over before the delayed close does (R31). */
        if (in->accept && s->side[x] == TF_PROTO_IM_SIDE_ACCEPTED && !in->same_as_stored) {
            refuse_msg(out, "a second, different acceptance (R26)");
            return;
        }
        /* Answered with a close now, unless a delayed close to x is
         * waiting: sending it early would tell when the intro ended (R31). */
        if (s->close_at[x] == TF_PROTO_IM_NEVER) {
            push_send(out, TF_PROTO_IM_MSG_CLOSE, x, in->now);
            return;
        }
        /* While it waits, x is answered as if the intro still asked (R31):
         * its first acceptance is kept (so that a second, different one is
         * refused as above), and its decline ends the intro for x as one
         * would while asking: x knows, and is sent no close.  A later reply
         * is then answered with a close at once, as after a decline that
         * ended the intro. */
        if (in->accept) {
            if (s->side[x] != TF_PROTO_IM_SIDE_ACCEPTED) {
                n->side[x] = TF_PROTO_IM_SIDE_ACCEPTED;
                act(out, TF_PROTO_IM_ACT_STORE_REPLY, x);
                push_emit(out, TF_PROTO_IM_EMIT_INTRO_REPLIED); /* the owner is told */
            }
            return;
        }
        n->side[x] = TF_PROTO_IM_SIDE_DECLINED;
        n->close_at[x] = TF_PROTO_IM_NEVER;
        act(out, TF_PROTO_IM_ACT_DROP_CLOSE, x);
        push_emit(out, TF_PROTO_IM_EMIT_INTRO_REPLIED); /* with the decision: a decline */
        return;
    }
}

static void conn_tick(const struct tf_proto_im_conn *s, uint64_t now, struct tf_proto_im_conn *n,
                      struct tf_proto_im_out *out)
{
    if (s->state == TF_PROTO_IM_CONN_ASKING && now > s->expires) {
        /* Expiry closes leave at expiry, without a delay (R31). */
        n->state = TF_PROTO_IM_CONN_EXPIRED;
        for (int x = 0; x < 2; x++)
            if (asked(s->side[x]))
                push_send(out, TF_PROTO_IM_MSG_CLOSE, x, now);
        push_emit(out, TF_PROTO_IM_EMIT_INTRO_EXPIRED);
    }
    for (int x = 0; x < 2; x++) {
        if (s->close_at[x] != TF_PROTO_IM_NEVER && now >= s->close_at[x]) {
            push_send(out, TF_PROTO_IM_MSG_CLOSE, x, now);
            n->close_at[x] = TF_PROTO_IM_NEVER;
        }
    }
}

/* True if a is a SEND that first has already made (the tick's close to a
 * side that a late reply is answered with: one close is enough). */
static bool sent_in(const struct tf_proto_im_out *first, const struct tf_proto_im_action *a)
{
    if (a->kind != TF_PROTO_IM_ACT_SEND)
        return false;
    for (size_t k = 0; k < first->n; k++)
        if (first->a[k].kind == TF_PROTO_IM_ACT_SEND && first->a[k].msg == a->msg &&
            first->a[k].side == a->side)
            return true;
    return false;
}

/* out = first's actions, then out's, each without its STORE (nor a SEND
 * first made), then one STORE if the record changed; the ACK and verb
 * result stay out's. */
static void prepend(const struct tf_proto_im_out *first, struct tf_proto_im_out *out, bool changed)
{
    struct tf_proto_im_out second = *out;
    out->n = 0;
    for (size_t k = 0; k < first->n; k++)
        if (first->a[k].kind != TF_PROTO_IM_ACT_STORE)
            push(out, first->a[k].kind, first->a[k].msg, first->a[k].side, first->a[k].emit,
                 first->a[k].not_before);
    for (size_t k = 0; k < second.n; k++)
        if (second.a[k].kind != TF_PROTO_IM_ACT_STORE && !sent_in(first, &second.a[k]))
            push(out, second.a[k].kind, second.a[k].msg, second.a[k].side, second.a[k].emit,
                 second.a[k].not_before);
    if (changed)
        act(out, TF_PROTO_IM_ACT_STORE, -1);
}

static void conn_step_one(const struct tf_proto_im_conn *s, const struct tf_proto_im_conn_input *in,
                          struct tf_proto_im_conn *next, struct tf_proto_im_out *out)
{
    assert(in->side == 0 || in->side == 1);
    out_init(out);
    *next = *s;
    switch (in->event) {
    case TF_PROTO_IM_CONN_REPLY:
        conn_reply(s, in, next, out);
        break;
    case TF_PROTO_IM_CONN_WITHDRAW:
        if (s->state != TF_PROTO_IM_CONN_ASKING) {
            refuse_verb(out, TF_E_BAD_STATE, "only an intro that is still asking can be withdrawn");
            break;
        }
        next->state = TF_PROTO_IM_CONN_WITHDRAWN;
        schedule_closes(next, -1, in->now, in->close_delay, out);
        push_emit(out, TF_PROTO_IM_EMIT_INTRO_WITHDRAWN);
        break;
    case TF_PROTO_IM_CONN_TICK:
        conn_tick(s, in->now, next, out);
        break;
    }
    if (!conn_equal(s, next))
        act(out, TF_PROTO_IM_ACT_STORE, -1);
}

void tf_proto_im_conn_step(const struct tf_proto_im_conn *s,
                           const struct tf_proto_im_conn_input *in, struct tf_proto_im_conn *next,
                           struct tf_proto_im_out *out)
{
    assert(next != s);
    if (in->event == TF_PROTO_IM_CONN_TICK || tf_proto_im_conn_deadline(s) > in->now) {
        conn_step_one(s, in, next, out);
        return;
    }
    /* What is due happens first: a reply that finds the intro past its
     * expiry is answered as by an expired intro. */
    struct tf_proto_im_conn_input tick = {
        TF_PROTO_IM_CONN_TICK, in->now, 0, false, false, false, {0, 0}};
    struct tf_proto_im_conn mid;
    struct tf_proto_im_out first;
    conn_step_one(s, &tick, &mid, &first);
    assert(tf_proto_im_conn_deadline(&mid) > in->now);
    conn_step_one(&mid, in, next, out);
    prepend(&first, out, !conn_equal(s, next));
}

/* ---- Party ----------------------------------------------------------- */

uint64_t tf_proto_im_party_deadline(const struct tf_proto_im_party *s)
{
    if (s->state == TF_PROTO_IM_PARTY_PENDING)
        return add_sat(s->expires, 1);
    if (s->state == TF_PROTO_IM_PARTY_ACCEPTED) /* no introduction can arrive after */
        return add_sat(add_sat(s->expires, s->grace), 1);
    return TF_PROTO_IM_NEVER;
}

static void party_proposal(const struct tf_proto_im_party *s,
                           const struct tf_proto_im_party_input *in, struct tf_proto_im_party *n,
                           struct tf_proto_im_out *out)
{
    out->ack = TF_PROTO_IM_ACK_OK;
    if (s->state != TF_PROTO_IM_PARTY_UNKNOWN)
        return; /* already known */
    if (in->now > in->expires) {
        refuse_msg(out, "the proposal has expired");
        act(out, TF_PROTO_IM_ACT_REMEMBER_REFUSED, -1);
        return;
    }
    n->state = TF_PROTO_IM_PARTY_PENDING;
    n->has_accept = false;
    n->expires = in->expires;
    n->grace = in->grace;
    push_emit(out, TF_PROTO_IM_EMIT_INBOX_RECEIVED);
    switch (in->policy) {
    case TF_PROTO_IM_POLICY_ASK:
        break;
    case TF_PROTO_IM_POLICY_ACCEPT:
        n->state = TF_PROTO_IM_PARTY_ACCEPTED;
        n->has_accept = true;
        act(out, TF_PROTO_IM_ACT_SIGN_ACCEPT, -1);
        push_emit(out, TF_PROTO_IM_EMIT_INBOX_ACCEPTED);
        break;
    case TF_PROTO_IM_POLICY_DECLINE:
        n->state = TF_PROTO_IM_PARTY_DECLINED;
        push_send(out, TF_PROTO_IM_MSG_DECLINE, -1, in->now);
        push_emit(out, TF_PROTO_IM_EMIT_INBOX_DECLINED);
        break;
    }
}

/* The owner answers (accepts or declines) a known intro that is not over,
 * and only until it expires (PROTOCOL.md §11); else the refusal is in out. */
static bool may_answer(const struct tf_proto_im_party *s, uint64_t now, struct tf_proto_im_out *out)
{
    switch (s->state) {
    case TF_PROTO_IM_PARTY_UNKNOWN:
        refuse_verb(out, TF_E_NOT_FOUND, "no such intro");
        return false;
    case TF_PROTO_IM_PARTY_INTRODUCED:
    case TF_PROTO_IM_PARTY_CLOSED:
    case TF_PROTO_IM_PARTY_EXPIRED:
        refuse_verb(out, TF_E_BAD_STATE, "this intro is over; it can no longer be answered");
        return false;
    case TF_PROTO_IM_PARTY_PENDING:
    case TF_PROTO_IM_PARTY_ACCEPTED:
    case TF_PROTO_IM_PARTY_DECLINED:
        break;
    }
    if (now <= s->expires)
        return true;
    refuse_verb(out, TF_E_BAD_STATE, "this intro expired; it can no longer be answered (R28)");
    return false;
}

static void party_accept(const struct tf_proto_im_party *s, uint64_t now,
                         struct tf_proto_im_party *n, struct tf_proto_im_out *out)
{
    if (!may_answer(s, now, out))
        return;
    switch (s->state) {
    case TF_PROTO_IM_PARTY_PENDING:
        n->state = TF_PROTO_IM_PARTY_ACCEPTED;
        n->has_accept = true;
        act(out, TF_PROTO_IM_ACT_SIGN_ACCEPT, -1);
        push_emit(out, TF_PROTO_IM_EMIT_INBOX_ACCEPTED);
        return;
    case TF_PROTO_IM_PARTY_ACCEPTED:
        act(out, TF_PROTO_IM_ACT_RESEND_ACCEPT, -1); /* never a second signature (R26) */
        return;
    case TF_PROTO_IM_PARTY_DECLINED:
        refuse_verb(out, TF_E_BAD_STATE,
                    "you declined this intro; it cannot be accepted after that (R27)");
        return;
    case TF_PROTO_IM_PARTY_UNKNOWN:
    case TF_PROTO_IM_PARTY_INTRODUCED:
    case TF_PROTO_IM_PARTY_CLOSED:
    case TF_PROTO_IM_PARTY_EXPIRED:
        return; /* answered above */
    }
}

static void party_decline(const struct tf_proto_im_party *s, uint64_t now,
                          struct tf_proto_im_party *n, struct tf_proto_im_out *out)
{
    if (!may_answer(s, now, out))
        return;
    switch (s->state) {
    case TF_PROTO_IM_PARTY_PENDING:
    case TF_PROTO_IM_PARTY_ACCEPTED: /* a revocation; the stored acceptance is kept */
        n->state = TF_PROTO_IM_PARTY_DECLINED;
        push_send(out, TF_PROTO_IM_MSG_DECLINE, -1, now);
        push_emit(out, TF_PROTO_IM_EMIT_INBOX_DECLINED);
        return;
    case TF_PROTO_IM_PARTY_DECLINED:
        refuse_verb(out, TF_E_BAD_STATE, "you already declined this intro");
        return;
    case TF_PROTO_IM_PARTY_UNKNOWN:
    case TF_PROTO_IM_PARTY_INTRODUCED:
    case TF_PROTO_IM_PARTY_CLOSED:
    case TF_PROTO_IM_PARTY_EXPIRED:
        return; /* answered above */
    }
}

static void party_introduction(const struct tf_proto_im_party *s,
                               const struct tf_proto_im_party_input *in,
                               struct tf_proto_im_party *n, struct tf_proto_im_out *out)
{
    out->ack = TF_PROTO_IM_ACK_OK;
    switch (s->state) {
    case TF_PROTO_IM_PARTY_UNKNOWN:
    case TF_PROTO_IM_PARTY_PENDING:
        refuse_msg(out, "an introduction for an intro never accepted");
        return;
    case TF_PROTO_IM_PARTY_INTRODUCED:
        return; /* a second delivery changes nothing */
    case TF_PROTO_IM_PARTY_ACCEPTED:
    case TF_PROTO_IM_PARTY_DECLINED: /* a revocation that came too late */
    case TF_PROTO_IM_PARTY_CLOSED:   /* the close crossed the introduction (R30) */
    case TF_PROTO_IM_PARTY_EXPIRED:  /* past the grace, yet here: both sides must agree */
        if (!s->has_accept) {
            refuse_msg(out, "an introduction for an intro never accepted");
            return;
        }
        if (!in->materialises) {
            refuse_msg(out, "the introduction fails the materialisation check");
            return;
        }
        n->state = TF_PROTO_IM_PARTY_INTRODUCED;
        act(out, TF_PROTO_IM_ACT_ADD_CONTACT, -1);
        push_emit(out, TF_PROTO_IM_EMIT_INBOX_INTRODUCED);
        if (s->state == TF_PROTO_IM_PARTY_DECLINED)
            push_emit(out, TF_PROTO_IM_EMIT_INBOX_LATE_REVOCATION);
        return;
    }
}

static void party_close(const struct tf_proto_im_party *s, const struct tf_proto_im_party_input *in,
                        struct tf_proto_im_party *n, struct tf_proto_im_out *out)
{
    out->ack = TF_PROTO_IM_ACK_OK;
    switch (s->state) {
    case TF_PROTO_IM_PARTY_UNKNOWN:
        /* The proposal may still be on its way: without an ACK the connector
         * sends the close again (§11).  A refused proposal will not come. */
        if (!in->refused) {
            out->ack = TF_PROTO_IM_ACK_RETRY;
            out->why = "a close for an intro not heard of yet";
        }
        return;
    case TF_PROTO_IM_PARTY_PENDING:
    case TF_PROTO_IM_PARTY_ACCEPTED:
    case TF_PROTO_IM_PARTY_DECLINED:
        n->state = TF_PROTO_IM_PARTY_CLOSED;
        push_emit(out, TF_PROTO_IM_EMIT_INBOX_CLOSED);
        return;
    case TF_PROTO_IM_PARTY_INTRODUCED:
    case TF_PROTO_IM_PARTY_CLOSED:
    case TF_PROTO_IM_PARTY_EXPIRED:
        return;
    }
}

static bool party_equal(const struct tf_proto_im_party *p, const struct tf_proto_im_party *q)
{
    return p->state == q->state && p->has_accept == q->has_accept && p->expires == q->expires &&
           p->grace == q->grace;
}

static void party_step_one(const struct tf_proto_im_party *s,
                           const struct tf_proto_im_party_input *in, struct tf_proto_im_party *next,
                           struct tf_proto_im_out *out)
{
    out_init(out);
    *next = *s;
    switch (in->event) {
    case TF_PROTO_IM_PARTY_PROPOSAL:
        party_proposal(s, in, next, out);
        break;
    case TF_PROTO_IM_PARTY_ACCEPT:
        party_accept(s, in->now, next, out);
        break;
    case TF_PROTO_IM_PARTY_DECLINE:
        party_decline(s, in->now, next, out);
        break;
    case TF_PROTO_IM_PARTY_INTRODUCTION:
        party_introduction(s, in, next, out);
        break;
    case TF_PROTO_IM_PARTY_CLOSE:
        party_close(s, in, next, out);
        break;
    case TF_PROTO_IM_PARTY_TICK:
        if (tf_proto_im_party_deadline(s) <= in->now) {
            next->state = TF_PROTO_IM_PARTY_EXPIRED;
            push_emit(out, TF_PROTO_IM_EMIT_INBOX_EXPIRED);
        }
        break;
    }
    if (!party_equal(s, next))
        act(out, TF_PROTO_IM_ACT_STORE, -1);
}

void tf_proto_im_party_step(const struct tf_proto_im_party *s,
                            const struct tf_proto_im_party_input *in,
                            struct tf_proto_im_party *next, struct tf_proto_im_out *out)
{
    assert(next != s);
    if (in->event == TF_PROTO_IM_PARTY_TICK || tf_proto_im_party_deadline(s) > in->now) {
        party_step_one(s, in, next, out);
        return;
    }
    struct tf_proto_im_party_input tick = {TF_PROTO_IM_PARTY_TICK, in->now, 0, 0, 0, false, false};
    struct tf_proto_im_party mid;
    struct tf_proto_im_out first;
    party_step_one(s, &tick, &mid, &first);
    assert(tf_proto_im_party_deadline(&mid) > in->now);
    party_step_one(&mid, in, next, out);
    prepend(&first, out, !party_equal(s, next));
}

/* ---- Classification -------------------------------------------------- */

enum tf_proto_im_conn_variant tf_proto_im_conn_classify(const struct tf_proto_im_conn *s,
                                                        const struct tf_proto_im_conn_input *in)
{
    switch (in->event) {
    case TF_PROTO_IM_CONN_REPLY:
        if (in->signed_late)
            return in->accept ? TF_PROTO_IM_CV_ACCEPT_LATE : TF_PROTO_IM_CV_DECLINE_LATE;
        if (!in->accept)
            return TF_PROTO_IM_CV_DECLINE;
        if (s->side[in->side] != TF_PROTO_IM_SIDE_ACCEPTED)
            return TF_PROTO_IM_CV_ACCEPT;
        return in->same_as_stored ? TF_PROTO_IM_CV_ACCEPT_SAME : TF_PROTO_IM_CV_ACCEPT_OTHER;
    case TF_PROTO_IM_CONN_WITHDRAW:
        return TF_PROTO_IM_CV_WITHDRAW;
    case TF_PROTO_IM_CONN_TICK:
        break;
    }
    if (s->state == TF_PROTO_IM_CONN_ASKING && in->now > s->expires)
        return TF_PROTO_IM_CV_TICK_EXPIRY;
    bool a = s->close_at[0] != TF_PROTO_IM_NEVER && in->now >= s->close_at[0];
    bool b = s->close_at[1] != TF_PROTO_IM_NEVER && in->now >= s->close_at[1];
    return a && b ? TF_PROTO_IM_CV_TICK_CLOSE_AB
           : a    ? TF_PROTO_IM_CV_TICK_CLOSE_A
           : b    ? TF_PROTO_IM_CV_TICK_CLOSE_B
                  : TF_PROTO_IM_CV_TICK_IDLE;
}

enum tf_proto_im_party_variant tf_proto_im_party_classify(const struct tf_proto_im_party *s,
                                                          const struct tf_proto_im_party_input *in)
{
    bool unknown = s->state == TF_PROTO_IM_PARTY_UNKNOWN;
    switch (in->event) {
    case TF_PROTO_IM_PARTY_PROPOSAL:
        if (!unknown)
            return TF_PROTO_IM_PV_PROPOSAL_KNOWN;
        if (in->now > in->expires)
            return TF_PROTO_IM_PV_PROPOSAL_EXPIRED;
        return in->policy == TF_PROTO_IM_POLICY_ACCEPT    ? TF_PROTO_IM_PV_PROPOSAL_ACCEPT
               : in->policy == TF_PROTO_IM_POLICY_DECLINE ? TF_PROTO_IM_PV_PROPOSAL_DECLINE
                                                          : TF_PROTO_IM_PV_PROPOSAL_ASK;
    case TF_PROTO_IM_PARTY_ACCEPT:
        return !unknown && in->now > s->expires ? TF_PROTO_IM_PV_ACCEPT_LATE
                                                : TF_PROTO_IM_PV_ACCEPT;
    case TF_PROTO_IM_PARTY_DECLINE:
        return !unknown && in->now > s->expires ? TF_PROTO_IM_PV_DECLINE_LATE
                                                : TF_PROTO_IM_PV_DECLINE;
    case TF_PROTO_IM_PARTY_INTRODUCTION:
        return in->materialises && s->has_accept ? TF_PROTO_IM_PV_INTRO_OK
                                                 : TF_PROTO_IM_PV_INTRO_BAD;
    case TF_PROTO_IM_PARTY_CLOSE:
        return unknown && in->refused ? TF_PROTO_IM_PV_CLOSE_REFUSED : TF_PROTO_IM_PV_CLOSE;
    case TF_PROTO_IM_PARTY_TICK:
        break;
    }
    return tf_proto_im_party_deadline(s) <= in->now ? TF_PROTO_IM_PV_TICK_EXPIRY
                                                    : TF_PROTO_IM_PV_TICK_IDLE;
}

/* ---- The tables ------------------------------------------------------ */

/* Abbreviations for the rows.  Read a row as: in state S, with side x (the
 * replying side; a for withdraw and ticks) in state X and the other side in
 * state O, the variant V gives next state N (sides NX, NO), the ACK, the verb
 * result, and the actions in order. */
#define ANY TF_PROTO_IM_ANY
#define SAME TF_PROTO_IM_SAME
#define OVER TF_PROTO_IM_OVER
#define C_ASK TF_PROTO_IM_CONN_ASKING
#define C_INT TF_PROTO_IM_CONN_INTRODUCED
#define C_DEC TF_PROTO_IM_CONN_DECLINED
#define C_WD TF_PROTO_IM_CONN_WITHDRAWN
#define C_EXP TF_PROTO_IM_CONN_EXPIRED
#define S_NA TF_PROTO_IM_SIDE_NOT_ASKED
#define S_P TF_PROTO_IM_SIDE_PENDING
#define S_A TF_PROTO_IM_SIDE_ACCEPTED
#define S_D TF_PROTO_IM_SIDE_DECLINED
#define P_UNK TF_PROTO_IM_PARTY_UNKNOWN
#define P_PEN TF_PROTO_IM_PARTY_PENDING
#define P_ACC TF_PROTO_IM_PARTY_ACCEPTED
#define P_DEC TF_PROTO_IM_PARTY_DECLINED
#define P_INT TF_PROTO_IM_PARTY_INTRODUCED
#define P_CLO TF_PROTO_IM_PARTY_CLOSED
#define P_EXP TF_PROTO_IM_PARTY_EXPIRED
#define A_NONE TF_PROTO_IM_ACK_NONE
#define A_OK TF_PROTO_IM_ACK_OK
#define A_REF TF_PROTO_IM_ACK_REFUSE
#define A_LATE TF_PROTO_IM_ACK_LATE
#define A_RETRY TF_PROTO_IM_ACK_RETRY
#define X_ TF_PROTO_IM_REL_X
#define O_ TF_PROTO_IM_REL_O
#define A_ TF_PROTO_IM_REL_A
#define B_ TF_PROTO_IM_REL_B
#define N_ TF_PROTO_IM_REL_NONE
#define E(x)                                                                                       \
    {                                                                                              \
        TF_PROTO_IM_ACT_EMIT, 0, N_, TF_PROTO_IM_EMIT_##x                                          \
    }
#define SEND(m, s)                                                                                 \
    {                                                                                              \
        TF_PROTO_IM_ACT_SEND, TF_PROTO_IM_MSG_##m, s, 0                                            \
    }
#define LATER(s)                                                                                   \
    {                                                                                              \
        TF_PROTO_IM_ACT_SCHEDULE_CLOSE, TF_PROTO_IM_MSG_CLOSE, s, 0                                \
    }
#define DO(k, s)                                                                                   \
    {                                                                                              \
        TF_PROTO_IM_ACT_##k, 0, s, 0                                                               \
    }
#define STORE DO(STORE, N_)
#define OK_ TF_OK
#define BAD TF_E_BAD_STATE
#define NF TF_E_NOT_FOUND

/* clang-format off */
const struct tf_proto_im_conn_row tf_proto_im_conn_table[] = {
    /* Checks before any state: who sent it, and when it was signed. */
    {ANY, S_NA, ANY, ANY, TF_PROTO_IM_CV_ACCEPT, SAME, SAME, SAME, A_REF, OK_, 0, {{0}},
     "a reply from a side that was not asked"},
    {ANY, S_NA, ANY, ANY, TF_PROTO_IM_CV_DECLINE, SAME, SAME, SAME, A_REF, OK_, 0, {{0}},
     "a reply from a side that was not asked"},
    {ANY, S_NA, ANY, ANY, TF_PROTO_IM_CV_ACCEPT_LATE, SAME, SAME, SAME, A_REF, OK_, 0, {{0}},
     "a reply from a side that was not asked"},
    {ANY, S_NA, ANY, ANY, TF_PROTO_IM_CV_DECLINE_LATE, SAME, SAME, SAME, A_REF, OK_, 0, {{0}},
     "a reply from a side that was not asked"},
    {ANY, ANY, ANY, ANY, TF_PROTO_IM_CV_ACCEPT_LATE, SAME, SAME, SAME, A_LATE, OK_, 0, {{0}},
     "R29: signed after expires + skew"},
    {ANY, ANY, ANY, ANY, TF_PROTO_IM_CV_DECLINE_LATE, SAME, SAME, SAME, A_LATE, OK_, 0, {{0}},
     "R29: signed after expires + skew"},
    /* asking */
    {C_ASK, S_P, S_P, ANY, TF_PROTO_IM_CV_ACCEPT, SAME, S_A, SAME, A_OK, OK_, 3,
     {DO(STORE_REPLY, X_), E(INTRO_REPLIED), STORE}, "x accepted; waiting for o"},
    {C_ASK, S_P, S_NA, ANY, TF_PROTO_IM_CV_ACCEPT, SAME, S_A, S_P, A_OK, OK_, 4,
     {DO(STORE_REPLY, X_), E(INTRO_REPLIED), SEND(PROPOSAL, O_), STORE},
     "sequential: a accepted, so b is asked"},
    {C_ASK, S_P, S_A, ANY, TF_PROTO_IM_CV_ACCEPT, C_INT, S_A, SAME, A_OK, OK_, 6,
     {DO(STORE_REPLY, X_), E(INTRO_REPLIED), SEND(INTRODUCTION, A_), SEND(INTRODUCTION, B_),
      E(INTRO_INTRODUCED), STORE},
     "both accepted: the introduction, with both replies as received, to both"},
    {C_ASK, S_A, ANY, ANY, TF_PROTO_IM_CV_ACCEPT_SAME, SAME, SAME, SAME, A_OK, OK_, 0, {{0}},
     "the same acceptance again changes nothing"},
    {C_ASK, S_A, ANY, ANY, TF_PROTO_IM_CV_ACCEPT_OTHER, SAME, SAME, SAME, A_REF, OK_, 0, {{0}},
     "R26: a party never signs two acceptances"},
    {C_ASK, ANY, S_NA, ANY, TF_PROTO_IM_CV_DECLINE, C_DEC, S_D, SAME, A_OK, OK_, 2,
     {E(INTRO_DECLINED), STORE}, "declined; b was never asked, so no close"},
    {C_ASK, ANY, ANY, ANY, TF_PROTO_IM_CV_DECLINE, C_DEC, S_D, SAME, A_OK, OK_, 3,
     {LATER(O_), E(INTRO_DECLINED), STORE},
     "declined (or revoked); R31: o's close leaves after the random delay"},
    {C_ASK, ANY, S_NA, ANY, TF_PROTO_IM_CV_WITHDRAW, C_WD, SAME, SAME, A_NONE, OK_, 3,
     {LATER(X_), E(INTRO_WITHDRAWN), STORE}, "withdrawn; R31: the close to a after the delay"},
    {C_ASK, ANY, ANY, ANY, TF_PROTO_IM_CV_WITHDRAW, C_WD, SAME, SAME, A_NONE, OK_, 4,
     {LATER(X_), LATER(O_), E(INTRO_WITHDRAWN), STORE},
     "withdrawn; R31: both closes after the same delay"},
    {C_ASK, ANY, S_NA, ANY, TF_PROTO_IM_CV_TICK_EXPIRY, C_EXP, SAME, SAME, A_NONE, OK_, 3,
     {SEND(CLOSE, X_), E(INTRO_EXPIRED), STORE}, "expired: the close to a leaves at once"},
    {C_ASK, ANY, ANY, ANY, TF_PROTO_IM_CV_TICK_EXPIRY, C_EXP, SAME, SAME, A_NONE, OK_, 4,
     {SEND(CLOSE, X_), SEND(CLOSE, O_), E(INTRO_EXPIRED), STORE},
     "expired: both closes leave at once"},
    /* introduced */
    {C_INT, ANY, ANY, ANY, TF_PROTO_IM_CV_ACCEPT_SAME, SAME, SAME, SAME, A_OK, OK_, 0, {{0}},
     "introduced: nothing changes"},
    {C_INT, ANY, ANY, ANY, TF_PROTO_IM_CV_ACCEPT_OTHER, SAME, SAME, SAME, A_OK, OK_, 0, {{0}},
     "introduced: nothing changes"},
    {C_INT, ANY, ANY, ANY, TF_PROTO_IM_CV_DECLINE, SAME, SAME, SAME, A_OK, OK_, 0, {{0}},
     "introduced: a revocation is too late"},
    /* declined, withdrawn, expired: a reply is answered with a close now, or,
     * while x's delayed close waits, taken as it would be while asking */
    {OVER, ANY, ANY, 1, TF_PROTO_IM_CV_ACCEPT, SAME, S_A, SAME, A_OK, OK_, 3,
     {DO(STORE_REPLY, X_), E(INTRO_REPLIED), STORE},
     "over, x's delayed close waiting: kept as while asking (R31); the close answers, at its time"},
    {OVER, ANY, ANY, 0, TF_PROTO_IM_CV_ACCEPT, SAME, SAME, SAME, A_OK, OK_, 1,
     {SEND(CLOSE, X_)}, "over: answered with a close at once"},
    {OVER, ANY, ANY, 1, TF_PROTO_IM_CV_ACCEPT_SAME, SAME, SAME, SAME, A_OK, OK_, 0, {{0}},
     "over, x's delayed close waiting: it answers, at its time (R31)"},
    {OVER, ANY, ANY, 0, TF_PROTO_IM_CV_ACCEPT_SAME, SAME, SAME, SAME, A_OK, OK_, 1,
     {SEND(CLOSE, X_)}, "over: answered with a close at once"},
    {OVER, ANY, ANY, ANY, TF_PROTO_IM_CV_ACCEPT_OTHER, SAME, SAME, SAME, A_REF, OK_, 0, {{0}},
     "R26: a party never signs two acceptances (nor is told so that it is over)"},
    {OVER, ANY, ANY, 1, TF_PROTO_IM_CV_DECLINE, SAME, S_D, SAME, A_OK, OK_, 3,
     {DO(DROP_CLOSE, X_), E(INTRO_REPLIED), STORE},
     "over, x's delayed close waiting: x declines as while asking (R31): it knows, so none is sent"},
    {OVER, ANY, ANY, 0, TF_PROTO_IM_CV_DECLINE, SAME, SAME, SAME, A_OK, OK_, 1,
     {SEND(CLOSE, X_)}, "over: answered with a close at once"},
    /* introduced or over */
    {ANY, ANY, ANY, ANY, TF_PROTO_IM_CV_WITHDRAW, SAME, SAME, SAME, A_NONE, BAD, 0, {{0}},
     "only an intro that is still asking can be withdrawn"},
    /* ticks in any state */
    {ANY, ANY, ANY, ANY, TF_PROTO_IM_CV_TICK_IDLE, SAME, SAME, SAME, A_NONE, OK_, 0, {{0}},
     "nothing is due"},
    {ANY, ANY, ANY, ANY, TF_PROTO_IM_CV_TICK_CLOSE_A, SAME, SAME, SAME, A_NONE, OK_, 2,
     {SEND(CLOSE, A_), STORE}, "the delayed close to a leaves"},
    {ANY, ANY, ANY, ANY, TF_PROTO_IM_CV_TICK_CLOSE_B, SAME, SAME, SAME, A_NONE, OK_, 2,
     {SEND(CLOSE, B_), STORE}, "the delayed close to b leaves"},
    {ANY, ANY, ANY, ANY, TF_PROTO_IM_CV_TICK_CLOSE_AB, SAME, SAME, SAME, A_NONE, OK_, 3,
     {SEND(CLOSE, A_), SEND(CLOSE, B_), STORE}, "both delayed closes leave"},
};

const struct tf_proto_im_party_row tf_proto_im_party_table[] = {
    /* unknown: no record */
    {P_UNK, ANY, TF_PROTO_IM_PV_PROPOSAL_ASK, P_PEN, 0, A_OK, OK_, 2,
     {E(INBOX_RECEIVED), STORE}, "recorded, for the owner to answer"},
    {P_UNK, ANY, TF_PROTO_IM_PV_PROPOSAL_ACCEPT, P_ACC, 1, A_OK, OK_, 4,
     {E(INBOX_RECEIVED), DO(SIGN_ACCEPT, N_), E(INBOX_ACCEPTED), STORE},
     "the policy accepts: one acceptance signed and stored"},
    {P_UNK, ANY, TF_PROTO_IM_PV_PROPOSAL_DECLINE, P_DEC, 0, A_OK, OK_, 4,
     {E(INBOX_RECEIVED), SEND(DECLINE, N_), E(INBOX_DECLINED), STORE}, "the policy declines"},
    {P_UNK, ANY, TF_PROTO_IM_PV_PROPOSAL_EXPIRED, SAME, SAME, A_REF, OK_, 1,
     {DO(REMEMBER_REFUSED, N_)}, "expired on arrival: refused, remembered (a tombstone)"},
    {P_UNK, ANY, TF_PROTO_IM_PV_ACCEPT, SAME, SAME, A_NONE, NF, 0, {{0}}, "no such intro"},
    {P_UNK, ANY, TF_PROTO_IM_PV_DECLINE, SAME, SAME, A_NONE, NF, 0, {{0}}, "no such intro"},
    {P_UNK, ANY, TF_PROTO_IM_PV_INTRO_BAD, SAME, SAME, A_REF, OK_, 0, {{0}},
     "never proposed to us"},
    {P_UNK, ANY, TF_PROTO_IM_PV_CLOSE, SAME, SAME, A_RETRY, OK_, 0, {{0}},
     "not heard of yet: the proposal may follow, so no ACK"},
    {P_UNK, ANY, TF_PROTO_IM_PV_CLOSE_REFUSED, SAME, SAME, A_OK, OK_, 0, {{0}},
     "its proposal was refused: it will not come"},
    /* any known state */
    {ANY, ANY, TF_PROTO_IM_PV_PROPOSAL_KNOWN, SAME, SAME, A_OK, OK_, 0, {{0}}, "already known"},
    /* pending */
    {P_PEN, ANY, TF_PROTO_IM_PV_ACCEPT, P_ACC, 1, A_NONE, OK_, 3,
     {DO(SIGN_ACCEPT, N_), E(INBOX_ACCEPTED), STORE}, "R26: the one acceptance, stored"},
    {P_PEN, ANY, TF_PROTO_IM_PV_DECLINE, P_DEC, SAME, A_NONE, OK_, 3,
     {SEND(DECLINE, N_), E(INBOX_DECLINED), STORE}, "declined"},
    {P_PEN, ANY, TF_PROTO_IM_PV_CLOSE, P_CLO, SAME, A_OK, OK_, 2, {E(INBOX_CLOSED), STORE},
     "closed"},
    {P_PEN, ANY, TF_PROTO_IM_PV_TICK_EXPIRY, P_EXP, SAME, A_NONE, OK_, 2,
     {E(INBOX_EXPIRED), STORE}, "R37: the party expires its own pending items"},
    {P_ACC, ANY, TF_PROTO_IM_PV_TICK_EXPIRY, P_EXP, SAME, A_NONE, OK_, 2,
     {E(INBOX_EXPIRED), STORE}, "R37: accepted, and no introduction can arrive any more"},
    /* accepted */
    {P_ACC, ANY, TF_PROTO_IM_PV_ACCEPT, SAME, SAME, A_NONE, OK_, 1, {DO(RESEND_ACCEPT, N_)},
     "R26: the stored acceptance again, never a new one"},
    {P_ACC, ANY, TF_PROTO_IM_PV_DECLINE, P_DEC, SAME, A_NONE, OK_, 3,
     {SEND(DECLINE, N_), E(INBOX_DECLINED), STORE},
     "a revocation; the stored acceptance is kept"},
    {P_ACC, 1, TF_PROTO_IM_PV_INTRO_OK, P_INT, SAME, A_OK, OK_, 3,
     {DO(ADD_CONTACT, N_), E(INBOX_INTRODUCED), STORE}, "materialised"},
    {P_ACC, ANY, TF_PROTO_IM_PV_CLOSE, P_CLO, SAME, A_OK, OK_, 2, {E(INBOX_CLOSED), STORE},
     "closed (an introduction may still come: R30)"},
    /* declined */
    {P_DEC, ANY, TF_PROTO_IM_PV_ACCEPT, SAME, SAME, A_NONE, BAD, 0, {{0}},
     "R27: no acceptance after one's own decline"},
    {P_DEC, ANY, TF_PROTO_IM_PV_DECLINE, SAME, SAME, A_NONE, BAD, 0, {{0}}, "already declined"},
    {P_DEC, 1, TF_PROTO_IM_PV_INTRO_OK, P_INT, SAME, A_OK, OK_, 4,
     {DO(ADD_CONTACT, N_), E(INBOX_INTRODUCED), E(INBOX_LATE_REVOCATION), STORE},
     "the revocation came too late: both sides must agree"},
    {P_DEC, ANY, TF_PROTO_IM_PV_CLOSE, P_CLO, SAME, A_OK, OK_, 2, {E(INBOX_CLOSED), STORE},
     "closed"},
    /* closed, expired */
    {P_CLO, 1, TF_PROTO_IM_PV_INTRO_OK, P_INT, SAME, A_OK, OK_, 3,
     {DO(ADD_CONTACT, N_), E(INBOX_INTRODUCED), STORE},
     "R30: the close crossed the introduction"},
    {P_EXP, 1, TF_PROTO_IM_PV_INTRO_OK, P_INT, SAME, A_OK, OK_, 3,
     {DO(ADD_CONTACT, N_), E(INBOX_INTRODUCED), STORE},
     "past the grace, yet valid: both sides must agree (R30)"},
    /* over: introduced, closed, expired */
    {OVER, ANY, TF_PROTO_IM_PV_ACCEPT, SAME, SAME, A_NONE, BAD, 0, {{0}},
     "over: no longer answered"},
    {OVER, ANY, TF_PROTO_IM_PV_DECLINE, SAME, SAME, A_NONE, BAD, 0, {{0}},
     "over: no longer answered"},
    {OVER, ANY, TF_PROTO_IM_PV_ACCEPT_LATE, SAME, SAME, A_NONE, BAD, 0, {{0}},
     "over: no longer answered"},
    {OVER, ANY, TF_PROTO_IM_PV_DECLINE_LATE, SAME, SAME, A_NONE, BAD, 0, {{0}},
     "over: no longer answered"},
    {ANY, ANY, TF_PROTO_IM_PV_ACCEPT_LATE, SAME, SAME, A_NONE, BAD, 0, {{0}},
     "R28: expired, the owner can no longer answer"},
    {ANY, ANY, TF_PROTO_IM_PV_DECLINE_LATE, SAME, SAME, A_NONE, BAD, 0, {{0}},
     "R28: expired, the owner can no longer answer"},
    {P_INT, ANY, TF_PROTO_IM_PV_INTRO_OK, SAME, SAME, A_OK, OK_, 0, {{0}},
     "a second delivery changes nothing"},
    {P_INT, ANY, TF_PROTO_IM_PV_INTRO_BAD, SAME, SAME, A_OK, OK_, 0, {{0}},
     "a second delivery changes nothing"},
    {ANY, ANY, TF_PROTO_IM_PV_INTRO_BAD, SAME, SAME, A_REF, OK_, 0, {{0}},
     "never accepted, or the check fails: nothing changes"},
    {OVER, ANY, TF_PROTO_IM_PV_CLOSE, SAME, SAME, A_OK, OK_, 0, {{0}}, "over: nothing changes"},
    {ANY, ANY, TF_PROTO_IM_PV_TICK_IDLE, SAME, SAME, A_NONE, OK_, 0, {{0}}, "nothing is due"},
};
/* clang-format on */

const size_t tf_proto_im_conn_table_len =
    sizeof tf_proto_im_conn_table / sizeof tf_proto_im_conn_table[0];
const size_t tf_proto_im_party_table_len =
    sizeof tf_proto_im_party_table / sizeof tf_proto_im_party_table[0];

static bool key_is(uint8_t key, unsigned v)
{
    return key == TF_PROTO_IM_ANY || key == v;
}

static bool conn_key_is(uint8_t key, enum tf_proto_im_conn_state s)
{
    if (key == TF_PROTO_IM_OVER)
        return s == TF_PROTO_IM_CONN_DECLINED || s == TF_PROTO_IM_CONN_WITHDRAWN ||
               s == TF_PROTO_IM_CONN_EXPIRED;
    return key_is(key, s);
}

static bool party_key_is(uint8_t key, enum tf_proto_im_party_state s)
{
    if (key == TF_PROTO_IM_OVER)
        return s == TF_PROTO_IM_PARTY_INTRODUCED || s == TF_PROTO_IM_PARTY_CLOSED ||
               s == TF_PROTO_IM_PARTY_EXPIRED;
    return key_is(key, s);
}

int tf_proto_im_conn_row_find(const struct tf_proto_im_conn *s,
                              const struct tf_proto_im_conn_input *in)
{
    enum tf_proto_im_conn_variant v = tf_proto_im_conn_classify(s, in);
    int x = in->event == TF_PROTO_IM_CONN_REPLY ? in->side : 0;
    for (size_t i = 0; i < tf_proto_im_conn_table_len; i++) {
        const struct tf_proto_im_conn_row *r = &tf_proto_im_conn_table[i];
        if (r->variant == v && conn_key_is(r->state, s->state) && key_is(r->x, s->side[x]) &&
            key_is(r->o, s->side[1 - x]) && key_is(r->wait, s->close_at[x] != TF_PROTO_IM_NEVER))
            return (int)i;
    }
    return -1;
}

int tf_proto_im_party_row_find(const struct tf_proto_im_party *s,
                               const struct tf_proto_im_party_input *in)
{
    enum tf_proto_im_party_variant v = tf_proto_im_party_classify(s, in);
    for (size_t i = 0; i < tf_proto_im_party_table_len; i++) {
        const struct tf_proto_im_party_row *r = &tf_proto_im_party_table[i];
        if (r->variant == v && party_key_is(r->state, s->state) &&
            key_is(r->has_accept, s->has_accept))
            return (int)i;
    }
    return -1;
}
