/* SPDX-License-Identifier: MIT */
/*
 * The intro workflow as two pure state machines (docs/PROTOCOL.md §11, §12):
 * the connector's machine, one per intro it proposed, and the party's, one per
 * intro it was asked about.  ("im" abbreviates intro_machine in the names.)
 *
 * Each machine is one total function, step(state, input) -> (next, out).  It
 * reads no clock, draws no random number and does no I/O: the input carries
 * the time, the random close delay and the owner's policy decision, and every
 * received object has already been verified by the caller with proto/intro.h
 * (the input carries only the predicates the machine needs, such as "signed
 * after expires + skew" or "the materialisation check passed").  The output is
 * a fixed array of actions that the caller (node/) carries out, in order and
 * in one transaction with the new state, plus the ACK to give a received
 * envelope and the result of a verb.  A refusal is a result, never a failure:
 * step cannot fail.
 *
 * Contract with the caller:
 * - Step TICK when tf_proto_im_*_deadline(state) <= now (the sweep).  What is
 *   due also happens first, in the same step, when another input comes at or
 *   after the deadline: step(s, in) is then step(step(s, TICK), in), with the
 *   tick's actions first and one STORE.
 * - Carry out the actions in order; STORE means "save the record" (the state
 *   changed), and is always the last action.
 * - The state is only the protocol part of the record: notes, cards, the
 *   stored signed objects stay with node/'s record.
 *
 * The expected behaviour is also written out as two human-reviewed tables
 * (tf_proto_im_conn_table, tf_proto_im_party_table): for every state and every
 * event variant, the next state, the actions and the ACK.  The unit test
 * (tests/unit/test_intro_machine.c) runs every reachable state with every
 * variant through the step functions and checks each result against its
 * table row; tests/model/intro_mc prints the tables as docs/PROTOCOL.md §11
 * shows them (`intro_mc --table connector|party`).
 */
#ifndef TF_PROTO_INTRO_MACHINE_H
#define TF_PROTO_INTRO_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "No deadline" and "no close scheduled". */
#define TF_PROTO_IM_NEVER UINT64_MAX
/* At most this many actions come out of one step. */
#define TF_PROTO_IM_ACTIONS_MAX 8

/* ---- States ---------------------------------------------------------- */

enum tf_proto_im_conn_state {
    TF_PROTO_IM_CONN_ASKING,
    TF_PROTO_IM_CONN_INTRODUCED,
    TF_PROTO_IM_CONN_DECLINED,
    TF_PROTO_IM_CONN_WITHDRAWN,
    TF_PROTO_IM_CONN_EXPIRED,
};
#define TF_PROTO_IM_CONN_STATE_COUNT 5

/* The connector's view of one side. */
enum tf_proto_im_side_state {
    TF_PROTO_IM_SIDE_NOT_ASKED,
    TF_PROTO_IM_SIDE_PENDING,
    TF_PROTO_IM_SIDE_ACCEPTED,
    TF_PROTO_IM_SIDE_DECLINED,
};
#define TF_PROTO_IM_SIDE_STATE_COUNT 4

/* UNKNOWN is "no record": the intro was never proposed to this party (or its
 * proposal was refused).  It is never stored. */
enum tf_proto_im_party_state {
    TF_PROTO_IM_PARTY_UNKNOWN,
    TF_PROTO_IM_PARTY_PENDING,
    TF_PROTO_IM_PARTY_ACCEPTED,
    TF_PROTO_IM_PARTY_DECLINED,
    TF_PROTO_IM_PARTY_INTRODUCED,
    TF_PROTO_IM_PARTY_CLOSED,
    TF_PROTO_IM_PARTY_EXPIRED,
};
#define TF_PROTO_IM_PARTY_STATE_COUNT 7

/* The connector's record of one intro (protocol part). */
struct tf_proto_im_conn {
    enum tf_proto_im_conn_state state;
    enum tf_proto_im_side_state side[2]; /* [0] side a, [1] side b */
    uint64_t expires;                    /* core.expires */
    /* When the delayed close to each side leaves (R31), or NEVER. */
    uint64_t close_at[2];
};

