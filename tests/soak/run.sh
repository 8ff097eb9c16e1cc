#!/usr/bin/env bash
# Soak (not in CI): mixed traffic at the tiny model for a while, then the verdict.
#   tests/soak/run.sh [--minutes N] [--sample-seconds S] [--warmup-minutes W] [--concurrency C] [--out FILE]
# Defaults: 60 minutes, a sample every 60 s, warm-up 10 minutes (1 when the run is under 30),
# 3 clients (about one core in all with the server's single kernel thread).
# Traffic (tests/soak/traffic.mjs): short and long prompts, streams read to the end and streams
# cancelled after a random number of chunks, chat, n + logprobs, and requests that must fail (bad
# JSON, limits, unknown routes, oversize bodies, malformed heads). Every sample is taken with the
# traffic paused and drained, so the RSS, open fds and threads of the server process compare.
# Verdict (exit 1 on a failure): after warm-up no sample beyond 5% over the warm-up one; zero
# 5xx and zero transport errors; the engine requests the client caused equal the server's
# pagedserve_request_success_total, and the 200s/4xx it counted equal what it sent.
# Environment: PAGEDSERVE_BIN (default build/server/pagedserve), PAGEDSERVE_MODEL (models/tiny-qwen3).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export PAGEDSERVE_BIN=${PAGEDSERVE_BIN:-$root/build/server/pagedserve}
export PAGEDSERVE_MODEL=${PAGEDSERVE_MODEL:-$root/models/tiny-qwen3}
[ -x "$PAGEDSERVE_BIN" ] || { echo "soak: no server binary at $PAGEDSERVE_BIN (set PAGEDSERVE_BIN)" >&2; exit 2; }
[ -f "$PAGEDSERVE_MODEL/config.json" ] || { echo "soak: no model at $PAGEDSERVE_MODEL (scripts/prepare-test-data)" >&2; exit 2; }
"$root/tests/integration/client/install.sh"  # the server start/stop helpers live beside the integration client
exec nice -n 10 node "$root/tests/soak/soak.mjs" "$@"
