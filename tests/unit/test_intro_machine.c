/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for proto/intro_machine: every reachable state of each machine,
 * with every event variant, against the human-reviewed tables
 * (tf_proto_im_conn_table, tf_proto_im_party_table).  A pair without a row
 * fails, a row that no pair reaches fails, and every field of the result is
 * compared: next state, ACK, verb result and each action in order (with its
 * time).  The reachable states are found by running the step functions
 * themselves from a new intro, so a state the code can reach is never left
 * out.  Then the orderings named in issue 12 and 13, one test each.
 */
#include "fixtures.h"

#include "proto/intro_machine.h"

#define EXPIRES 10u
#define NOW 5u     /* before expiry */
#define LATE 11u   /* after expiry */
#define GRACE 5u   /* an accepted item expires after EXPIRES + GRACE */
#define GONE 16u   /* EXPIRES + GRACE + 1 */
#define DELAY_A 2u /* the close delays drawn, to a and to b */
#define DELAY_B 3u
#define MAX_STATES 256

/* ---- Connector ------------------------------------------------------- */

static bool conn_same(const struct tf_proto_im_conn *p, const struct tf_proto_im_conn *q)
{
    return p->state == q->state && p->side[0] == q->side[0] && p->side[1] == q->side[1] &&
           p->expires == q->expires && p->close_at[0] == q->close_at[0] &&
           p->close_at[1] == q->close_at[1];
}

static int rel_side(uint8_t rel, int x)
{
    switch ((enum tf_proto_im_rel)rel) {
    case TF_PROTO_IM_REL_X:
        return x;
    case TF_PROTO_IM_REL_O:
        return 1 - x;
    case TF_PROTO_IM_REL_A:
        return 0;
    case TF_PROTO_IM_REL_B:
        return 1;
    case TF_PROTO_IM_REL_NONE:
        return -1;
    }
    return -2;
}

static void describe_conn(const struct tf_proto_im_conn *s, const struct tf_proto_im_conn_input *in,
                          char *buf, size_t cap)
{
    snprintf(buf, cap, "state %s a=%s b=%s close_at=%llu,%llu; %s (side %d, now %llu)",
             tf_proto_im_conn_state_name(s->state), tf_proto_im_side_state_name(s->side[0]),
             tf_proto_im_side_state_name(s->side[1]), (unsigned long long)s->close_at[0],
             (unsigned long long)s->close_at[1],
             tf_proto_im_conn_variant_name(tf_proto_im_conn_classify(s, in)), in->side,
             (unsigned long long)in->now);
}

/* Compares the actions of one step with a row's expectations. */
static void check_actions(const struct tf_proto_im_out *out, const struct tf_proto_im_expect *want,
                          size_t n, int x, uint64_t now, const uint64_t *delay, uint64_t expires,
                          const char *what)
{
    if (out->n != n)
        fail_msg("%s: %zu actions, the table says %zu", what, out->n, n);
    for (size_t i = 0; i < n; i++) {
        const struct tf_proto_im_action *a = &out->a[i];
        const struct tf_proto_im_expect *e = &want[i];
        if (a->kind != (enum tf_proto_im_act_kind)e->kind)
            fail_msg("%s: action %zu is %s, the table says %s", what, i,
                     tf_proto_im_act_kind_name(a->kind),
                     tf_proto_im_act_kind_name((enum tf_proto_im_act_kind)e->kind));
        switch (a->kind) {
        case TF_PROTO_IM_ACT_SEND:
            if (a->msg != (enum tf_proto_im_msg)e->msg || a->not_before != now)
                fail_msg("%s: action %zu sends %s at %llu", what, i, tf_proto_im_msg_name(a->msg),
                         (unsigned long long)a->not_before);
            if (e->side != TF_PROTO_IM_REL_NONE && a->side != rel_side(e->side, x))
                fail_msg("%s: action %zu sends to side %d", what, i, a->side);
            break;
        case TF_PROTO_IM_ACT_SCHEDULE_CLOSE:
            /* R31: after the delay, but not after the intro would expire */
            if (a->side != rel_side(e->side, x) ||
                a->not_before !=
                    (now + delay[a->side] < expires + 1 ? now + delay[a->side] : expires + 1))
                fail_msg("%s: action %zu schedules side %d at %llu", what, i, a->side,
                         (unsigned long long)a->not_before);
            break;
        case TF_PROTO_IM_ACT_STORE_REPLY:
            if (a->side != rel_side(e->side, x))
                fail_msg("%s: action %zu stores side %d's reply", what, i, a->side);
            break;
        case TF_PROTO_IM_ACT_DROP_CLOSE:
            if (a->side != rel_side(e->side, x))
                fail_msg("%s: action %zu drops side %d's close", what, i, a->side);
            break;
        case TF_PROTO_IM_ACT_EMIT:
            if (a->emit != (enum tf_proto_im_emit)e->emit)
                fail_msg("%s: action %zu emits %s", what, i, tf_proto_im_emit_name(a->emit));
            break;
        case TF_PROTO_IM_ACT_STORE:
        case TF_PROTO_IM_ACT_SIGN_ACCEPT:
        case TF_PROTO_IM_ACT_RESEND_ACCEPT:
        case TF_PROTO_IM_ACT_ADD_CONTACT:
        case TF_PROTO_IM_ACT_REMEMBER_REFUSED:
            break;
        }
    }
    /* STORE comes last, exactly when the state changed (checked by callers). */
}