/* The party's record of one intro (protocol part). */
struct tf_proto_im_party {
    enum tf_proto_im_party_state state;
    /* An acceptance was signed and stored (my_accept); kept after a
     * revocation, and never signed again (R26). */
    bool has_accept;
    uint64_t expires; /* core.expires, from the proposal */
    /* How long after expires an introduction can still arrive (the intro
     * envelopes' grace, 30 days): an accepted item expires then. */
    uint64_t grace;
};

/* ---- Inputs ---------------------------------------------------------- */

enum tf_proto_im_conn_event {
    TF_PROTO_IM_CONN_REPLY,    /* a reply from side `side`, verified (§8) */
    TF_PROTO_IM_CONN_WITHDRAW, /* the owner's verb */
    TF_PROTO_IM_CONN_TICK,     /* the sweep, at now */
};

struct tf_proto_im_conn_input {
    enum tf_proto_im_conn_event event;
    uint64_t now;
    /* REPLY */
    int side;            /* 0 a, 1 b: the sender's side */
    bool accept;         /* decision */
    bool same_as_stored; /* byte-identical to the reply already stored for side */
    bool signed_late;    /* reply.time > core.expires + skew (R29) */
    /* REPLY and WITHDRAW: the random delays of the closes this step may
     * schedule, to side a and to side b, each drawn on its own by the caller
     * from [close_delay_min, close_delay_max] (R31). */
    uint64_t close_delay[2];
};

enum tf_proto_im_policy {
    TF_PROTO_IM_POLICY_ASK,
    TF_PROTO_IM_POLICY_ACCEPT,
    TF_PROTO_IM_POLICY_DECLINE,
};

enum tf_proto_im_party_event {
    TF_PROTO_IM_PARTY_PROPOSAL,     /* verified except for expiry (§8 step 6) */
    TF_PROTO_IM_PARTY_ACCEPT,       /* the owner's verb */
    TF_PROTO_IM_PARTY_DECLINE,      /* the owner's verb */
    TF_PROTO_IM_PARTY_INTRODUCTION, /* from the intro's connector */
    TF_PROTO_IM_PARTY_CLOSE,        /* verified, from the intro's connector */
    TF_PROTO_IM_PARTY_TICK,         /* the sweep, at now */
};

struct tf_proto_im_party_input {
    enum tf_proto_im_party_event event;
    uint64_t now;
    /* PROPOSAL: core.expires, the envelopes' grace, and the owner's policy
     * decision for it. */
    uint64_t expires;
    uint64_t grace;
    enum tf_proto_im_policy policy;
    /* INTRODUCTION: the materialisation check (§8) passed against the stored
     * acceptance (so the embedded reply is byte-for-byte my_accept). */
    bool materialises;
    /* CLOSE of an unknown intro: this node refused that intro's proposal
     * lately (node/: a tombstone if the proposal verified, which survives a
     * restart, else a ring in memory). */
    bool refused;
};

/* ---- Outputs --------------------------------------------------------- */

enum tf_proto_im_ack {
    TF_PROTO_IM_ACK_NONE,   /* the input was not an envelope (verb, tick) */
    TF_PROTO_IM_ACK_OK,     /* ACK status 0 */
    TF_PROTO_IM_ACK_REFUSE, /* ACK status 1, reason 9 (invalid) */
    TF_PROTO_IM_ACK_LATE,   /* ACK status 1, reason 3 (expired): signed too late (R29) */
    TF_PROTO_IM_ACK_RETRY,  /* no ACK: the sender sends it again later */
};

/* The objects the machines send. */
enum tf_proto_im_msg {
    TF_PROTO_IM_MSG_PROPOSAL,     /* connector -> side */
    TF_PROTO_IM_MSG_INTRODUCTION, /* connector -> side */
    TF_PROTO_IM_MSG_CLOSE,        /* connector -> side */
    TF_PROTO_IM_MSG_DECLINE,      /* party -> connector: sign a decline, send */
};

