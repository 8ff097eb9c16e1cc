#!/usr/bin/env bash
# One device-machine session for the CUDA attention work: build (CMake targets, or plain nvcc
# if the project's configure fails because of unrelated half-written folders), run the CUDA
# tests, compute-sanitizer (memcheck + racecheck on a filtered subset) and the benchmark.
# Logs go to $OUT (or /tmp/out). Usage: tests/kernels/cuda/device_run.sh [tests|sanitize|bench]...
set -uo pipefail
cd "$(dirname "$0")/../../.."
out=${OUT:-/tmp/out}
mkdir -p "$out"
steps=${*:-tests bench sanitize}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/device.txt"
git log -1 --format='commit %H %cd' >> "$out/device.txt" 2>/dev/null || true

bin=/tmp/psbin
mkdir -p $bin
if cmake -S . -B /tmp/psbuild -G Ninja -DPAGEDSERVE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
     -DPAGEDSERVE_WERROR=ON > "$out/cmake.log" 2>&1 &&
   ninja -C /tmp/psbuild kernels_cuda_test attention_cuda >> "$out/cmake.log" 2>&1; then
  cp /tmp/psbuild/tests/kernels/cuda/kernels_cuda_test /tmp/psbuild/bench/cuda/attention_cuda $bin/
  echo "built with cmake"