static void check_result_common(const struct tf_proto_im_out *out, uint8_t ack, int verb_rc,
                                const char *what)
{
    if (out->ack != (enum tf_proto_im_ack)ack)
        fail_msg("%s: ACK %s, the table says %s", what, tf_proto_im_ack_name(out->ack),
                 tf_proto_im_ack_name((enum tf_proto_im_ack)ack));
    if (out->verb_rc != verb_rc)
        fail_msg("%s: verb %s, the table says %s", what, tf_err_name(out->verb_rc),
                 tf_err_name(verb_rc));
    bool refused = out->verb_rc != TF_OK || out->ack == TF_PROTO_IM_ACK_REFUSE ||
                   out->ack == TF_PROTO_IM_ACK_LATE || out->ack == TF_PROTO_IM_ACK_RETRY;
    if (refused != (out->why != NULL))
        fail_msg("%s: a refusal and only a refusal says why", what);
}

static bool store_last_iff_changed(const struct tf_proto_im_out *out, bool changed)
{
    for (size_t i = 0; i < out->n; i++)
        if (out->a[i].kind == TF_PROTO_IM_ACT_STORE && i + 1 != out->n)
            return false;
    bool stored = out->n > 0 && out->a[out->n - 1].kind == TF_PROTO_IM_ACT_STORE;
    return stored == changed;
}

static struct tf_proto_im_conn_input reply(int x, bool accept, bool same, bool late)
{
    return (struct tf_proto_im_conn_input){TF_PROTO_IM_CONN_REPLY, NOW, x, accept, same, late,
                                           {DELAY_A, DELAY_B}};
}

/* Every input, in every variant the state allows. */
/* True if a is a SEND of a message to a side that first sends too. */
static bool sent_by(const struct tf_proto_im_out *first, const struct tf_proto_im_action *a)
{
    for (size_t k = 0; a->kind == TF_PROTO_IM_ACT_SEND && k < first->n; k++)
        if (first->a[k].kind == TF_PROTO_IM_ACT_SEND && first->a[k].msg == a->msg &&
            first->a[k].side == a->side)
            return true;
    return false;
}

/* first's actions then second's, without their STOREs nor a second SEND of
 * what first sent (the expiry's close answers a late reply too), then STORE
 * if changed: what a step preceded by its due tick must give. */
static void compose(const struct tf_proto_im_out *first, const struct tf_proto_im_out *second,
                    bool changed, struct tf_proto_im_out *want)
{
    *want = *second;
    want->n = 0;
    const struct tf_proto_im_out *parts[2] = {first, second};
    for (int p = 0; p < 2; p++)
        for (size_t k = 0; k < parts[p]->n; k++)
            if (parts[p]->a[k].kind != TF_PROTO_IM_ACT_STORE &&
                (p == 0 || !sent_by(first, &parts[p]->a[k]))) {
                assert_true(want->n < TF_PROTO_IM_ACTIONS_MAX);
                want->a[want->n++] = parts[p]->a[k];
            }
    if (changed) {
        assert_true(want->n < TF_PROTO_IM_ACTIONS_MAX);
        memset(&want->a[want->n], 0, sizeof want->a[0]);
        want->a[want->n++].kind = TF_PROTO_IM_ACT_STORE;
    }
}

static void assert_same_out(const struct tf_proto_im_out *got, const struct tf_proto_im_out *want,
                            const char *what)
{
    bool same = got->ack == want->ack && got->verb_rc == want->verb_rc && got->n == want->n;
    for (size_t k = 0; same && k < got->n; k++) {
        const struct tf_proto_im_action *a = &got->a[k], *b = &want->a[k];
        same = a->kind == b->kind;
        if (same && a->kind != TF_PROTO_IM_ACT_STORE)
            same = a->msg == b->msg && a->side == b->side && a->emit == b->emit &&
                   a->not_before == b->not_before;
    }
    if (!same)
        fail_msg("%s: the step is not its due tick followed by the input", what);
}

/* An input that comes when something is due: the tick happens first, in the
 * same step. */
static void check_conn_due_first(const struct tf_proto_im_conn *s,
                                 const struct tf_proto_im_conn_input *in)
{
    char what[256];
    describe_conn(s, in, what, sizeof what);
    struct tf_proto_im_conn_input tick = {
        TF_PROTO_IM_CONN_TICK, in->now, 0, false, false, false, {0, 0}};
    struct tf_proto_im_conn mid, want_next, next;
    struct tf_proto_im_out first, second, want, out;
    tf_proto_im_conn_step(s, &tick, &mid, &first);
    tf_proto_im_conn_step(&mid, in, &want_next, &second);
    compose(&first, &second, !conn_same(s, &want_next), &want);
    tf_proto_im_conn_step(s, in, &next, &out);
    if (!conn_same(&next, &want_next))
        fail_msg("%s: not the state of its due tick followed by the input", what);
    assert_same_out(&out, &want, what);
}