/* The events written to the owner's event log (node/'s names). */
enum tf_proto_im_emit {
    TF_PROTO_IM_EMIT_INTRO_PROPOSED,
    TF_PROTO_IM_EMIT_INTRO_REPLIED,
    TF_PROTO_IM_EMIT_INTRO_INTRODUCED,
    TF_PROTO_IM_EMIT_INTRO_DECLINED,
    TF_PROTO_IM_EMIT_INTRO_WITHDRAWN,
    TF_PROTO_IM_EMIT_INTRO_EXPIRED,
    TF_PROTO_IM_EMIT_INBOX_RECEIVED,
    TF_PROTO_IM_EMIT_INBOX_ACCEPTED,
    TF_PROTO_IM_EMIT_INBOX_DECLINED,
    TF_PROTO_IM_EMIT_INBOX_INTRODUCED,
    TF_PROTO_IM_EMIT_INBOX_LATE_REVOCATION,
    TF_PROTO_IM_EMIT_INBOX_CLOSED,
    TF_PROTO_IM_EMIT_INBOX_EXPIRED,
};
#define TF_PROTO_IM_EMIT_COUNT 13

enum tf_proto_im_act_kind {
    /* Save the record: the state changed.  Always last. */
    TF_PROTO_IM_ACT_STORE,
    /* Connector: keep side's signed reply exactly as received. */
    TF_PROTO_IM_ACT_STORE_REPLY,
    /* Send msg to side (connector) or to the connector (party), not before
     * not_before. */
    TF_PROTO_IM_ACT_SEND,
    /* Connector: a close to side is due at not_before (the record's
     * close_at; the caller indexes the deadline). */
    TF_PROTO_IM_ACT_SCHEDULE_CLOSE,
    /* Connector: the delayed close to side is dropped (the record's close_at
     * cleared): side declined, and knows the intro is over. */
    TF_PROTO_IM_ACT_DROP_CLOSE,
    /* Party: sign an acceptance, store it as my_accept, send it. */
    TF_PROTO_IM_ACT_SIGN_ACCEPT,
    /* Party: send the stored acceptance bytes again (R26). */
    TF_PROTO_IM_ACT_RESEND_ACCEPT,
    /* Party: add the other side as a contact (the materialisation). */
    TF_PROTO_IM_ACT_ADD_CONTACT,
    /* Party: remember (node/: as a tombstone within the budgets, else in
     * memory only) that this intro's proposal was
     * refused (so that its close is acknowledged). */
    TF_PROTO_IM_ACT_REMEMBER_REFUSED,
    /* Write event to the owner's event log. */
    TF_PROTO_IM_ACT_EMIT,
};

struct tf_proto_im_action {
    enum tf_proto_im_act_kind kind;
    enum tf_proto_im_msg msg;   /* SEND */
    int side;                   /* connector's STORE_REPLY, SEND, SCHEDULE_CLOSE, DROP_CLOSE */
    enum tf_proto_im_emit emit; /* EMIT */
    uint64_t not_before;        /* SEND, SCHEDULE_CLOSE */
};

struct tf_proto_im_out {
    enum tf_proto_im_ack ack;
    int verb_rc;     /* verbs: TF_OK, TF_E_BAD_STATE or TF_E_NOT_FOUND */
    const char *why; /* a refusal's reason for the owner or the log (static), or NULL */
    size_t n;
    struct tf_proto_im_action a[TF_PROTO_IM_ACTIONS_MAX];
};

/* ---- Steps ----------------------------------------------------------- */

/* The connector's new intro: both sides asked (parallel) or side a only
 * (sequential).  Fills *out with the sends, the event and STORE. */
void tf_proto_im_conn_propose(bool sequential, uint64_t expires, struct tf_proto_im_conn *next,
                              struct tf_proto_im_out *out);

/* One transition (preceded by the due tick, if any).  s, in, next and out
 * are borrowed; next may not alias s. */
