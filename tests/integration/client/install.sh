#!/usr/bin/env bash
# Installs the integration tests' npm client (the official `openai` package, version pinned in
# package.json and package-lock.json) into tests/integration/client/node_modules with `npm ci`.
# Idempotent: skips the install when node_modules already matches the lock file.
# Called by scripts/prepare-test-data through tools/fetch-*.sh-style steps (see the report/README).
set -euo pipefail
cd "$(dirname "$0")"
# CTest may start several suites at once: one npm ci at a time (npm ci deletes node_modules).
exec 9>"${TMPDIR:-/tmp}/pagedserve-integration-npm.lock"
flock 9
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f node_modules/openai/package.json ]; then
  exit 0
fi
echo "integration client: npm ci (openai $(node -p "require('./package.json').dependencies.openai"))"
npm ci --no-audit --no-fund --silent
echo "$want" > "$stamp"
