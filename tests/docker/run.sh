#!/usr/bin/env bash
# The CPU container image, built and run for real (issue 16):
#   1. podman (+ runc, mmdebstrap) and the host's test tools present; the tiny model made if missing
#   2. docker/build cpu (makes the debian:bookworm base with mmdebstrap when it cannot be pulled)
#   3. the image: its size, no compiler / build tree / test data / model inside, non-root, HEALTHCHECK
#   4. runs it with models/tiny-qwen3 mounted read-only, published on 127.0.0.1; time to /health 200
#   5. a completion and a stream with curl, then with the openai npm client; the HEALTHCHECK itself
#   6. a real Prometheus (Debian's binary) scrapes the container's /metrics; its HTTP API is queried
#      until the TTFT histogram and the token counters are there
#   7. SIGTERM (podman stop) mid-stream: the stream completes, the container exits 0 at once
# Prints each step's time; exits non-zero on the first failure. Needs root (podman, apt-get).
#   IMAGE=pagedserve:cpu  SKIP_BUILD=1 (use the image as it is)  KEEP=1 (leave the container up)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
image=${IMAGE:-pagedserve:cpu}
model_dir=$repo/models/tiny-qwen3
model_name=tiny-qwen3
name=pagedserve-docker-test-$$
work=$(mktemp -d)
prom_pid=""
t0=$SECONDS
step_start=$SECONDS
current=""

log() { echo "[docker-test] $*"; }
step() {
  [ -n "$current" ] && log "ok   $current ($((SECONDS - step_start)) s)"
  current=$1
  step_start=$SECONDS
  log "---- $current"
}
fail() {
  log "FAIL $current: $*" >&2
  if podman container exists "$name" 2>/dev/null; then
    log "container log (last 40 lines):" >&2
    podman logs --tail 40 "$name" >&2 || true
  fi
  exit 1
}
cleanup() {
  local rc=$?
  [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  if [ "${KEEP:-0}" != 1 ]; then
    podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  [ $rc -eq 0 ] && log "PASS in $((SECONDS - t0)) s" || log "FAILED (exit $rc) after $((SECONDS - t0)) s"
}
trap cleanup EXIT
# Without systemd podman cannot arm its healthcheck timers and says so on every run/stop; the check
# itself still runs on demand (`podman healthcheck run`, step 5), so that one message is dropped.
podman() { command podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# json EXPR: evaluates a JavaScript expression over stdin parsed as JSON (`j`).
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(eval(process.argv[1]))})' "$1"; }

step "prerequisites"
missing=()
# type -P: the podman() wrapper above would satisfy `command -v podman` without podman installed.
for tool in podman runc mmdebstrap; do type -P "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} buildah"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" buildah >/dev/null
fi
if [ -z "${CONTAINERS_CONF:-}" ] && [ ! -e /etc/containers/containers.conf ]; then
  export CONTAINERS_CONF=$repo/docker/containers.conf   # runc + explicit ulimits (see the file)
fi
command -v prometheus >/dev/null && command -v node >/dev/null && command -v curl >/dev/null || scripts/setup
[ -f "$model_dir/model.safetensors" ] || scripts/prepare-test-data
tests/integration/client/install.sh
log "$(podman --version), runtime $(podman info --format '{{.Host.OCIRuntime.Name}}'), $(prometheus --version 2>&1 | head -1)"

step "build $image"
if [ "${SKIP_BUILD:-0}" = 1 ]; then
  podman image exists "$image" || fail "SKIP_BUILD=1 but $image does not exist"
else
  nice -n 10 docker/build cpu >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "docker/build cpu failed"; }
  grep -E '^(make-base-image|build):' "$work/build.log"
fi

step "inspect the image"
size=$(podman image inspect --format '{{.Size}}' "$image")
log "image size: $(numfmt --to=iec --format=%.1f "$size") ($size bytes)"
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ] || fail "runs as root (User '$user')"
health=$(podman image inspect --format '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{end}}' "$image")
[ -n "$health" ] || fail "no HEALTHCHECK (built without --format docker?)"
log "user $user, healthcheck $health"
inside=$(podman run --rm --entrypoint bash "$image" -c '
  for t in cc gcc g++ c++ clang cmake ninja make nvcc as ld; do command -v $t >/dev/null && echo "tool:$t"; done
  for d in /src /build /models /root/.npm /opt/pagedserve/build; do [ -e $d ] && echo "path:$d"; done
  find / -xdev \( -name "*.safetensors" -o -name tokenizer.json -o -name CMakeCache.txt -o -name "*.o" -o -name "*.a" \
    -o -name "*.pem" -o -name "id_rsa*" -o -name ".env" -o -path "*/tests/data*" \) 2>/dev/null | grep -v "^/etc/ssl" | sed "s/^/file:/"
  id -u') || fail "cannot run bash in the image"
uid=$(tail -n 1 <<<"$inside")
bad=$(sed '$d' <<<"$inside")
[ -z "$bad" ] || fail "found in the image: $(tr '\n' ' ' <<<"$bad")"
[ "$uid" != 0 ] || fail "the default user is root"
log "no compiler, build tree, test data, model or key file inside; uid $uid"

step "start the container, wait for /health"
port=$(free_port)
started=$(date +%s.%N)
podman run -d --name "$name" -p "127.0.0.1:$port:8000" -v "$model_dir:/models:ro" "$image" \
  --backend cpu --served-model-name "$model_name" --threads 2 --kv-cache-memory 64MiB >/dev/null \
  || fail "podman run failed"
base=http://127.0.0.1:$port
ready=""
for _ in $(seq 600); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ]; then
    ready=$(date +%s.%N)
    break
  fi
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || fail "the container exited"
  sleep 0.1