void tf_proto_im_conn_step(const struct tf_proto_im_conn *s,
                           const struct tf_proto_im_conn_input *in, struct tf_proto_im_conn *next,
                           struct tf_proto_im_out *out);

/* The first time at which a TICK changes s, or TF_PROTO_IM_NEVER. */
uint64_t tf_proto_im_conn_deadline(const struct tf_proto_im_conn *s);

void tf_proto_im_party_step(const struct tf_proto_im_party *s,
                            const struct tf_proto_im_party_input *in,
                            struct tf_proto_im_party *next, struct tf_proto_im_out *out);

uint64_t tf_proto_im_party_deadline(const struct tf_proto_im_party *s);

/* ---- Names (static strings, "?" for out-of-range values) -------------- */

const char *tf_proto_im_conn_state_name(enum tf_proto_im_conn_state s);
const char *tf_proto_im_side_state_name(enum tf_proto_im_side_state s);
const char *tf_proto_im_party_state_name(enum tf_proto_im_party_state s);
const char *tf_proto_im_msg_name(enum tf_proto_im_msg m);
const char *tf_proto_im_emit_name(enum tf_proto_im_emit e);
const char *tf_proto_im_ack_name(enum tf_proto_im_ack a);
const char *tf_proto_im_act_kind_name(enum tf_proto_im_act_kind k);

/* ---- The tables ------------------------------------------------------ */

/* Event variants: an input, classified by what decides its outcome. */
enum tf_proto_im_conn_variant {
    TF_PROTO_IM_CV_ACCEPT,       /* an acceptance from a side that has none stored */
    TF_PROTO_IM_CV_ACCEPT_SAME,  /* the stored acceptance again, byte for byte */
    TF_PROTO_IM_CV_ACCEPT_OTHER, /* a different acceptance from a side that has one */
    TF_PROTO_IM_CV_ACCEPT_LATE,  /* an acceptance signed after expires + skew */
    TF_PROTO_IM_CV_DECLINE,      /* a decline (or a revocation) */
    TF_PROTO_IM_CV_DECLINE_LATE, /* a decline signed after expires + skew */
    TF_PROTO_IM_CV_WITHDRAW,
    TF_PROTO_IM_CV_TICK_IDLE,    /* nothing is due */
    TF_PROTO_IM_CV_TICK_EXPIRY,  /* asking, now > expires */
    TF_PROTO_IM_CV_TICK_CLOSE_A, /* the delayed close to a is due */
    TF_PROTO_IM_CV_TICK_CLOSE_B,
    TF_PROTO_IM_CV_TICK_CLOSE_AB,
};
#define TF_PROTO_IM_CV_COUNT 12

enum tf_proto_im_party_variant {
    TF_PROTO_IM_PV_PROPOSAL_ASK,     /* a new proposal; the policy leaves it to the owner */
    TF_PROTO_IM_PV_PROPOSAL_ACCEPT,  /* a new proposal the policy accepts */
    TF_PROTO_IM_PV_PROPOSAL_DECLINE, /* a new proposal the policy declines */
    TF_PROTO_IM_PV_PROPOSAL_EXPIRED, /* a new proposal, now > expires */
    TF_PROTO_IM_PV_PROPOSAL_KNOWN,   /* a proposal for a known intro */
    TF_PROTO_IM_PV_ACCEPT,
    TF_PROTO_IM_PV_ACCEPT_LATE, /* the owner accepts after expires */
    TF_PROTO_IM_PV_DECLINE,
    TF_PROTO_IM_PV_DECLINE_LATE,  /* the owner declines after expires */
    TF_PROTO_IM_PV_INTRO_OK,      /* an introduction that passes the materialisation check */
    TF_PROTO_IM_PV_INTRO_BAD,     /* one that fails it (or there is no stored acceptance) */
    TF_PROTO_IM_PV_CLOSE,         /* a close (of an unknown intro: not refused lately) */
    TF_PROTO_IM_PV_CLOSE_REFUSED, /* a close of an unknown intro whose proposal was refused */
    TF_PROTO_IM_PV_TICK_IDLE,
    TF_PROTO_IM_PV_TICK_EXPIRY, /* pending, now > expires; accepted, now > expires + grace */
};
#define TF_PROTO_IM_PV_COUNT 15