static size_t conn_inputs(const struct tf_proto_im_conn *s, struct tf_proto_im_conn_input *in)
{
    size_t n = 0;
    for (int x = 0; x < 2; x++) {
        in[n++] = reply(x, true, false, false); /* new, or other bytes */
        if (s->side[x] == TF_PROTO_IM_SIDE_ACCEPTED)
            in[n++] = reply(x, true, true, false); /* the stored bytes again */
        in[n++] = reply(x, true, false, true);
        in[n++] = reply(x, false, false, false);
        in[n++] = reply(x, false, false, true);
    }
    in[n++] = (struct tf_proto_im_conn_input){
        TF_PROTO_IM_CONN_WITHDRAW, NOW, 0, false, false, false, {DELAY_A, DELAY_B}};
    const uint64_t ticks[] = {NOW, NOW + DELAY_A, NOW + DELAY_B, LATE};
    for (size_t i = 0; i < 4; i++)
        in[n++] = (struct tf_proto_im_conn_input){
            TF_PROTO_IM_CONN_TICK, ticks[i], 0, false, false, false, {0, 0}};
    return n;
}

static void test_connector_table(void **state)
{
    (void)state;
    struct tf_proto_im_conn seen[MAX_STATES];
    size_t n_seen = 0, pairs = 0, due_pairs = 0;
    bool used[64] = {false};
    bool variant_seen[TF_PROTO_IM_CV_COUNT] = {false};
    assert_true(tf_proto_im_conn_table_len <= 64);
    struct tf_proto_im_out out;
    for (int seq = 0; seq < 2; seq++) {
        tf_proto_im_conn_propose(seq, EXPIRES, &seen[n_seen++], &out);
        assert_int_equal(out.n, seq ? 3 : 4);
        assert_int_equal(out.a[out.n - 1].kind, TF_PROTO_IM_ACT_STORE);
    }
    for (size_t i = 0; i < n_seen; i++) {
        const struct tf_proto_im_conn *s = &seen[i];
        struct tf_proto_im_conn_input in[32];
        size_t n_in = conn_inputs(s, in);
        for (size_t k = 0; k < n_in; k++) {
            uint64_t due = tf_proto_im_conn_deadline(s);
            if (in[k].event != TF_PROTO_IM_CONN_TICK && due != TF_PROTO_IM_NEVER) {
                struct tf_proto_im_conn_input late = in[k];
                late.now = due;
                check_conn_due_first(s, &late);
                due_pairs++;
            }
            if (in[k].event != TF_PROTO_IM_CONN_TICK && due <= in[k].now)
                continue; /* that was the pair just checked */
            char what[256];
            describe_conn(s, &in[k], what, sizeof what);
            int row = tf_proto_im_conn_row_find(s, &in[k]);
            if (row < 0)
                fail_msg("%s: no row in the connector table", what);
            const struct tf_proto_im_conn_row *r = &tf_proto_im_conn_table[row];
            struct tf_proto_im_conn next;
            tf_proto_im_conn_step(s, &in[k], &next, &out);
            int x = in[k].event == TF_PROTO_IM_CONN_REPLY ? in[k].side : 0;
            uint8_t want_state = r->next == TF_PROTO_IM_SAME ? (uint8_t)s->state : r->next;
            uint8_t want_x = r->next_x == TF_PROTO_IM_SAME ? (uint8_t)s->side[x] : r->next_x;
            uint8_t want_o = r->next_o == TF_PROTO_IM_SAME ? (uint8_t)s->side[1 - x] : r->next_o;
            if (next.state != want_state || next.side[x] != want_x || next.side[1 - x] != want_o)
                fail_msg("%s: goes to %s x=%s o=%s (row %d)", what,
                         tf_proto_im_conn_state_name(next.state),
                         tf_proto_im_side_state_name(next.side[x]),
                         tf_proto_im_side_state_name(next.side[1 - x]), row);
            check_result_common(&out, r->ack, r->verb_rc, what);
            check_actions(&out, r->act, r->n, x, in[k].now, in[k].close_delay, s->expires, what);
            if (!store_last_iff_changed(&out, !conn_same(s, &next)))
                fail_msg("%s: STORE must be last, exactly when the record changes", what);
            /* A scheduled close is in the record; a sent one is cleared. */
            for (size_t j = 0; j < out.n; j++)
                if ((out.a[j].kind == TF_PROTO_IM_ACT_SCHEDULE_CLOSE &&
                     next.close_at[out.a[j].side] != out.a[j].not_before) ||
                    (out.a[j].kind == TF_PROTO_IM_ACT_DROP_CLOSE &&
                     (s->close_at[out.a[j].side] == TF_PROTO_IM_NEVER ||
                      next.close_at[out.a[j].side] != TF_PROTO_IM_NEVER)))
                    fail_msg("%s: the record does not hold the scheduled or dropped close", what);
            used[row] = true;
            variant_seen[tf_proto_im_conn_classify(s, &in[k])] = true;
            pairs++;
            bool known = false;
            for (size_t j = 0; j < n_seen && !known; j++)
                known = conn_same(&seen[j], &next);
            if (!known) {
                assert_true(n_seen < MAX_STATES);
                seen[n_seen++] = next;
            }
        }
    }
    for (size_t i = 0; i < tf_proto_im_conn_table_len; i++)
        if (!used[i])
            fail_msg("connector row %zu (%s) is reached by no state", i,
                     tf_proto_im_conn_table[i].note);
    for (int v = 0; v < TF_PROTO_IM_CV_COUNT; v++)
        if (!variant_seen[v])
            fail_msg("variant %s never ran",
                     tf_proto_im_conn_variant_name((enum tf_proto_im_conn_variant)v));
    print_message("connector: %zu reachable states, %zu state x event pairs, %zu rows; %zu "
                  "inputs at a deadline\n",
                  n_seen, pairs, tf_proto_im_conn_table_len, due_pairs);
    assert_true(due_pairs > 0);
    /* Both modes, every terminal state, the delayed closes: at least. */
    assert_true(n_seen >= 20);
}

