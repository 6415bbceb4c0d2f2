#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# proto/ is pure: no I/O, event loop, storage or socket headers may appear in it.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](uv\.h|lmdb\.h|stdio\.h|sys/socket\.h|netinet/[^>"]*|arpa/inet\.h|unistd\.h|fcntl\.h|time\.h|sys/time\.h|syslog\.h|pthread\.h)[>"]' proto/*.c proto/*.h || true)
if [ -n "$bad" ]; then
  echo "check-layering: proto/ must stay pure; forbidden includes:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "check-layering: proto/ is pure"
