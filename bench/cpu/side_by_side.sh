#!/usr/bin/env bash
# pagedserve's CPU forward (bench/cpu/model_cpu) beside llama.cpp on the same host, model shape
# (configs/models/qwen2.5-0.5b: Qwen2.5-0.5B) and dtype, runs alternated A B A B, printing issue
# 17's table: batch-1/4/16 decode and prefill 512, tok/s for both and the ratio, bf16 and f16.
#
#   bench/cpu/side_by_side.sh [--repeats 2] [--threads 2] [--steps 32] [--context 512]
#                             [--dtypes bf16,f16] [--model configs/models/qwen2.5-0.5b] [--build-only]
#   bench/cpu/side_by_side.sh --pack-source OUT.tar.xz
# --build-only builds llama.cpp, model_cpu and the GGUF files and runs nothing.
# --pack-source fetches and checks the npm archive of step 1, writes the llama.cpp source it holds
# to OUT (.tar.xz, about 5 MB) and runs nothing: no .git, and only what configuring with the flags
# of step 1 and building its two targets need, plus models/ggml-vocab-qwen2.gguf (no docs, examples,
# tests, GPU backends, server or other vocabularies). LLAMA_CPP_SOURCE_ARCHIVE=OUT then builds from
# it on a host without npm or network (e.g. .devpack/llama-src.tar.xz, carried to the device).
#
# What it does (everything it makes lives outside the repository, under $LLAMA_CPP_DIR):
#   1. llama.cpp from the git bundle in node-llama-cpp@3.22.1 (package/llama/gitRelease.bundle, one
#      squashed commit, de3ff81; the archive comes from `npm pack` with its sha256 checked, cached
#      in third_party/npm/ by tools/lib/npm-pack-verified.sh as the fetch scripts do) is cloned to
#      $LLAMA_CPP_DIR/src, or with LLAMA_CPP_SOURCE_ARCHIVE the --pack-source archive (made from
#      that npm archive, whose sha256 it records and which is checked) is unpacked there instead,
#      and built in $LLAMA_CPP_DIR/build: Release, -DGGML_NATIVE=ON, only the llama-bench and
#      llama-batched-bench targets, -j $(nproc), under `nice -n 10`. Rebuilt only when the npm
#      archive (or the source archive) or the flags change (stamp $LLAMA_CPP_DIR/build/.pagedserve-stamp).
#   2. bench/cpu/make_random_gguf.py writes $LLAMA_CPP_DIR/gguf/qwen2.5-0.5b-{bf16,f16}.gguf: the
#      shape of configs/models/qwen2.5-0.5b/config.json, random weights (uniform +-0.02, norms 1),
#      1-D tensors f32 as convert_hf_to_gguf.py writes them, the vocabulary from the bundle's
#      models/ggml-vocab-qwen2.gguf padded to vocab_size. Remade when the writer or config change.
#   3. model_cpu is built in $BUILD_DIR (default build-sbs; configured Release with Ninja if it is
#      not yet) with `nice -n 10 ninja -C $BUILD_DIR model_cpu`; PAGEDSERVE_BUILD_DIR=DIR uses an
#      existing build's DIR/bench/model_cpu instead and builds nothing, and MODEL_CPU=FILE uses that
#      binary (e.g. .devbin/model_cpu; LD_LIBRARY_PATH is the caller's to set) and builds nothing.
#   4. For each repeat and dtype: read-bandwidth probe, pagedserve, probe, llama.cpp, ... (A B A B).
#
# Settings, the same on both sides:
#   - decode at context --context (default 512): each of the B sequences has a 512-token prompt in
#     the KV cache, then --steps (default 32) timed decode steps of B tokens. llama.cpp:
#     `llama-batched-bench -npp 512 -ntg 32 -npl 1,4,16 -pps` (prompt processed once, copied to
#     every sequence; S_TG); pagedserve: `model_cpu --context 512 --steps 32` (the prompt's pages
#     are shared by the sequences, as prefix caching would; the decode throughput).
#     (llama-bench `-p 0 -n N` decodes from an empty context, hence not used for decode; its
#     `-p 0 -n 32 -d 512` is batch-1 decode at depth 512, a cross-check of the batch-1 row.)
#     llama.cpp's threads poll while waiting, so on a loaded (shared) host its figures drop far
#     more than pagedserve's: compare only runs made while nothing else runs.
#   - prefill 512 from an empty context: llama.cpp `llama-bench -p 512 -n 0` (pp512, ubatch 512);
#     pagedserve model_cpu's prefill of --prompt 512 tokens in one step.
#   - --threads (default 2) threads on both; llama.cpp's defaults otherwise (f16 KV cache, flash
#     attention auto; pagedserve's KV cache is bf16).
#   - tok/s per repeat; the table gives min-max over the repeats when they differ.
#   - the bandwidth probe is `model_cpu --bandwidth-only` (bench/cpu/read_bandwidth.h: every thread
#     streams 1 GiB, best of 5), run before every run; "floor" is batch-1 tok/s against bandwidth /
#     the bytes one decode step reads (as model_cpu prints them), with the probe just before.
#
# Environment: LLAMA_CPP_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/pagedserve/llama.cpp-node-llama-cpp-3.22.1),
# LLAMA_CPP_SOURCE_ARCHIVE (see 1), BUILD_DIR (default build-sbs), PAGEDSERVE_BUILD_DIR and
# MODEL_CPU (see 3), PYTHON (default python3). Relative paths, --pack-source's too, are taken from
# the repository root.
set -euo pipefail
script=$(realpath "$0")
cd "$(dirname "$script")/../.."
repo=$(pwd)