/* ---- Party ----------------------------------------------------------- */

static bool party_same(const struct tf_proto_im_party *p, const struct tf_proto_im_party *q)
{
    return p->state == q->state && p->has_accept == q->has_accept && p->expires == q->expires &&
           p->grace == q->grace;
}

static struct tf_proto_im_party_input party_in(enum tf_proto_im_party_event ev, uint64_t now)
{
    struct tf_proto_im_party_input in = {ev,    now,  EXPIRES, GRACE, TF_PROTO_IM_POLICY_ASK,
                                         false, false};
    return in;
}

/* Every input, in every variant: the verbs before and after expiry, and
 * the ticks before and after each deadline. */
static size_t party_inputs(struct tf_proto_im_party_input *in)
{
    size_t n = 0;
    for (int p = 0; p < 3; p++) {
        in[n] = party_in(TF_PROTO_IM_PARTY_PROPOSAL, NOW);
        in[n++].policy = (enum tf_proto_im_policy)p;
    }
    in[n++] = party_in(TF_PROTO_IM_PARTY_PROPOSAL, LATE);
    const uint64_t verb_times[] = {NOW, LATE};
    for (size_t t = 0; t < 2; t++) {
        in[n++] = party_in(TF_PROTO_IM_PARTY_ACCEPT, verb_times[t]);
        in[n++] = party_in(TF_PROTO_IM_PARTY_DECLINE, verb_times[t]);
    }
    for (int m = 0; m < 2; m++) {
        in[n] = party_in(TF_PROTO_IM_PARTY_INTRODUCTION, NOW);
        in[n++].materialises = m == 1;
    }
    for (int f = 0; f < 2; f++) {
        in[n] = party_in(TF_PROTO_IM_PARTY_CLOSE, NOW);
        in[n++].refused = f == 1;
    }
    const uint64_t ticks[] = {NOW, LATE, GONE};
    for (size_t t = 0; t < 3; t++)
        in[n++] = party_in(TF_PROTO_IM_PARTY_TICK, ticks[t]);
    return n;
}

static void check_party_due_first(const struct tf_proto_im_party *s,
                                  const struct tf_proto_im_party_input *in)
{
    char what[256];
    snprintf(what, sizeof what, "party %s (accept stored: %d); input %d at its deadline %llu",
             tf_proto_im_party_state_name(s->state), s->has_accept, (int)in->event,
             (unsigned long long)in->now);
    struct tf_proto_im_party_input tick = party_in(TF_PROTO_IM_PARTY_TICK, in->now);
    struct tf_proto_im_party mid, want_next, next;
    struct tf_proto_im_out first, second, want, out;
    tf_proto_im_party_step(s, &tick, &mid, &first);
    tf_proto_im_party_step(&mid, in, &want_next, &second);
    compose(&first, &second, !party_same(s, &want_next), &want);
    tf_proto_im_party_step(s, in, &next, &out);
    if (!party_same(&next, &want_next))
        fail_msg("%s: not the state of its due tick followed by the input", what);
    assert_same_out(&out, &want, what);
}

static void test_party_table(void **state)
{
    (void)state;
    struct tf_proto_im_party seen[MAX_STATES];
    size_t n_seen = 1, pairs = 0, due_pairs = 0;
    bool used[64] = {false};
    bool variant_seen[TF_PROTO_IM_PV_COUNT] = {false};
    assert_true(tf_proto_im_party_table_len <= 64);
    memset(&seen[0], 0, sizeof seen[0]);
    seen[0].state = TF_PROTO_IM_PARTY_UNKNOWN;
    struct tf_proto_im_party_input in[32];
    size_t n_in = party_inputs(in);
    for (size_t i = 0; i < n_seen; i++) {
        const struct tf_proto_im_party *s = &seen[i];
        for (size_t k = 0; k < n_in; k++) {
            uint64_t due = tf_proto_im_party_deadline(s);
            if (in[k].event != TF_PROTO_IM_PARTY_TICK && due != TF_PROTO_IM_NEVER &&
                !(in[k].materialises && !s->has_accept)) {
                struct tf_proto_im_party_input late = in[k];
                late.now = due;
                check_party_due_first(s, &late);
                due_pairs++;
            }
            if (in[k].event != TF_PROTO_IM_PARTY_TICK && due <= in[k].now)
                continue; /* that was the pair just checked */
            /* The materialisation check can pass only against a stored
             * acceptance. */
            if (in[k].materialises && !s->has_accept)
                continue;
            char what[256];
            snprintf(what, sizeof what, "party %s (accept stored: %d); %s at %llu",
                     tf_proto_im_party_state_name(s->state), s->has_accept,
                     tf_proto_im_party_variant_name(tf_proto_im_party_classify(s, &in[k])),
                     (unsigned long long)in[k].now);
            int row = tf_proto_im_party_row_find(s, &in[k]);
            if (row < 0)
                fail_msg("%s: no row in the party table", what);
            const struct tf_proto_im_party_row *r = &tf_proto_im_party_table[row];
            struct tf_proto_im_party next;
            struct tf_proto_im_out out;
            tf_proto_im_party_step(s, &in[k], &next, &out);
            uint8_t want_state = r->next == TF_PROTO_IM_SAME ? (uint8_t)s->state : r->next;
            uint8_t want_acc = r->next_has_accept == TF_PROTO_IM_SAME ? (uint8_t)s->has_accept
                                                                      : r->next_has_accept;
            if (next.state != want_state || next.has_accept != want_acc)
                fail_msg("%s: goes to %s (accept stored: %d), row %d", what,
                         tf_proto_im_party_state_name(next.state), next.has_accept, row);
            check_result_common(&out, r->ack, r->verb_rc, what);
            check_actions(&out, r->act, r->n, 0, in[k].now, NULL, 0, what);
            if (!store_last_iff_changed(&out, !party_same(s, &next)))
                fail_msg("%s: STORE must be last, exactly when the record changes", what);
            used[row] = true;
            variant_seen[tf_proto_im_party_classify(s, &in[k])] = true;
            pairs++;
            bool known = false;
            for (size_t j = 0; j < n_seen && !known; j++)
                known = party_same(&seen[j], &next);
            if (!known) {
                assert_true(n_seen < MAX_STATES);
                seen[n_seen++] = next;
            }
        }
    }
    for (size_t i = 0; i < tf_proto_im_party_table_len; i++)
        if (!used[i])
            fail_msg("party row %zu (%s) is reached by no state", i,
                     tf_proto_im_party_table[i].note);
    for (int v = 0; v < TF_PROTO_IM_PV_COUNT; v++)
        if (!variant_seen[v])
            fail_msg("variant %s never ran",
                     tf_proto_im_party_variant_name((enum tf_proto_im_party_variant)v));
    print_message("party: %zu reachable states, %zu state x event pairs, %zu rows; %zu inputs at "
                  "a deadline\n",
                  n_seen, pairs, tf_proto_im_party_table_len, due_pairs);
    assert_true(due_pairs > 0);
    /* unknown, pending, accepted, declined with and without an acceptance,
     * introduced, closed with and without, expired with and without. */
    assert_int_equal(n_seen, 10);
}

