#!/usr/bin/env bash
# Writes models/tiny-qwen3 and models/tiny-llama (idempotent, deterministic): the same step
# scripts/prepare-test-data runs as tools/fetch-zz-tiny-models.sh. BUILD_DIR as there.
exec "$(dirname "$0")/fetch-zz-tiny-models.sh" "$@"