repeats=2 threads=2 steps=32 context=512 prompt=512 dtypes=bf16,f16 build_only=0 pack_out=
model_dir=configs/models/qwen2.5-0.5b
while [ $# -gt 0 ]; do
  case $1 in
    --model) model_dir=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --context) context=$2; shift 2 ;;
    --dtypes) dtypes=$2; shift 2 ;;
    --build-only) build_only=1; shift ;;
    --pack-source) pack_out=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$script" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "side_by_side: unknown argument $1 (--help lists them)" >&2; exit 2 ;;
  esac
done

llama_dir=${LLAMA_CPP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pagedserve/llama.cpp-node-llama-cpp-3.22.1}
case $llama_dir in
  "$repo"|"$repo"/*) echo "side_by_side: LLAMA_CPP_DIR must be outside the repository" >&2; exit 2 ;;
esac
python=${PYTHON:-python3}
say() { echo "side_by_side: $*" >&2; }

# --- 1. llama.cpp ---------------------------------------------------------------------------------
. tools/lib/npm-pack-verified.sh
npm_spec=node-llama-cpp@3.22.1
npm_archive=node-llama-cpp-3.22.1.tgz
npm_sha=a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f
npm_dir=third_party/npm
llama_targets=(llama-bench llama-batched-bench)
llama_cmake_flags=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_SERVER=OFF)

source_archive=${LLAMA_CPP_SOURCE_ARCHIVE:-}
# What --pack-source keeps of the tree: what configuring with the flags above reads (the top-level
# CMakeLists.txt adds app/ and vendor/, tools/CMakeLists.txt every tool but those it adds only for
# the server, RPC or Metal: pack_drop), the licences and the vocabulary; of ggml/src's backends
# (ggml-*) only ggml-cpu.
pack_keep=(CMakeLists.txt LICENSE AUTHORS README.md licenses cmake include src ggml common vendor tools app
  models/ggml-vocab-qwen2.gguf)
pack_drop=(tools/cli tools/server tools/ui tools/rpc tools/tuning)

clone_bundle() {  # DIR: clones the (checked) npm archive's git bundle into DIR
  local work
  work=$(mktemp -d)
  tar -xzf "$npm_dir/$npm_archive" -C "$work" package/llama/gitRelease.bundle
  git -c advice.detachedHead=false clone --quiet "$work/package/llama/gitRelease.bundle" "$1"
  rm -rf "$work"
}

pack_source() {  # OUT: the slim source tree as OUT (.tar.xz), top directory llama.cpp/
  local out=$1 tree path
  npm_pack_verified "$npm_spec" "$npm_archive" "$npm_sha" "$npm_dir"
  pack_work=$(mktemp -d)
  trap 'rm -rf "$pack_work"' EXIT
  say "cloning llama.cpp from $npm_dir/$npm_archive and packing it into $out"
  clone_bundle "$pack_work/clone"
  tree=$pack_work/llama.cpp
  mkdir -p "$tree/models"
  for path in "${pack_keep[@]}"; do cp -a "$pack_work/clone/$path" "$tree/$path"; done
  for path in "${pack_drop[@]}"; do rm -rf "${tree:?}/$path"; done
  find "$tree/ggml/src" -mindepth 1 -maxdepth 1 -type d -name 'ggml-*' ! -name ggml-cpu -exec rm -rf {} +
  printf 'commit %s\nnpm %s %s\n' "$(git -C "$pack_work/clone" rev-parse HEAD)" "$npm_spec" "$npm_sha" \
    >"$tree/.pagedserve-source"
  mkdir -p "$(dirname "$out")"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$pack_work" -cf - llama.cpp |
    xz -9 -T1 >"$out.tmp"
  mv "$out.tmp" "$out"
  say "wrote $out: $(du -h "$out" | cut -f1), sha256 $(sha256sum "$out" | cut -d' ' -f1)"
}

build_llama() {
  local src=$llama_dir/src build=$llama_dir/build source_sha
  if [ -n "$source_archive" ]; then
    [ -f "$source_archive" ] || { say "LLAMA_CPP_SOURCE_ARCHIVE: no file $source_archive"; exit 2; }
    source_sha=$(sha256sum "$source_archive" | cut -d' ' -f1)
  else
    npm_pack_verified "$npm_spec" "$npm_archive" "$npm_sha" "$npm_dir"
    source_sha=$npm_sha
  fi
  local stamp_value="$source_sha ${llama_cmake_flags[*]} ${llama_targets[*]}"
  if [ -f "$build/.pagedserve-stamp" ] && [ "$(cat "$build/.pagedserve-stamp")" = "$stamp_value" ] &&
    [ -x "$build/bin/llama-bench" ] && [ -x "$build/bin/llama-batched-bench" ]; then
    return
  fi
  mkdir -p "$llama_dir"
  if [ ! -f "$src/.pagedserve-bundle-sha256" ] || [ "$(cat "$src/.pagedserve-bundle-sha256")" != "$source_sha" ]; then
    rm -rf "$src" "$build"
    if [ -n "$source_archive" ]; then
      say "unpacking llama.cpp from $source_archive into $src"
      mkdir -p "$src"
      tar -xJf "$source_archive" -C "$src" --strip-components=1
      grep -qx "npm $npm_spec $npm_sha" "$src/.pagedserve-source" 2>/dev/null || {
        rm -rf "$src"
        say "$source_archive is not a --pack-source archive of $npm_archive ($npm_sha)"
        exit 1
      }
    else
      say "cloning llama.cpp from $npm_dir/$npm_archive (package/llama/gitRelease.bundle) into $src"
      clone_bundle "$src"
    fi
    # The vocabulary the GGUF writer copies (vocab only, test data of llama.cpp).
    cp "$src/models/ggml-vocab-qwen2.gguf" "$llama_dir/ggml-vocab-qwen2.gguf"
    echo "$source_sha" >"$src/.pagedserve-bundle-sha256"
  fi
  say "building ${llama_targets[*]} in $build (nice -n 10; this takes a while on 2 cores)"
  nice -n 10 cmake -S "$src" -B "$build" "${llama_cmake_flags[@]}" >"$llama_dir/configure.log" 2>&1 || {
    cat "$llama_dir/configure.log" >&2
    say "configuring llama.cpp failed"
    exit 1
  }
  nice -n 10 cmake --build "$build" --target "${llama_targets[@]}" -j "$(nproc)" >"$llama_dir/build.log" 2>&1 || {
    tail -50 "$llama_dir/build.log" >&2
    say "building llama.cpp failed (log: $llama_dir/build.log)"
    exit 1
  }
  echo "$stamp_value" >"$build/.pagedserve-stamp"
}
[ -n "$pack_out" ] && { pack_source "$pack_out"; exit 0; }
build_llama
llama_bench=$llama_dir/build/bin/llama-bench
llama_batched_bench=$llama_dir/build/bin/llama-batched-bench

# --- 2. the GGUF files -----------------------------------------------------------------------------
gguf_of() {  # dtype -> path of the GGUF (made when missing or stale)
  local dtype=$1 out stamp_value
  out=$llama_dir/gguf/$(basename "$model_dir")-$dtype.gguf
  stamp_value=$(cat bench/cpu/make_random_gguf.py "$model_dir/config.json" "$llama_dir/ggml-vocab-qwen2.gguf" |
    sha256sum | cut -d' ' -f1)
  if [ ! -f "$out" ] || [ ! -f "$out.stamp" ] || [ "$(cat "$out.stamp")" != "$stamp_value" ]; then
    mkdir -p "$llama_dir/gguf"
    "$python" bench/cpu/make_random_gguf.py --config "$model_dir/config.json" --dtype "$dtype" \
      --vocab "$llama_dir/ggml-vocab-qwen2.gguf" --out "$out" >&2
    echo "$stamp_value" >"$out.stamp"
  fi
  echo "$out"
}

# --- 3. model_cpu ----------------------------------------------------------------------------------
if [ -n "${MODEL_CPU:-}" ]; then
  model_cpu=$MODEL_CPU
elif [ -n "${PAGEDSERVE_BUILD_DIR:-}" ]; then
  model_cpu=$PAGEDSERVE_BUILD_DIR/bench/model_cpu
else
  build_dir=${BUILD_DIR:-build-sbs}
  if [ ! -f "$build_dir/build.ninja" ]; then
    say "configuring $build_dir (Release, Ninja)"
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  nice -n 10 ninja -C "$build_dir" model_cpu >&2
  model_cpu=$build_dir/bench/model_cpu
fi
[ -x "$model_cpu" ] || { say "$model_cpu missing (build target model_cpu)"; exit 1; }

IFS=, read -r -a dtype_list <<<"$dtypes"
for dtype in "${dtype_list[@]}"; do
  case $dtype in bf16|f16) ;; *) say "--dtypes: bf16 and/or f16, not $dtype"; exit 2 ;; esac
  gguf_of "$dtype" >/dev/null
done
[ "$build_only" = 1 ] && { say "built; llama.cpp in $llama_dir/build, GGUF files in $llama_dir/gguf"; exit 0; }

# --- 4. the runs, alternated -----------------------------------------------------------------------
batches=1,4,16
max_batch=16
run_dir=$llama_dir/runs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$run_dir"
results=$run_dir/results.txt   # lines: side dtype repeat figure value (side "probe": the probes)
: >"$results"
probe=0 bandwidth=0
probe_bandwidth() {
  probe=$((probe + 1))
  bandwidth=$("$model_cpu" --bandwidth-only --threads "$threads" | sed -n 's/^read bandwidth \([0-9.]*\) GB\/s.*/\1/p')
  echo "probe - $probe bandwidth $bandwidth" >>"$results"
  say "read bandwidth probe $probe: $bandwidth GB/s"
}
run_pagedserve() {  # dtype repeat
  local log=$run_dir/pagedserve-$1-$2.log
  say "pagedserve $1 (repeat $2)"
  "$model_cpu" --model "$model_dir" --dtype "$1" --threads "$threads" --batches "$batches" --context "$context" \
    --steps "$steps" --prompt "$prompt" --repeats 1 >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  sed -n -e "s/^decode batch *\([0-9]*\): *\([0-9.]*\) tok\/s.*/pagedserve $1 $2 decode\1 \2/p" \
    -e "s/^prefill $prompt tokens: *\([0-9.]*\) tok\/s.*/pagedserve $1 $2 prefill \1/p" \
    -e "s/.*weights read per decode step \([0-9.]*\) MB.*/pagedserve $1 $2 step_mb \1/p" "$log" >>"$results"
  echo "pagedserve $1 $2 bandwidth_before $bandwidth" >>"$results"
}
run_llama() {  # dtype repeat
  local gguf log_b=$run_dir/llama-batched-bench-$1-$2.log log_p=$run_dir/llama-bench-$1-$2.log
  gguf=$(gguf_of "$1")
  say "llama.cpp $1 (repeat $2)"
  "$llama_batched_bench" -m "$gguf" -t "$threads" -c $((max_batch * (context + steps))) -b 2048 -ub 512 \
    -npp "$context" -ntg "$steps" -npl "$batches" -pps --output-format jsonl >"$log_b" 2>&1 ||
    { tail -30 "$log_b" >&2; say "llama-batched-bench failed (log: $log_b)"; exit 1; }
  "$llama_bench" -m "$gguf" -t "$threads" -p "$prompt" -n 0 -r 1 -o jsonl >"$log_p" 2>&1 ||
    { tail -30 "$log_p" >&2; say "llama-bench failed (log: $log_p)"; exit 1; }
  echo "llama.cpp $1 $2 bandwidth_before $bandwidth" >>"$results"
  "$python" - "$log_b" "$log_p" "$1" "$2" "$prompt" >>"$results" <<'PY'
import json, sys
batched, bench, dtype, rep, prompt = sys.argv[1:6]
for line in open(batched, errors="replace"):
    if line.startswith("{") and '"speed_tg"' in line:
        row = json.loads(line)
        print(f"llama.cpp {dtype} {rep} decode{row['pl']} {row['speed_tg']:.2f}")
for line in open(bench, errors="replace"):
    if line.startswith("{") and '"avg_ts"' in line:
        row = json.loads(line)
        if row.get("n_prompt") == int(prompt) and row.get("n_gen") == 0:
            print(f"llama.cpp {dtype} {rep} prefill {row['avg_ts']:.2f}")
PY
}