/* ---- The orderings of issues 12 and 13, one by one ------------------- */

static void party_do(struct tf_proto_im_party *s, enum tf_proto_im_party_event ev, bool flag,
                     struct tf_proto_im_out *out)
{
    struct tf_proto_im_party_input in = party_in(ev, NOW);
    in.materialises = flag;
    struct tf_proto_im_party next;
    tf_proto_im_party_step(s, &in, &next, out);
    *s = next;
}

static size_t count(const struct tf_proto_im_out *out, enum tf_proto_im_act_kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < out->n; i++)
        n += out->a[i].kind == k;
    return n;
}

/* Issue 12 (audit M1): accept, decline, accept with the connector offline
 * signed two acceptances.  Now: one signature; the second accept is
 * refused, and the introduction made with the first still materialises. */
static void test_accept_decline_accept_signs_once(void **state)
{
    (void)state;
    struct tf_proto_im_party s = {TF_PROTO_IM_PARTY_UNKNOWN, false, 0, 0};
    struct tf_proto_im_out out;
    size_t signed_n = 0;
    party_do(&s, TF_PROTO_IM_PARTY_PROPOSAL, false, &out);
    party_do(&s, TF_PROTO_IM_PARTY_ACCEPT, false, &out);
    signed_n += count(&out, TF_PROTO_IM_ACT_SIGN_ACCEPT);
    party_do(&s, TF_PROTO_IM_PARTY_ACCEPT, false, &out); /* again: resend */
    signed_n += count(&out, TF_PROTO_IM_ACT_SIGN_ACCEPT);
    assert_int_equal(count(&out, TF_PROTO_IM_ACT_RESEND_ACCEPT), 1);
    party_do(&s, TF_PROTO_IM_PARTY_DECLINE, false, &out);
    assert_int_equal(s.state, TF_PROTO_IM_PARTY_DECLINED);
    party_do(&s, TF_PROTO_IM_PARTY_ACCEPT, false, &out);
    assert_rc(out.verb_rc, TF_E_BAD_STATE);
    assert_int_equal(out.n, 0);
    signed_n += count(&out, TF_PROTO_IM_ACT_SIGN_ACCEPT);
    assert_int_equal(signed_n, 1);
    assert_int_equal(s.state, TF_PROTO_IM_PARTY_DECLINED);
    party_do(&s, TF_PROTO_IM_PARTY_INTRODUCTION, true, &out);
    assert_int_equal(s.state, TF_PROTO_IM_PARTY_INTRODUCED);
    assert_int_equal(out.ack, TF_PROTO_IM_ACK_OK);
    assert_int_equal(count(&out, TF_PROTO_IM_ACT_ADD_CONTACT), 1);
}