else
  echo "cmake build failed (see cmake.log); building with nvcc directly"
  flags="-std=c++20 -O3 -I. -DPAGEDSERVE_HAVE_CUDA -gencode=arch=compute_90a,code=sm_90a"
  kflags="$flags --expt-relaxed-constexpr --use_fast_math"
  pids=()
  for f in kernels/cuda/*.cu; do
    nvcc $kflags -c "$f" -o $bin/$(basename "$f").o & pids+=($!)
  done
  nvcc $flags -x cu -c core/buffer.cpp -o $bin/buffer.o & pids+=($!)
  g++ -std=c++20 -O2 -I. -c kernels/reference/paged_attention_reference.cpp -o $bin/ref.o & pids+=($!)
  nvcc $flags -x cu -c tests/kernels/cuda/attention_cuda_test.cpp -o $bin/test.o & pids+=($!)
  nvcc $flags -c bench/cuda/attention_cuda.cu -o $bin/bench.o & pids+=($!)
  for p in "${pids[@]}"; do wait $p || { echo "compile failed"; exit 1; }; done
  nvcc -o $bin/kernels_cuda_test $bin/test.o $bin/attention*.o $bin/buffer.o $bin/ref.o -lgtest -lgtest_main -lpthread || exit 1
  nvcc -o $bin/attention_cuda $bin/bench.o $bin/attention*.o $bin/buffer.o || exit 1
fi

# Benchmark-only variants (tuning experiments), built only when the "variant" step is asked.
declare -A variants=(
  [B]="-DPAGEDSERVE_PREFILL_MIN_BLOCKS=2"
  [C]="-DPAGEDSERVE_PREFILL_MIN_BLOCKS=2 -DPAGEDSERVE_PREFILL_Q_IN_REGISTERS=0"
)
if [[ " $steps " == *" variant "* ]]; then
  pids=()
  for name in "${!variants[@]}"; do
    vflags="-std=c++20 -O3 -I. -DPAGEDSERVE_HAVE_CUDA -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr --use_fast_math ${variants[$name]}"
    mkdir -p $bin/variant_$name
    ( for f in kernels/cuda/attention_instances_prefill_bf16.cu kernels/cuda/attention_instances_prefill_f16.cu \
               kernels/cuda/attention_instances_decode_bf16.cu kernels/cuda/attention_instances_decode_f16.cu \
               kernels/cuda/attention_cuda.cu; do
        nvcc $vflags -c "$f" -o $bin/variant_$name/$(basename "$f").o &
      done
      nvcc $vflags -x cu -c core/buffer.cpp -o $bin/variant_$name/buffer.o &
      nvcc $vflags -c bench/cuda/attention_cuda.cu -o $bin/variant_$name/bench.o &
      wait
      nvcc -o $bin/attention_cuda_$name $bin/variant_$name/*.o ) & pids+=($!)
  done
  for p in "${pids[@]}"; do wait $p; done
fi

for step in $steps; do
  case $step in
    tests)
      start=$(date +%s)
      $bin/kernels_cuda_test > "$out/tests.log" 2>&1; echo "tests rc=$? in $(( $(date +%s) - start )) s"
      grep -E "FAILED|Failure|error|PASSED|SKIPPED \]" "$out/tests.log" | head -40 ;;
    sanitize)
      filter='*DecodeMatchesReference/bf16_d128_g4_p16:*PrefillMatchesReference/f16_d80_g8_p32:*GraphReplay*:*MixedBatch*:*DecodeManyRows*:*LargeCapacity*'
      timeout 200 compute-sanitizer --tool memcheck --error-exitcode 3 $bin/kernels_cuda_test --gtest_brief=1 \
        --gtest_filter="$filter" > "$out/memcheck.log" 2>&1; echo "memcheck rc=$?"; tail -5 "$out/memcheck.log"
      timeout 200 compute-sanitizer --tool racecheck --error-exitcode 3 $bin/kernels_cuda_test --gtest_brief=1 \
        --gtest_filter='*DecodeMatchesReference/bf16_d128_g4_p16:*PrefillMatchesReference/f16_d64_g4_p16:*DecodeManyRows*:*MixedBatch*' \
        > "$out/racecheck.log" 2>&1; echo "racecheck rc=$?"; tail -5 "$out/racecheck.log" ;;
    bench)
      $bin/attention_cuda 30 2>&1 | tee "$out/bench.log"
      $bin/attention_cuda 30 > "$out/bench2.log" 2>&1 ;;
    profile)
      for c in "decode B=64 L=4096" "decode B=64 L=4096 page 64"; do
        timeout 120 ncu --clock-control none --kernel-name regex:decode_attention --launch-skip 3 --launch-count 1 \
          --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy \
          $bin/attention_cuda 5 "$c" > "$out/ncu_$(echo $c | tr ' =' '__').txt" 2>&1
      done
      timeout 120 ncu --clock-control none --kernel-name regex:prefill_attention --launch-skip 3 --launch-count 1 \
        --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section Occupancy \
        $bin/attention_cuda 5 "prefill 4 x 2048" > "$out/ncu_prefill.txt" 2>&1
      echo "profiles written" ;;
    profile2)
      stalls='regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio'
      timeout 120 ncu --clock-control none --kernel-name regex:decode_attention --launch-skip 3 --launch-count 1 \
        --section SpeedOfLight --metrics "$stalls" $bin/attention_cuda 5 "decode B=256" > "$out/ncu_decode256.txt" 2>&1
      timeout 120 ncu --clock-control none --kernel-name regex:prefill_attention --launch-skip 3 --launch-count 1 \
        --section SpeedOfLight --section ComputeWorkloadAnalysis --metrics "$stalls" \
        $bin/attention_cuda 5 "prefill 4 x 2048" > "$out/ncu_prefill_stalls.txt" 2>&1
      echo "profiles written" ;;
    variant)
      for name in "${!variants[@]}"; do
        echo "variant $name: ${variants[$name]}"
        $bin/attention_cuda_$name 30 prefill 2>&1 | grep -E "prefill"
      done 2>&1 | tee "$out/bench_variant.log" ;;
    graph)
      PAGEDSERVE_BENCH_GRAPH=1 $bin/attention_cuda 30 2>&1 | tee "$out/bench_graph.log" ;;
    noflush)
      $bin/attention_cuda 30 "" 0 2>&1 | tee "$out/bench_noflush.log" ;;
    inorder)
      PAGEDSERVE_BENCH_IN_ORDER=1 $bin/attention_cuda 30 decode 2>&1 | tee "$out/bench_inorder.log" ;;
    flush)
      $bin/attention_cuda 30 "" 128 2>&1 | tee "$out/bench_flush128.log" ;;
  esac
done
