#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan, every library instrumented) in
# build-fuzz/ and runs each for SECONDS, one after another, from its committed seeds
# (tests/fuzz/corpus/<target>). New inputs go to build-fuzz/corpus/<target> (kept between runs);
# a finding stops the run with the target's report and its input in build-fuzz/findings/.
#   tests/fuzz/run.sh SECONDS [TARGET...]     (default: every target)
# Needs the tiny models and tokenizers from scripts/prepare-test-data.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(completion_protocol_fuzz chat_protocol_fuzz http_request_fuzz tokenizer_fuzz
           safetensors_fuzz model_config_fuzz chat_template_fuzz)
fi
build=${PAGEDSERVE_FUZZ_BUILD_DIR:-build-fuzz}

cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPAGEDSERVE_FUZZ=ON -DPAGEDSERVE_CUDA=OFF \
  -DPAGEDSERVE_BUILD_TESTS=OFF -DPAGEDSERVE_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

mkdir -p "$build/findings"
for target in "${targets[@]}"; do
  mkdir -p "$build/corpus/$target"
  echo "== fuzz $target for ${seconds}s"
  # -timeout: one input running 10 s is a hang; -rss_limit_mb: 2 GiB is a leak or a blow-up.
  # Leaks are checked (ASan's LeakSanitizer) at the end of every input that allocated more.
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      "$build/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=8192 -print_final_stats=1 -artifact_prefix="$build/findings/$target-" \
      "$build/corpus/$target" "tests/fuzz/corpus/$target" 2>"$build/$target.log"; then
    tail -n 60 "$build/$target.log"
    echo "fuzz: $target found a problem; input saved under $build/findings/" >&2
    exit 1
  fi
  grep -a -E 'DONE +cov:|stat::peak_rss_mb' \
    "$build/$target.log" | tr '\n' ' '
  echo
done
echo "== fuzz: no findings"
