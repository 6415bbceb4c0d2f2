/* SPDX-License-Identifier: MIT */
#include "reencode.h"

#include "fuzz.h"

void tf_fuzz_encode_statement(struct tf_proto_mp_writer *w, const struct tf_proto_statement *st)
{
    tf_proto_mp_write_array(w, 2);
    tf_proto_mp_write_bin(w, st->body.ptr, st->body.len);
    tf_proto_mp_write_bin(w, st->sig, TF_PROTO_SIG_LEN);
}

static void write_views(struct tf_proto_mp_writer *w, const struct tf_proto_bytes *v, size_t n)
{
    FUZZ_ASSERT(n <= UINT32_MAX);
    tf_proto_mp_write_array(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        tf_proto_mp_write_text(w, v[i]);
}

/* card.h: a map with integer keys 1..10 in order. */
void tf_fuzz_encode_card_body(struct tf_proto_mp_writer *w, const struct tf_proto_card *c)
{
    tf_proto_mp_write_map(w, 10);
    tf_proto_mp_write_uint(w, 1);
    tf_proto_mp_write_uint(w, TF_PROTO_CARD_VERSION);
    tf_proto_mp_write_uint(w, 2);
    tf_proto_mp_write_bin(w, c->sign_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(w, 3);
    tf_proto_mp_write_bin(w, c->noise_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(w, 4);
    tf_proto_mp_write_bin(w, c->box_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(w, 5);
    tf_proto_mp_write_text(w, c->name);
    tf_proto_mp_write_uint(w, 6);
    write_views(w, c->addrs, c->n_addrs);
    tf_proto_mp_write_uint(w, 7);
    write_views(w, c->offers, c->n_offers);
    tf_proto_mp_write_uint(w, 8);
    write_views(w, c->seeks, c->n_seeks);
    tf_proto_mp_write_uint(w, 9);
    tf_proto_mp_write_uint(w, c->issued);
    tf_proto_mp_write_uint(w, 10);
    tf_proto_mp_write_uint(w, c->seq);
}

void tf_fuzz_encode_proposal_body(struct tf_proto_mp_writer *w, const struct tf_proto_proposal *p)
{
    tf_proto_mp_write_array(w, 7);
    tf_proto_mp_write_bin(w, p->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_bin(w, p->core_bytes.ptr, p->core_bytes.len);
    tf_proto_mp_write_uint(w, (uint64_t)p->side);
    tf_proto_mp_write_bin(w, p->salt, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(w, p->connector_card.ptr, p->connector_card.len);
    tf_proto_mp_write_text(w, p->about_other);
    tf_proto_mp_write_text(w, p->note);
}

void tf_fuzz_encode_reply_body(struct tf_proto_mp_writer *w, const struct tf_proto_reply *r)
{
    tf_proto_mp_write_array(w, 7);
    tf_proto_mp_write_bin(w, r->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_uint(w, (uint64_t)r->side);
    tf_proto_mp_write_uint(w, (uint64_t)r->decision);
    if (r->decision == TF_PROTO_DECISION_ACCEPT) {
        tf_proto_mp_write_bin(w, r->card.ptr, r->card.len);
        tf_proto_mp_write_text(w, r->note);
        tf_proto_mp_write_nil(w);
    } else {
        tf_proto_mp_write_nil(w);
        tf_proto_mp_write_nil(w);
        tf_proto_mp_write_text(w, r->reason);
    }
    tf_proto_mp_write_uint(w, r->time);
}

void tf_fuzz_encode_introduction_body(struct tf_proto_mp_writer *w,
                                      const struct tf_proto_introduction *in)
{
    tf_proto_mp_write_array(w, 8);
    tf_proto_mp_write_bin(w, in->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_bin(w, in->core_bytes.ptr, in->core_bytes.len);
    tf_proto_mp_write_bin(w, in->salt_a, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(w, in->salt_b, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(w, in->reply_a.ptr, in->reply_a.len);
    tf_proto_mp_write_bin(w, in->reply_b.ptr, in->reply_b.len);
    tf_proto_mp_write_text(w, in->note);
    tf_proto_mp_write_uint(w, in->time);
}

void tf_fuzz_encode_envelope(struct tf_proto_mp_writer *w, const struct tf_proto_envelope *e)
{
    tf_proto_mp_write_array(w, 5);
    tf_proto_mp_write_uint(w, TF_PROTO_ENVELOPE_VERSION);
    tf_proto_mp_write_bin(w, e->msg_id, TF_PROTO_MSG_ID_LEN);
    tf_proto_mp_write_bin(w, e->to_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(w, e->expires);
    tf_proto_mp_write_bin(w, e->sealed.ptr, e->sealed.len);
}

static void check_view(struct tf_proto_bytes v, const uint8_t *buf, size_t len)
{
    FUZZ_ASSERT(fuzz_view_within(v, buf, len));
    fuzz_touch_view(v);
}

void tf_fuzz_check_card_views(const struct tf_proto_card *c, const uint8_t *buf, size_t len)
{
    FUZZ_ASSERT(c->name.len >= 1 && c->name.len <= TF_PROTO_CARD_NAME_MAX);
    FUZZ_ASSERT(c->n_addrs <= TF_PROTO_CARD_ADDRS_MAX);
    FUZZ_ASSERT(c->n_offers <= TF_PROTO_CARD_TAGS_MAX);
    FUZZ_ASSERT(c->n_seeks <= TF_PROTO_CARD_TAGS_MAX);
    check_view(c->name, buf, len);
    for (size_t i = 0; i < c->n_addrs; i++) {
        check_view(c->addrs[i], buf, len);
        FUZZ_ASSERT(tf_proto_addr_is_valid(c->addrs[i].ptr, c->addrs[i].len));
    }
    for (size_t i = 0; i < c->n_offers; i++) {
        check_view(c->offers[i], buf, len);
        FUZZ_ASSERT(tf_proto_tag_is_valid(c->offers[i].ptr, c->offers[i].len));
    }
    for (size_t i = 0; i < c->n_seeks; i++) {
        check_view(c->seeks[i], buf, len);
        FUZZ_ASSERT(tf_proto_tag_is_valid(c->seeks[i].ptr, c->seeks[i].len));
    }
}

void tf_fuzz_check_statement(const struct tf_proto_statement *st, const uint8_t *buf, size_t len)
{
    struct tf_proto_bytes sig = {st->sig, TF_PROTO_SIG_LEN};
    FUZZ_ASSERT(st->body.len >= 1 && st->body.len <= TF_PROTO_BODY_MAX);
    check_view(st->body, buf, len);
    check_view(sig, buf, len);
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_fuzz_encode_statement(&w, st);
    FUZZ_ASSERT(fuzz_writer_equals(&w, buf, len));
}

void tf_fuzz_check_core(const struct tf_proto_intro_core *core, struct tf_proto_bytes core_bytes)
{
    check_view(core->topic, core_bytes.ptr, core_bytes.len);
    FUZZ_ASSERT(tf_proto_tag_is_valid(core->topic.ptr, core->topic.len));
    FUZZ_ASSERT(core->expires > core->created);
    struct tf_proto_buf again = {NULL, 0};
    FUZZ_ASSERT(tf_proto_intro_core_encode(core, &again) == TF_OK);
    FUZZ_ASSERT(fuzz_view_eq(core_bytes, again.data, again.len));
    tf_proto_buf_free(&again);
}
