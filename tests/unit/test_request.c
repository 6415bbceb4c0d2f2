/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/request: requests and request closes (sign, decode,
 * verify, each refusal), the proposal's optional request field, and the
 * request machine (every state x event x role, and its invariants). */
#include "fixtures.h"

#include "proto/intro.h"
#include "proto/request.h"

/* Bob (asker) asks Carol (connector). */
static void make_request(const struct fx_world *w, struct tf_proto_request *q)
{
    memset(q, 0, sizeof *q);
    memcpy(q->asker_pk, w->id[FX_B].sign_pk, 32);
    memcpy(q->connector_pk, w->id[FX_C].sign_pk, 32);
    q->seeking = fx_str("real-estate-law");
    q->note = fx_str("buying a flat");
    q->created = FX_CREATED;
    q->expires = FX_EXPIRES;
    memset(q->nonce, 0x5a, sizeof q->nonce);
}

static void test_request_round_trip(void **state)
{
    (void)state;
    struct fx_world w;
    struct tf_proto_request q, got;
    struct tf_proto_buf out;
    uint8_t id[32];
    fx_world_init(&w);
    make_request(&w, &q);
    assert_ok(tf_proto_request_sign(&w.id[FX_B], &q, &out, id));
    assert_ok(tf_proto_request_verify(w.id[FX_C].sign_pk, w.id[FX_B].sign_pk, out.data, out.len,
                                      FX_NOW, FX_SKEW, &got));
    assert_memory_equal(got.id, id, 32);
    assert_int_equal(got.seeking.len, strlen("real-estate-law"));
    assert_memory_equal(got.seeking.ptr, "real-estate-law", got.seeking.len);
    assert_int_equal(got.expires, FX_EXPIRES);
    /* decode gives the same id */
    assert_ok(tf_proto_request_decode(out.data, out.len, &got));
    assert_memory_equal(got.id, id, 32);
    /* refusals, in the documented order */
    assert_rc(tf_proto_request_verify(w.id[FX_C].sign_pk, w.id[FX_A].sign_pk, out.data, out.len,
                                      FX_NOW, FX_SKEW, &got),
              TF_E_KEY_MISMATCH);
    assert_rc(tf_proto_request_verify(w.id[FX_D].sign_pk, w.id[FX_B].sign_pk, out.data, out.len,
                                      FX_NOW, FX_SKEW, &got),
              TF_E_NOT_FOR_ME);
    assert_rc(tf_proto_request_verify(w.id[FX_C].sign_pk, w.id[FX_B].sign_pk, out.data, out.len,
                                      FX_EXPIRES + 1, FX_SKEW, &got),
              TF_E_EXPIRED);
    assert_rc(tf_proto_request_verify(w.id[FX_C].sign_pk, w.id[FX_B].sign_pk, out.data, out.len,
                                      FX_CREATED - FX_SKEW - 1, FX_SKEW, &got),
              TF_E_FROM_FUTURE);
    /* every truncation is refused */
    for (size_t n = 0; n < out.len; n++)
        assert_true(tf_proto_request_decode(out.data, n, &got) != TF_OK);
    /* a flipped body byte breaks the signature or the format */
    for (size_t i = 4; i < out.len - 64; i += 7) {
        uint8_t *c = fx_dup(out.data, out.len, 0);
        c[i] ^= 0x01;
        assert_true(tf_proto_request_verify(w.id[FX_C].sign_pk, w.id[FX_B].sign_pk, c, out.len,
                                            FX_NOW, FX_SKEW, &got) != TF_OK);
        free(c);
    }
    /* a request signed in another domain does not verify */
    struct tf_proto_buf other;
    fx_resign(&w.id[FX_B], TF_PROTO_DOMAIN_PROPOSAL, &out, &other);
    assert_rc(tf_proto_request_verify(w.id[FX_C].sign_pk, w.id[FX_B].sign_pk, other.data, other.len,
                                      FX_NOW, FX_SKEW, &got),
              TF_E_BAD_SIG);
    tf_proto_buf_free(&other);
    tf_proto_buf_free(&out);
    fx_world_deinit(&w);
}

