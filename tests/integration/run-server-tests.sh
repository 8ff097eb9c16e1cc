#!/usr/bin/env bash
# Runs one integration suite (tests/integration/client/<suite>.test.mjs) against the real binary.
#   run-server-tests.sh BUILD/server/pagedserve completions|errors|load
# Environment: PAGEDSERVE_TEST_MODEL overrides the model directory (default models/tiny-qwen3);
# PAGEDSERVE_LOAD_FORMAT=dummy serves a config+tokenizer-only directory with seeded weights.
set -euo pipefail
bin=$(realpath "$1")
suite=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
model=${PAGEDSERVE_TEST_MODEL:-$root/models/tiny-qwen3}
if [ ! -f "$model/config.json" ]; then
  echo "SKIP: no model at $model (scripts/prepare-test-data makes models/tiny-qwen3)"
  exit 77
fi
"$root/tests/integration/client/install.sh"
cd "$root/tests/integration/client"
PAGEDSERVE_BIN=$bin PAGEDSERVE_MODEL=$(realpath "$model") exec node --test --test-concurrency=1 "$suite.test.mjs"