for ((r = 1; r <= repeats; r++)); do
  for dtype in "${dtype_list[@]}"; do
    probe_bandwidth
    run_pagedserve "$dtype" "$r"
    probe_bandwidth
    run_llama "$dtype" "$r"
  done
done
probe_bandwidth

# --- the table -------------------------------------------------------------------------------------
cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo | sed 's/^flags[^:]*: //')
notable=$(tr ' ' '\n' <<<"$cpu_flags" | grep -E '^(avx|avx2|fma|f16c|avx512.*|amx.*|avx_vnni.*|avx_ne_convert)$' | tr '\n' ' ')
if [ -f "$llama_dir/src/.pagedserve-source" ]; then  # unpacked from LLAMA_CPP_SOURCE_ARCHIVE
  llama_commit=$(sed -n 's/^commit \(.\{7\}\).*/\1/p' "$llama_dir/src/.pagedserve-source")
  llama_origin="node-llama-cpp@3.22.1's bundle, via $(basename "$source_archive")"
else
  llama_commit=$(git -C "$llama_dir/src" rev-parse --short HEAD)
  llama_origin="node-llama-cpp@3.22.1's bundle"
fi
CPU_MODEL=$cpu_model CPU_FLAGS=$cpu_flags CPU_NOTABLE=$notable LLAMA_COMMIT=$llama_commit NPROC=$(nproc) \
  LLAMA_ORIGIN=$llama_origin \
  "$python" - "$results" "$dtypes" "$repeats" "$threads" "$context" "$steps" "$prompt" <<'PY'