/* R30: accepted, then closed, then the introduction (they crossed). */
static void test_closed_then_introduction_materialises(void **state)
{
    (void)state;
    struct tf_proto_im_party s = {TF_PROTO_IM_PARTY_UNKNOWN, false, 0, 0};
    struct tf_proto_im_out out;
    party_do(&s, TF_PROTO_IM_PARTY_PROPOSAL, false, &out);
    party_do(&s, TF_PROTO_IM_PARTY_ACCEPT, false, &out);
    party_do(&s, TF_PROTO_IM_PARTY_CLOSE, false, &out);
    assert_int_equal(s.state, TF_PROTO_IM_PARTY_CLOSED);
    party_do(&s, TF_PROTO_IM_PARTY_INTRODUCTION, true, &out);
    assert_int_equal(s.state, TF_PROTO_IM_PARTY_INTRODUCED);
    /* Never accepted and closed: refused. */
    struct tf_proto_im_party t = {TF_PROTO_IM_PARTY_UNKNOWN, false, 0, 0};
    party_do(&t, TF_PROTO_IM_PARTY_PROPOSAL, false, &out);
    party_do(&t, TF_PROTO_IM_PARTY_CLOSE, false, &out);
    party_do(&t, TF_PROTO_IM_PARTY_INTRODUCTION, true, &out);
    assert_int_equal(out.ack, TF_PROTO_IM_ACK_REFUSE);
    assert_int_equal(t.state, TF_PROTO_IM_PARTY_CLOSED);
}

static void conn_do(struct tf_proto_im_conn *s, struct tf_proto_im_conn_input in,
                    struct tf_proto_im_out *out)
{
    struct tf_proto_im_conn next;
    tf_proto_im_conn_step(s, &in, &next, out);
    *s = next;
}

static struct tf_proto_im_conn_input cin(enum tf_proto_im_conn_event ev, uint64_t now, int side,
                                         bool accept, bool late, uint64_t delay_a, uint64_t delay_b)
{
    struct tf_proto_im_conn_input in = {ev, now, side, accept, false, late, {delay_a, delay_b}};
    return in;
}

/* R29 and R31: a late reply is refused (reason 3); a decline's close waits
 * for its delay and leaves on the tick, and a reply from that side meanwhile
 * does not hasten it; a withdrawal draws one delay per close; expiry closes
 * at once. */
static void test_connector_late_reply_and_delays(void **state)
{
    (void)state;
    struct tf_proto_im_conn s;
    struct tf_proto_im_out out;
    tf_proto_im_conn_propose(false, EXPIRES, &s, &out);
    assert_int_equal(tf_proto_im_conn_deadline(&s), EXPIRES + 1);
    conn_do(&s, cin(TF_PROTO_IM_CONN_REPLY, NOW, 0, true, true, 3, 3), &out);
    assert_int_equal(out.ack, TF_PROTO_IM_ACK_LATE);
    assert_int_equal(s.side[0], TF_PROTO_IM_SIDE_PENDING);
    conn_do(&s, cin(TF_PROTO_IM_CONN_REPLY, NOW, 1, false, false, 3, 4), &out);
    assert_int_equal(s.state, TF_PROTO_IM_CONN_DECLINED);
    assert_int_equal(s.close_at[0], NOW + 3);
    assert_int_equal(s.close_at[1], TF_PROTO_IM_NEVER);
    assert_int_equal(count(&out, TF_PROTO_IM_ACT_SEND), 0);
    assert_int_equal(tf_proto_im_conn_deadline(&s), NOW + 3);
    conn_do(&s, cin(TF_PROTO_IM_CONN_REPLY, NOW + 1, 0, true, false, 3, 3), &out);
    assert_int_equal(out.ack, TF_PROTO_IM_ACK_OK);
    assert_int_equal(count(&out, TF_PROTO_IM_ACT_SEND), 0); /* a's close waits for its time */
    assert_int_equal(count(&out, TF_PROTO_IM_ACT_STORE_REPLY), 1); /* kept as while asking */
    assert_int_equal(s.close_at[0], NOW + 3);
    conn_do(&s, cin(TF_PROTO_IM_CONN_TICK, NOW + 2, 0, false, false, 0, 0), &out);
    assert_int_equal(out.n, 0);
    conn_do(&s, cin(TF_PROTO_IM_CONN_TICK, NOW + 3, 0, false, false, 0, 0), &out);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.a[0].msg, TF_PROTO_IM_MSG_CLOSE);
    assert_int_equal(out.a[0].side, 0);
    assert_int_equal(tf_proto_im_conn_deadline(&s), TF_PROTO_IM_NEVER);
    struct tf_proto_im_conn_input again =
        cin(TF_PROTO_IM_CONN_REPLY, NOW + 4, 0, true, false, 3, 3);
    again.same_as_stored = true; /* the acceptance kept at NOW + 1 */
    conn_do(&s, again, &out);
    assert_int_equal(count(&out, TF_PROTO_IM_ACT_SEND), 1); /* none waits now: at once */

    tf_proto_im_conn_propose(false, EXPIRES, &s, &out);
    conn_do(&s, cin(TF_PROTO_IM_CONN_WITHDRAW, NOW, 0, false, false, 3, 7), &out);
    assert_int_equal(s.close_at[0], NOW + 3);
    assert_int_equal(s.close_at[1], EXPIRES + 1); /* NOW + 7, but not after the expiry */
    conn_do(&s, cin(TF_PROTO_IM_CONN_WITHDRAW, NOW, 0, false, false, 3, 3), &out);
    assert_rc(out.verb_rc, TF_E_BAD_STATE);

    tf_proto_im_conn_propose(false, EXPIRES, &s, &out);
    conn_do(&s, cin(TF_PROTO_IM_CONN_TICK, EXPIRES, 0, false, false, 0, 0), &out);
    assert_int_equal(s.state, TF_PROTO_IM_CONN_ASKING); /* valid until expires, inclusive */
    conn_do(&s, cin(TF_PROTO_IM_CONN_TICK, EXPIRES + 1, 0, false, false, 0, 0), &out);
    assert_int_equal(s.state, TF_PROTO_IM_CONN_EXPIRED);

    /* A reply that finds the intro past its expiry: the expiry's closes
     * leave, and the replying side gets no second one. */
    tf_proto_im_conn_propose(false, EXPIRES, &s, &out);
    conn_do(&s, cin(TF_PROTO_IM_CONN_REPLY, EXPIRES + 1, 1, true, false, 3, 3), &out);
    assert_int_equal(s.state, TF_PROTO_IM_CONN_EXPIRED);
    assert_int_equal(out.ack, TF_PROTO_IM_ACK_OK);
    assert_int_equal(count(&out, TF_PROTO_IM_ACT_SEND), 2);
    for (size_t k = 0; k < 2; k++) {
        assert_int_equal(out.a[k].msg, TF_PROTO_IM_MSG_CLOSE);
        assert_int_equal(out.a[k].side, (int)k);
    }
    assert_int_equal(count(&out, TF_PROTO_IM_ACT_SEND), 2);
    assert_int_equal(out.a[0].not_before, EXPIRES + 1);
}