const char *tf_proto_im_conn_variant_name(enum tf_proto_im_conn_variant v);
const char *tf_proto_im_party_variant_name(enum tf_proto_im_party_variant v);

/* The variant of an input in a state where nothing is due at in->now (else
 * classify the input in the state after the tick).  For replies, side x is
 * the replying side (ticks and withdraw: x = a). */
enum tf_proto_im_conn_variant tf_proto_im_conn_classify(const struct tf_proto_im_conn *s,
                                                        const struct tf_proto_im_conn_input *in);
enum tf_proto_im_party_variant tf_proto_im_party_classify(const struct tf_proto_im_party *s,
                                                          const struct tf_proto_im_party_input *in);

/* Table cells.  TF_PROTO_IM_ANY in a key matches every value; TF_PROTO_IM_SAME
 * in a result means "unchanged". */
#define TF_PROTO_IM_ANY 0xff
#define TF_PROTO_IM_SAME 0xfe
/* In a state key: the intro is over (connector: declined, withdrawn or
 * expired; party: introduced, closed or expired). */
#define TF_PROTO_IM_OVER 0xfd
/* Sides in expected actions, relative to the input: x is the replying side
 * (a for withdraw and ticks), o the other one. */
enum tf_proto_im_rel {
    TF_PROTO_IM_REL_X,
    TF_PROTO_IM_REL_O,
    TF_PROTO_IM_REL_A,
    TF_PROTO_IM_REL_B,
    TF_PROTO_IM_REL_NONE,
};

/* An expected action.  Times are not compared: a SEND leaves at now, and a
 * SCHEDULE_CLOSE at now + close_delay (the test checks both). */
struct tf_proto_im_expect {
    uint8_t kind; /* enum tf_proto_im_act_kind */
    uint8_t msg;  /* enum tf_proto_im_msg (SEND) */
    uint8_t side; /* enum tf_proto_im_rel */
    uint8_t emit; /* enum tf_proto_im_emit (EMIT) */
};

struct tf_proto_im_conn_row {
    /* key: the first row that matches decides */
    uint8_t state, x, o; /* conn state, side x's and side o's state (or ANY) */
    uint8_t wait;        /* a delayed close to x is waiting: 0/1 (or ANY) */
    uint8_t variant;     /* enum tf_proto_im_conn_variant */
    /* result */
    uint8_t next, next_x, next_o; /* or SAME */
    uint8_t ack;                  /* enum tf_proto_im_ack */
    int verb_rc;
    uint8_t n;
    struct tf_proto_im_expect act[TF_PROTO_IM_ACTIONS_MAX];
    const char *note; /* why, with the rule number */
};

struct tf_proto_im_party_row {
    uint8_t state, has_accept; /* party state, 0/1 (or ANY) */
    uint8_t variant;           /* enum tf_proto_im_party_variant */
    uint8_t next, next_has_accept;
    uint8_t ack;
    int verb_rc;
    uint8_t n;
    struct tf_proto_im_expect act[TF_PROTO_IM_ACTIONS_MAX];
    const char *note;
};

extern const struct tf_proto_im_conn_row tf_proto_im_conn_table[];
extern const size_t tf_proto_im_conn_table_len;
extern const struct tf_proto_im_party_row tf_proto_im_party_table[];
extern const size_t tf_proto_im_party_table_len;

/* The first row that matches, or -1. */
int tf_proto_im_conn_row_find(const struct tf_proto_im_conn *s,
                              const struct tf_proto_im_conn_input *in);
int tf_proto_im_party_row_find(const struct tf_proto_im_party *s,
                               const struct tf_proto_im_party_input *in);

#endif