import collections, os, sys
path, dtypes, repeats, threads, context, steps, prompt = sys.argv[1:8]
env = os.environ
dtypes = dtypes.split(",")
vals = collections.defaultdict(dict)   # (side, dtype, figure) -> {repeat: value}
probes = {}                            # probe number -> GB/s
for line in open(path):
    side, dtype, rep, figure, value = line.split()
    if side == "probe":
        probes[int(rep)] = float(value)
    else:
        vals[(side, dtype, figure)][rep] = float(value)

def rng(xs, fmt="%.1f"):
    if not xs:
        return "missing"
    lo, hi = min(xs), max(xs)
    return fmt % lo if fmt % lo == fmt % hi else (fmt % lo) + "-" + (fmt % hi)

print()
print("CPU: %s; %s CPUs online; %s threads" % (env["CPU_MODEL"], env["NPROC"], threads))
print("CPU flags (SIMD): %s" % env["CPU_NOTABLE"])
print("CPU flags (all): %s" % env["CPU_FLAGS"])
print("llama.cpp %s (%s), Release, -DGGML_NATIVE=ON; decode at context %s "
      "(%s steps), prefill %s from an empty cache; %s repeat(s), runs alternated A B" %
      (env["LLAMA_COMMIT"], env["LLAMA_ORIGIN"], context, steps, prompt, repeats))