/* What side a sees of one reply: its ACK and whether a close to it leaves
 * now. */
struct a_view {
    enum tf_proto_im_ack ack;
    bool closed_now;
};

static struct a_view a_reply(struct tf_proto_im_conn *s, uint64_t now, bool accept, bool same)
{
    struct tf_proto_im_conn_input in = cin(TF_PROTO_IM_CONN_REPLY, now, 0, accept, false, 50, 50);
    struct tf_proto_im_out out;
    in.same_as_stored = same;
    conn_do(s, in, &out);
    struct a_view v = {out.ack, false};
    for (size_t k = 0; k < out.n; k++)
        if (out.a[k].kind == TF_PROTO_IM_ACT_SEND && out.a[k].msg == TF_PROTO_IM_MSG_CLOSE &&
            out.a[k].side == 0)
            v.closed_now = true;
    return v;
}

/* Two connectors' records of one intro: in `asking` b has not answered; in
 * `over` b declined first (or the connector withdrew), so a's close waits
 * for its delay (50 s), which would end after the expiry: it is due then. */
static void asking_and_over(struct tf_proto_im_conn *asking, struct tf_proto_im_conn *over,
                            bool withdrawn)
{
    struct tf_proto_im_out out;
    tf_proto_im_conn_propose(false, EXPIRES, asking, &out);
    *over = *asking;
    if (withdrawn)
        conn_do(over, cin(TF_PROTO_IM_CONN_WITHDRAW, NOW, 0, false, false, 50, 50), &out);
    else
        conn_do(over, cin(TF_PROTO_IM_CONN_REPLY, NOW, 1, false, false, 50, 50), &out);
    assert_int_equal(over->state,
                     withdrawn ? TF_PROTO_IM_CONN_WITHDRAWN : TF_PROTO_IM_CONN_DECLINED);
    assert_int_equal(over->close_at[0], EXPIRES + 1);
}

/* Whether a tick at now sends side a a close. */
static bool a_closed_by_tick(struct tf_proto_im_conn *s, uint64_t now)
{
    struct tf_proto_im_out out;
    conn_do(s, cin(TF_PROTO_IM_CONN_TICK, now, 0, false, false, 0, 0), &out);
    for (size_t k = 0; k < out.n; k++)
        if (out.a[k].kind == TF_PROTO_IM_ACT_SEND && out.a[k].msg == TF_PROTO_IM_MSG_CLOSE &&
            out.a[k].side == 0)
            return true;
    return false;
}

static void assert_same_view(struct a_view asking, struct a_view over)
{
    assert_int_equal(asking.ack, over.ack);
    assert_int_equal(asking.closed_now, over.closed_now);
}

/* R31 with a party that sends what its own software should not: until its
 * delayed close, whatever replies side a sends get the same ACKs and closes
 * whether b declined (or the connector withdrew) before them or nothing has
 * happened yet (reviewers' scenarios: two different acceptances; an
 * acceptance, a revocation, the acceptance again; a decline, then a probe;
 * waiting for the expiry). */