static void test_request_sign_checks(void **state)
{
    (void)state;
    struct fx_world w;
    struct tf_proto_request q;
    struct tf_proto_buf out;
    fx_world_init(&w);
    make_request(&w, &q);
    assert_rc(tf_proto_request_sign(&w.id[FX_A], &q, &out, NULL), TF_E_KEY_MISMATCH);
    q.seeking = fx_str("Not A Tag");
    assert_rc(tf_proto_request_sign(&w.id[FX_B], &q, &out, NULL), TF_E_BAD_VALUE);
    make_request(&w, &q);
    q.expires = q.created;
    assert_rc(tf_proto_request_sign(&w.id[FX_B], &q, &out, NULL), TF_E_BAD_VALUE);
    q.expires = q.created + TF_PROTO_REQUEST_EXPIRES_MAX_S + 1;
    assert_rc(tf_proto_request_sign(&w.id[FX_B], &q, &out, NULL), TF_E_BAD_VALUE);
    q.expires = q.created + TF_PROTO_REQUEST_EXPIRES_MAX_S;
    assert_ok(tf_proto_request_sign(&w.id[FX_B], &q, &out, NULL));
    tf_proto_buf_free(&out);
    static char big[TF_PROTO_REQUEST_NOTE_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    q.note = fx_str(big);
    assert_rc(tf_proto_request_sign(&w.id[FX_B], &q, &out, NULL), TF_E_TOO_LONG);
    fx_world_deinit(&w);
}

static void test_request_close(void **state)
{
    (void)state;
    struct fx_world w;
    struct tf_proto_request_close c = {.action = TF_PROTO_REQUEST_ACTION_DECLINE, .time = FX_NOW},
                                  got;
    struct tf_proto_buf out;
    fx_world_init(&w);
    memset(c.id, 0x33, 32);
    assert_ok(tf_proto_request_close_sign(&w.id[FX_C], &c, &out));
    assert_ok(tf_proto_request_close_verify(w.id[FX_C].sign_pk, out.data, out.len, &got));
    assert_int_equal(got.action, TF_PROTO_REQUEST_ACTION_DECLINE);
    assert_memory_equal(got.id, c.id, 32);
    assert_int_equal(got.time, FX_NOW);
    assert_rc(tf_proto_request_close_verify(w.id[FX_B].sign_pk, out.data, out.len, &got),
              TF_E_BAD_SIG);
    for (size_t n = 0; n < out.len; n++)
        assert_true(tf_proto_request_close_verify(w.id[FX_C].sign_pk, out.data, n, &got) != TF_OK);
    tf_proto_buf_free(&out);
    c.action = (enum tf_proto_request_action)2;
    assert_rc(tf_proto_request_close_sign(&w.id[FX_C], &c, &out), TF_E_BAD_VALUE);
    fx_world_deinit(&w);
}

/* The proposal's eighth field: present only when set, and read back. */
static void test_proposal_request_field(void **state)
{
    (void)state;
    struct fx_world w;
    struct tf_proto_buf core, out;
    struct tf_proto_proposal p, got;
    struct tf_proto_intro_core c;
    uint8_t salt_a[32], salt_b[32];
    fx_world_init(&w);
    memset(salt_a, 0x11, 32);
    memset(salt_b, 0x22, 32);
    memset(&c, 0, sizeof c);
    memcpy(c.connector_pk, w.id[FX_C].sign_pk, 32);
    tf_proto_intro_commit(w.id[FX_A].sign_pk, salt_a, c.commit_a);
    tf_proto_intro_commit(w.id[FX_B].sign_pk, salt_b, c.commit_b);
    c.topic = fx_str("real-estate-law");
    c.created = FX_CREATED;
    c.expires = FX_EXPIRES;
    assert_ok(tf_proto_intro_core_encode(&c, &core));
    memset(&p, 0, sizeof p);
    tf_proto_intro_id(core.data, core.len, p.intro_id);
    p.core_bytes = fx_view(&core);
    p.side = TF_PROTO_SIDE_B;
    memcpy(p.salt, salt_b, 32);
    p.connector_card = fx_view(&w.card[FX_C]);
    p.about_other = fx_str("");
    p.note = fx_str("hi");
    for (int with = 0; with < 2; with++) {
        p.has_request = with;
        memset(p.request_id, 0x77, 32);
        assert_ok(tf_proto_proposal_sign(&w.id[FX_C], &p, &out));
        struct tf_proto_statement st;
        assert_ok(tf_proto_statement_parse(out.data, out.len, &st));
        assert_int_equal(st.body.ptr[0], 0x90 | (with ? 8 : 7)); /* fixarray of 7 or 8 */
        assert_ok(
            tf_proto_proposal_verify(w.id[FX_B].sign_pk, out.data, out.len, FX_NOW, FX_SKEW, &got));
        assert_int_equal(got.has_request, with);
        if (with)
            assert_memory_equal(got.request_id, p.request_id, 32);
        tf_proto_buf_free(&out);
    }
    tf_proto_buf_free(&core);
    fx_world_deinit(&w);
}

/* The machine: every (role, state, exists) x event x time. */
static const enum tf_proto_req_event EVENTS[] = {
    TF_PROTO_REQ_EV_CREATE,   TF_PROTO_REQ_EV_WITHDRAW, TF_PROTO_REQ_EV_WITHDRAWN,
    TF_PROTO_REQ_EV_DECLINE,  TF_PROTO_REQ_EV_DECLINED, TF_PROTO_REQ_EV_ANSWER,
    TF_PROTO_REQ_EV_ANSWERED, TF_PROTO_REQ_EV_TICK,     TF_PROTO_REQ_EV_REFUSED,
};
#define RETENTION 1000u
#define EXPIRES 5000u

static void test_machine_table(void **state)
{
    (void)state;
    /* Each close event: its role and the state it reaches from open. */
    static const struct {
        enum tf_proto_req_event ev;
        enum tf_proto_req_role role;
        enum tf_proto_req_state to;
        unsigned send;
    } CLOSES[] = {
        {TF_PROTO_REQ_EV_WITHDRAW, TF_PROTO_REQ_ROLE_SENT, TF_PROTO_REQ_WITHDRAWN,
         TF_PROTO_REQ_ACT_SEND_WITHDRAW},
        {TF_PROTO_REQ_EV_WITHDRAWN, TF_PROTO_REQ_ROLE_RECEIVED, TF_PROTO_REQ_WITHDRAWN, 0},
        {TF_PROTO_REQ_EV_DECLINE, TF_PROTO_REQ_ROLE_RECEIVED, TF_PROTO_REQ_DECLINED,
         TF_PROTO_REQ_ACT_SEND_DECLINE},
        {TF_PROTO_REQ_EV_DECLINED, TF_PROTO_REQ_ROLE_SENT, TF_PROTO_REQ_DECLINED, 0},
        {TF_PROTO_REQ_EV_ANSWER, TF_PROTO_REQ_ROLE_RECEIVED, TF_PROTO_REQ_ANSWERED, 0},
        {TF_PROTO_REQ_EV_ANSWERED, TF_PROTO_REQ_ROLE_SENT, TF_PROTO_REQ_ANSWERED, 0},
        {TF_PROTO_REQ_EV_REFUSED, TF_PROTO_REQ_ROLE_SENT, TF_PROTO_REQ_REFUSED, 0},
    };
    struct tf_proto_req_out out;
    for (int role = 0; role < 2; role++) {
        struct tf_proto_req s = {.role = (enum tf_proto_req_role)role, .expires = EXPIRES};
        /* create: only a sent request is sent */
        tf_proto_req_step(&s, TF_PROTO_REQ_EV_CREATE, 100, RETENTION, &out);
        assert_ok(out.rc);
        assert_true(out.next.exists && out.next.state == TF_PROTO_REQ_OPEN);
        assert_int_equal(out.actions & TF_PROTO_REQ_ACT_SEND_REQUEST,
                         role == 0 ? TF_PROTO_REQ_ACT_SEND_REQUEST : 0u);
        tf_proto_req_step(&s, TF_PROTO_REQ_EV_CREATE, EXPIRES + 1, RETENTION, &out);
        assert_rc(out.rc, TF_E_EXPIRED);
        /* before CREATE nothing else is allowed */
        for (size_t e = 1; e < sizeof EVENTS / sizeof EVENTS[0]; e++) {
            tf_proto_req_step(&s, EVENTS[e], 100, RETENTION, &out);
            assert_rc(out.rc, TF_E_BAD_STATE);
            assert_int_equal(out.actions, 0);
        }
        struct tf_proto_req open = s;
        open.exists = true;
        for (size_t i = 0; i < sizeof CLOSES / sizeof CLOSES[0]; i++) {
            tf_proto_req_step(&open, CLOSES[i].ev, 200, RETENTION, &out);
            if ((int)CLOSES[i].role != role) {
                assert_rc(out.rc, TF_E_BAD_STATE);
                assert_int_equal(out.actions, 0);
                continue;
            }
            assert_ok(out.rc);
            assert_int_equal(out.next.state, CLOSES[i].to);
            assert_int_equal(out.next.closed, 200);
            assert_int_equal(out.actions,
                             TF_PROTO_REQ_ACT_SAVE | TF_PROTO_REQ_ACT_EMIT | CLOSES[i].send);
            /* after the expiry: refused, nothing changes */
            tf_proto_req_step(&open, CLOSES[i].ev, EXPIRES + 1, RETENTION, &out);
            assert_rc(out.rc, TF_E_EXPIRED);
            assert_int_equal(out.actions, 0);
        }
        /* tick: expires after `expires`, not at it */
        tf_proto_req_step(&open, TF_PROTO_REQ_EV_TICK, EXPIRES, RETENTION, &out);
        assert_int_equal(out.actions, 0);
        assert_int_equal(tf_proto_req_deadline(&open, RETENTION), EXPIRES + 1);
        tf_proto_req_step(&open, TF_PROTO_REQ_EV_TICK, EXPIRES + 1, RETENTION, &out);
        assert_int_equal(out.next.state, TF_PROTO_REQ_EXPIRED);
        assert_int_equal(out.actions, TF_PROTO_REQ_ACT_SAVE | TF_PROTO_REQ_ACT_EMIT);
    }
}

/* Invariants over every closed state, role and event: a closed request
 * never opens again, is never answered, sends nothing, and is collected
 * exactly at closed + retention. */
static void test_machine_closed_states(void **state)
{
    (void)state;
    static const enum tf_proto_req_state CLOSED[] = {TF_PROTO_REQ_ANSWERED, TF_PROTO_REQ_DECLINED,
                                                     TF_PROTO_REQ_EXPIRED, TF_PROTO_REQ_WITHDRAWN,
                                                     TF_PROTO_REQ_REFUSED};
    struct tf_proto_req_out out;
    for (int role = 0; role < 2; role++)
        for (size_t c = 0; c < sizeof CLOSED / sizeof CLOSED[0]; c++)
            for (size_t e = 0; e < sizeof EVENTS / sizeof EVENTS[0]; e++) {
                struct tf_proto_req s = {.role = (enum tf_proto_req_role)role,
                                         .state = CLOSED[c],
                                         .exists = true,
                                         .expires = EXPIRES,
                                         .closed = 300};
                const uint64_t times[] = {301, 300 + RETENTION - 1, 300 + RETENTION};
                for (size_t t = 0; t < 3; t++) {
                    tf_proto_req_step(&s, EVENTS[e], times[t], RETENTION, &out);
                    assert_int_equal(out.next.state, CLOSED[c]);
                    assert_int_equal(out.actions & ~(unsigned)TF_PROTO_REQ_ACT_COLLECT, 0);
                    bool collect = EVENTS[e] == TF_PROTO_REQ_EV_TICK && t == 2;
                    assert_int_equal(out.actions == TF_PROTO_REQ_ACT_COLLECT, collect);
                    if (EVENTS[e] == TF_PROTO_REQ_EV_ANSWER ||
                        EVENTS[e] == TF_PROTO_REQ_EV_ANSWERED)
                        assert_true(out.rc != TF_OK); /* never answered twice, nor when closed */
                }
                assert_int_equal(tf_proto_req_deadline(&s, RETENTION), 300 + RETENTION);
            }
}

static void test_feedback(void **state)
{
    (void)state;
    struct fx_world w;
    struct tf_proto_feedback f = {.helped = true, .time = FX_NOW}, got;
    struct tf_proto_buf out;
    fx_world_init(&w);
    memset(f.intro_id, 0x44, 32);
    memcpy(f.connector_pk, w.id[FX_C].sign_pk, 32);
    f.note = fx_str("a great lawyer");
    assert_ok(tf_proto_feedback_sign(&w.id[FX_B], &f, &out));
    assert_ok(
        tf_proto_feedback_verify(w.id[FX_C].sign_pk, w.id[FX_B].sign_pk, out.data, out.len, &got));
    assert_true(got.helped);
    assert_memory_equal(got.intro_id, f.intro_id, 32);
    assert_int_equal(got.note.len, strlen("a great lawyer"));
    assert_rc(
        tf_proto_feedback_verify(w.id[FX_C].sign_pk, w.id[FX_A].sign_pk, out.data, out.len, &got),
        TF_E_BAD_SIG);
    assert_rc(
        tf_proto_feedback_verify(w.id[FX_D].sign_pk, w.id[FX_B].sign_pk, out.data, out.len, &got),
        TF_E_NOT_FOR_ME);
    for (size_t n = 0; n < out.len; n++)
        assert_true(tf_proto_feedback_verify(w.id[FX_C].sign_pk, w.id[FX_B].sign_pk, out.data, n,
                                             &got) != TF_OK);
    struct tf_proto_buf other;
    fx_resign(&w.id[FX_B], TF_PROTO_DOMAIN_REPLY, &out, &other);
    assert_rc(tf_proto_feedback_verify(w.id[FX_C].sign_pk, w.id[FX_B].sign_pk, other.data,
                                       other.len, &got),
              TF_E_BAD_SIG);
    tf_proto_buf_free(&other);
    tf_proto_buf_free(&out);
    static char big[TF_PROTO_FEEDBACK_NOTE_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    f.note = fx_str(big);
    assert_rc(tf_proto_feedback_sign(&w.id[FX_B], &f, &out), TF_E_TOO_LONG);
    fx_world_deinit(&w);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(tf_proto_req_state_name(TF_PROTO_REQ_OPEN), "open");
    assert_string_equal(tf_proto_req_state_name(TF_PROTO_REQ_ANSWERED), "answered");
    assert_string_equal(tf_proto_req_state_name(TF_PROTO_REQ_DECLINED), "declined");
    assert_string_equal(tf_proto_req_state_name(TF_PROTO_REQ_EXPIRED), "expired");
    assert_string_equal(tf_proto_req_state_name(TF_PROTO_REQ_WITHDRAWN), "withdrawn");
    assert_string_equal(tf_proto_req_state_name(TF_PROTO_REQ_REFUSED), "refused");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip), cmocka_unit_test(test_request_sign_checks),
        cmocka_unit_test(test_request_close),      cmocka_unit_test(test_proposal_request_field),
        cmocka_unit_test(test_machine_table),      cmocka_unit_test(test_machine_closed_states),
        cmocka_unit_test(test_state_names),        cmocka_unit_test(test_feedback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
