/* SPDX-License-Identifier: MIT */
/* Helpers shared by several node/ modules and nothing outside node/. */
#ifndef TF_NODE_INTERNAL_H
#define TF_NODE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "proto/mp.h"

/* Builds the watch frame body {"event": {"seq": seq, <record pairs>}} from a
 * stored event record (a msgpack fixmap).  *out owned by the caller. */
int tf_node__ctl_event_frame(uint64_t seq, const uint8_t *rec, size_t len,
                             struct tf_proto_buf *out);

#endif