print()
header = "| figure (tok/s) |"
for d in dtypes:
    header += " pagedserve %s | llama.cpp %s | ratio |" % (d, d)
print(header)
print("|---|" + "---|---|---|" * len(dtypes))
for figure, label in (("decode1", "batch-1 decode"), ("decode4", "batch-4 decode"),
                      ("decode16", "batch-16 decode"), ("prefill", "prefill %s" % prompt)):
    row = "| %s |" % label
    for d in dtypes:
        a, b = vals[("pagedserve", d, figure)], vals[("llama.cpp", d, figure)]
        ratios = [a[r] / b[r] for r in a if r in b and b[r] > 0]
        row += " %s | %s | %s |" % (rng(list(a.values())), rng(list(b.values())), rng(ratios, "%.2f"))
    print(row)
print()
for d in dtypes:
    # batch-1 against its memory floor: bandwidth (the probe just before the run) / weights per step
    step_mb = vals[("pagedserve", d, "step_mb")]
    parts = []
    for side in ("pagedserve", "llama.cpp"):
        fr = [vals[(side, d, "decode1")][r] / (vals[(side, d, "bandwidth_before")][r] * 1e3 / step_mb[r])
              for r in vals[(side, d, "decode1")] if r in step_mb and vals[(side, d, "bandwidth_before")].get(r)]
        parts.append("%s %s" % (side, rng(fr, "%.2f")))
    print("batch-1 %s against the memory floor (%s MB read per step / the probe before the run): %s" %
          (d, rng(list(step_mb.values())), ", ".join(parts)))
print("read bandwidth probes, in run order (GB/s): " + ", ".join("%.1f" % probes[k] for k in sorted(probes)))
PY
say "logs in $run_dir"