done
[ -n "$ready" ] || fail "/health not 200 within 60 s"
log "start-up (podman run to /health 200): $(awk -v a="$started" -v b="$ready" 'BEGIN{printf "%.2f s", b-a}')"
podman logs "$name" 2>&1 | grep -m1 'listening on' || true

step "curl: completion, stream, models"
out=$(curl -sf "$base/v1/completions" -H 'Content-Type: application/json' \
  -d "{\"model\":\"$model_name\",\"prompt\":\"Paged attention is\",\"max_tokens\":8,\"temperature\":0}") \
  || fail "completion request failed"
echo "$out"
[ "$(json 'j.usage.completion_tokens' <<<"$out")" = 8 ] || fail "completion: not 8 tokens"
curl -sfN "$base/v1/completions" -H 'Content-Type: application/json' \
  -d "{\"model\":\"$model_name\",\"prompt\":\"Hi\",\"max_tokens\":4,\"temperature\":0,\"stream\":true}" >"$work/stream.txt" \
  || fail "stream request failed"
head -c 600 "$work/stream.txt"
echo
[ "$(grep -c '^data: {' "$work/stream.txt")" -ge 4 ] && tail -n 2 "$work/stream.txt" | grep -q '^data: \[DONE\]' \
  || fail "stream: fewer than 4 chunks or no [DONE]"
[ "$(curl -sf "$base/v1/models" | json 'j.data[0].id')" = "$model_name" ] || fail "/v1/models"

step "openai npm client: completion, stream"
node tests/docker/openai-client.mjs "$base/v1" "$model_name" || fail "openai client"

step "HEALTHCHECK command"
podman healthcheck run "$name" || fail "podman healthcheck run: unhealthy"
log "healthy: $(podman inspect --format '{{.State.Health.Status}}' "$name" 2>/dev/null || podman inspect --format '{{.State.Healthcheck.Status}}' "$name")"

step "Prometheus scrapes /metrics"
prom_port=$(free_port)
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: pagedserve
    static_configs:
      - targets: ["127.0.0.1:$port"]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!
prom=http://127.0.0.1:$prom_port
# query PROMQL: the first result's value, or nothing
query() { curl -sf --get "$prom/api/v1/query" --data-urlencode "query=$1" | json 'j.data.result.length ? j.data.result[0].value[1] : ""'; }
want_up='up{job="pagedserve"}'
want_ttft='sum({__name__=~"pagedserve[:_]time_to_first_token_seconds_count"})'
want_buckets='count({__name__=~"pagedserve[:_]time_to_first_token_seconds_bucket"})'
want_gen='sum({__name__=~"pagedserve[:_]generation_tokens_total"})'
want_prompt='sum({__name__=~"pagedserve[:_]prompt_tokens_total"})'
ok=""
for _ in $(seq 120); do
  if [ "$(query "$want_up" 2>/dev/null)" = 1 ] && [ "$(query "$want_ttft")" != "" ] && [ "$(query "$want_ttft")" -ge 4 ] 2>/dev/null \
    && [ "$(query "$want_gen")" -ge 36 ] 2>/dev/null && [ "$(query "$want_prompt")" -ge 1 ] 2>/dev/null; then
    ok=1
    break
  fi
  kill -0 "$prom_pid" 2>/dev/null || { cat "$work/prometheus.log" >&2; fail "prometheus exited"; }
  sleep 0.5
done
[ -n "$ok" ] || { tail -n 20 "$work/prometheus.log" >&2; fail "the series did not appear within 60 s"; }
for q in "$want_up" "$want_ttft" "$want_buckets" "$want_gen" "$want_prompt" \
  'histogram_quantile(0.5, sum by (le) ({__name__=~"pagedserve[:_]time_to_first_token_seconds_bucket"}))'; do
  log "  $q = $(query "$q")"
done

step "SIGTERM mid-stream, clean exit"
curl -sfN "$base/v1/completions" -H 'Content-Type: application/json' \
  -d "{\"model\":\"$model_name\",\"prompt\":\"A long story:\",\"max_tokens\":600,\"temperature\":0,\"ignore_eos\":true,\"stream\":true}" \
  >"$work/long.txt" &
curl_pid=$!
for _ in $(seq 200); do
  [ "$(grep -c '^data: {' "$work/long.txt" 2>/dev/null)" -ge 3 ] && break
  sleep 0.05
done
chunks_before=$(grep -c '^data: {' "$work/long.txt" || true)
[ "$chunks_before" -ge 3 ] || fail "the long stream did not start"
grep -q '^data: \[DONE\]' "$work/long.txt" && fail "the stream ended before SIGTERM was sent (make it longer)"
stop_start=$(date +%s.%N)
podman stop -t 40 "$name" >/dev/null || fail "podman stop"
stop_end=$(date +%s.%N)
wait "$curl_pid" || fail "the in-flight stream broke (curl exit $?)"
code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
chunks_after=$(grep -c '^data: {' "$work/long.txt" || true)
log "SIGTERM after $chunks_before chunks; stream ended with $chunks_after chunks (of 600); stop took $(awk -v a="$stop_start" -v b="$stop_end" 'BEGIN{printf "%.2f s", b-a}'); exit code $code"
grep -q '"finish_reason":"length"' "$work/long.txt" && tail -n 2 "$work/long.txt" | grep -q '^data: \[DONE\]' \
  || fail "the in-flight stream did not finish with finish_reason length and [DONE]"
[ "$code" = 0 ] || fail "exit code $code (137 would mean SIGKILL after the grace period)"
podman logs "$name" 2>&1 | grep -E 'received signal|in-flight|stopped' | tail -n 4
podman logs "$name" 2>&1 | grep -q 'all in-flight requests finished' || fail "no 'all in-flight requests finished' in the log"
log "ok   $current ($((SECONDS - step_start)) s)"