static void over_answers_as_asking(bool withdrawn)
{
    struct tf_proto_im_conn asking, over;
    /* 1. a accepts A1, then signs a different A2: refused in both. */
    asking_and_over(&asking, &over, withdrawn);
    assert_same_view(a_reply(&asking, NOW + 1, true, false), a_reply(&over, NOW + 1, true, false));
    assert_int_equal(over.side[0], TF_PROTO_IM_SIDE_ACCEPTED);
    assert_int_equal(over.close_at[0], EXPIRES + 1); /* still waiting */
    struct a_view second = a_reply(&over, NOW + 2, true, false);
    assert_int_equal(second.ack, TF_PROTO_IM_ACK_REFUSE);
    assert_same_view(a_reply(&asking, NOW + 2, true, false), second);
    assert_same_view(a_reply(&asking, NOW + 3, true, true), a_reply(&over, NOW + 3, true, true));
    /* 2. a accepts, revokes, then sends its acceptance again: the
     * revocation ends it for a in both (no close to a), and the acceptance
     * after it is answered with a close at once in both. */
    asking_and_over(&asking, &over, withdrawn);
    a_reply(&asking, NOW + 1, true, false);
    a_reply(&over, NOW + 1, true, false);
    struct a_view revoked = a_reply(&over, NOW + 2, false, false);
    assert_false(revoked.closed_now);
    assert_int_equal(over.close_at[0], TF_PROTO_IM_NEVER);
    assert_same_view(a_reply(&asking, NOW + 2, false, false), revoked);
    struct a_view again = a_reply(&over, NOW + 3, true, true);
    assert_true(again.closed_now);
    assert_same_view(a_reply(&asking, NOW + 3, true, true), again);
    /* 3. a declines, then probes with any reply: a close at once in both. */
    asking_and_over(&asking, &over, withdrawn);
    assert_same_view(a_reply(&asking, NOW + 1, false, false),
                     a_reply(&over, NOW + 1, false, false));
    if (!withdrawn) /* no close waits for b, the decliner */
        assert_int_equal(tf_proto_im_conn_deadline(&over), TF_PROTO_IM_NEVER);
    assert_same_view(a_reply(&asking, NOW + 2, false, false),
                     a_reply(&over, NOW + 2, false, false));
    assert_same_view(a_reply(&asking, NOW + 3, true, false), a_reply(&over, NOW + 3, true, false));
    /* 4. a answers nothing and waits for the expiry: a close then in both,
     * and none before (the delayed close never outlives the expiry). */
    asking_and_over(&asking, &over, withdrawn);
    assert_false(a_closed_by_tick(&over, EXPIRES));
    assert_false(a_closed_by_tick(&asking, EXPIRES));
    assert_true(a_closed_by_tick(&over, EXPIRES + 1));
    assert_true(a_closed_by_tick(&asking, EXPIRES + 1));
}

static void test_connector_over_answers_as_asking(void **state)
{
    (void)state;
    over_answers_as_asking(false);
    over_answers_as_asking(true);
}

/* The party expires its own items: pending after expires, accepted after
 * the grace; the owner cannot answer after expires; a valid introduction
 * still materialises from expired-after-accepting. */
static void test_party_expiry(void **state)
{
    (void)state;
    struct tf_proto_im_party s = {TF_PROTO_IM_PARTY_UNKNOWN, false, 0, 0};
    struct tf_proto_im_out out;
    party_do(&s, TF_PROTO_IM_PARTY_PROPOSAL, false, &out);
    assert_int_equal(tf_proto_im_party_deadline(&s), EXPIRES + 1);
    party_do(&s, TF_PROTO_IM_PARTY_ACCEPT, false, &out);
    assert_int_equal(tf_proto_im_party_deadline(&s), EXPIRES + GRACE + 1);
    struct tf_proto_im_party next;
    struct tf_proto_im_party_input in = party_in(TF_PROTO_IM_PARTY_DECLINE, LATE);
    tf_proto_im_party_step(&s, &in, &next, &out);
    assert_rc(out.verb_rc, TF_E_BAD_STATE);
    assert_int_equal(next.state, TF_PROTO_IM_PARTY_ACCEPTED);
    in = party_in(TF_PROTO_IM_PARTY_ACCEPT, LATE); /* not even the resend */
    tf_proto_im_party_step(&s, &in, &next, &out);
    assert_rc(out.verb_rc, TF_E_BAD_STATE);
    assert_int_equal(out.n, 0);
    in = party_in(TF_PROTO_IM_PARTY_TICK, EXPIRES + GRACE);
    tf_proto_im_party_step(&s, &in, &next, &out);
    assert_int_equal(next.state, TF_PROTO_IM_PARTY_ACCEPTED);
    in = party_in(TF_PROTO_IM_PARTY_TICK, EXPIRES + GRACE + 1);
    tf_proto_im_party_step(&s, &in, &next, &out);
    assert_int_equal(next.state, TF_PROTO_IM_PARTY_EXPIRED);
    s = next;
    party_do(&s, TF_PROTO_IM_PARTY_INTRODUCTION, true, &out);
    assert_int_equal(s.state, TF_PROTO_IM_PARTY_INTRODUCED);
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < TF_PROTO_IM_CONN_STATE_COUNT; i++)
        assert_string_not_equal(tf_proto_im_conn_state_name((enum tf_proto_im_conn_state)i), "?");
    for (int i = 0; i < TF_PROTO_IM_PARTY_STATE_COUNT; i++)
        assert_string_not_equal(tf_proto_im_party_state_name((enum tf_proto_im_party_state)i), "?");
    for (int i = 0; i < TF_PROTO_IM_SIDE_STATE_COUNT; i++)
        assert_string_not_equal(tf_proto_im_side_state_name((enum tf_proto_im_side_state)i), "?");
    for (int i = 0; i < TF_PROTO_IM_EMIT_COUNT; i++)
        assert_string_not_equal(tf_proto_im_emit_name((enum tf_proto_im_emit)i), "?");
    assert_string_equal(tf_proto_im_conn_state_name(TF_PROTO_IM_CONN_STATE_COUNT), "?");
    assert_string_equal(tf_proto_im_party_state_name(TF_PROTO_IM_PARTY_STATE_COUNT), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connector_table),
        cmocka_unit_test(test_party_table),
        cmocka_unit_test(test_accept_decline_accept_signs_once),
        cmocka_unit_test(test_closed_then_introduction_materialises),
        cmocka_unit_test(test_connector_late_reply_and_delays),
        cmocka_unit_test(test_connector_over_answers_as_asking),
        cmocka_unit_test(test_party_expiry),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
