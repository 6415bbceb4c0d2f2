/* SPDX-License-Identifier: MIT */
/*
 * Independent re-encoders for the fuzz targets' round-trip properties.
 *
 * proto/ only encodes cards, replies, proposals and introductions while
 * signing them, which needs the signer's secret key.  These functions lay out
 * the same bodies with the public writer (mp.h), following the layouts in
 * card.h, intro.h and envelope.h, so a target can check that whatever a
 * decoder accepts re-encodes to exactly the bytes it read: the canonical codec
 * admits one encoding per value.  Each writes into an initialised writer;
 * errors are reported by tf_proto_mp_writer_finish.
 *
 * The check_* helpers touch every byte of every view of a decoded object (so
 * ASan sees views that overrun) and assert that each view lies inside buf.
 */
#ifndef TF_TESTS_FUZZ_REENCODE_H
#define TF_TESTS_FUZZ_REENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/card.h"
#include "proto/envelope.h"
#include "proto/intro.h"
#include "proto/mp.h"
#include "proto/statement.h"

void tf_fuzz_encode_statement(struct tf_proto_mp_writer *w, const struct tf_proto_statement *st);
void tf_fuzz_encode_card_body(struct tf_proto_mp_writer *w, const struct tf_proto_card *c);
void tf_fuzz_encode_proposal_body(struct tf_proto_mp_writer *w, const struct tf_proto_proposal *p);
void tf_fuzz_encode_reply_body(struct tf_proto_mp_writer *w, const struct tf_proto_reply *r);
void tf_fuzz_encode_introduction_body(struct tf_proto_mp_writer *w,
                                      const struct tf_proto_introduction *in);
void tf_fuzz_encode_envelope(struct tf_proto_mp_writer *w, const struct tf_proto_envelope *e);

/* Touches every view of c and asserts each lies inside buf[0..len). */
void tf_fuzz_check_card_views(const struct tf_proto_card *c, const uint8_t *buf, size_t len);

/* Asserts that the statement's views lie inside buf, touches them, and that
 * re-encoding it gives buf back exactly. */
void tf_fuzz_check_statement(const struct tf_proto_statement *st, const uint8_t *buf, size_t len);

/* Asserts a decoded core re-encodes to exactly core_bytes and touches its
 * topic, which must lie inside core_bytes. */
void tf_fuzz_check_core(const struct tf_proto_intro_core *core, struct tf_proto_bytes core_bytes);

#endif
