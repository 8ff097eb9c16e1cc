#!/usr/bin/env bash
# One device-machine session for the CUDA attention work: build with plain nvcc (the image lacks
# libpcre2-8 and spdlog's companions, so the project's CMake configure fails there), run the CUDA
# tests, compute-sanitizer (memcheck + racecheck on a filtered subset) and the benchmark.
# Logs go to $OUT (or /tmp/out). Usage: tests/kernels/cuda/device_run.sh [build|tests|sanitize|bench|variant|...]...
#
# Device time is scarce, so the binaries can be built on a machine without a GPU and carried:
#   PSBIN=build-cuda2/bin tests/kernels/cuda/device_run.sh build          # here (nvcc, no GPU)
#   PSBIN=build-cuda2/bin tests/kernels/cuda/device_run.sh tests bench    # there, carrying build-cuda2/bin
# Without an explicit "build" step, binaries already in $PSBIN are used when they run there;
# otherwise everything is built on the spot.
set -uo pipefail
cd "$(dirname "$0")/../../.."
out=${OUT:-/tmp/out}
mkdir -p "$out"
steps=${*:-tests bench sanitize}
bin=${PSBIN:-/tmp/psbin}
mkdir -p "$bin"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/device.txt"
fi
git log -1 --format='commit %H %cd' >> "$out/device.txt" 2>/dev/null || true
clock_log=""
if command -v nvidia-smi > /dev/null; then  # clocks, power and throttle reasons while we run
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv -lms 250 > "$out/clocks.csv" 2>&1 &
  clock_log=$!
  trap '[[ -n $clock_log ]] && kill $clock_log 2>/dev/null' EXIT
fi

# Benchmark-only variants (tuning experiments): "-D flags[|sources rebuilt with them]"; by default
# only the bf16 prefill instances are rebuilt, the other objects are shared with the main build.
declare -A variants=(
  [STAMP]="-DPAGEDSERVE_PREFILL_STAMPS -DPAGEDSERVE_PREFILL_WGMMA=0"  # stamps exist in the mma.sync kernel only
  [NOPDL]="-DPAGEDSERVE_DECODE_PDL=0|attention_instances_decode_bf16.cu"
  [MMA]="-DPAGEDSERVE_PREFILL_WGMMA=0"
  [W3]="-DPAGEDSERVE_WGMMA_STAGES=3 -DPAGEDSERVE_WGMMA_MIN_BLOCKS=1"
  [D3]="-DPAGEDSERVE_DECODE_STAGES=2 -DPAGEDSERVE_DECODE_MIN_BLOCKS=3|attention_instances_decode_bf16.cu"
)
variant_flags() { echo "${variants[$1]%%|*}"; }
variant_sources() { local v=${variants[$1]}; [[ $v == *"|"* ]] && echo "${v#*|}" || echo attention_instances_prefill_bf16.cu; }

flags="-std=c++20 -O3 -I. -DPAGEDSERVE_HAVE_CUDA -gencode=arch=compute_90a,code=sm_90a"
kflags="$flags --expt-relaxed-constexpr --use_fast_math"
lflags="-Xcompiler -static-libstdc++,-static-libgcc"
# At most $JOBS compiles at once (the 2-core CPU machine is shared; the device machine has more).
jobs_max=${JOBS:-$(( $(nproc) > 4 ? $(nproc) : 2 ))}
pids=()
spawn() {
  while (( $(jobs -rp | wc -l) >= jobs_max )); do wait -n; done
  "$@" & pids+=($!)
}
# build: everything; buildbench: only the benchmark and the variants (the kernel objects in $bin
# are reused: for diagnostics between full builds).
build() {
  local start=$(date +%s) what=$1
  pids=()
  if [[ $what == all ]]; then
    for f in kernels/cuda/*.cu; do
      spawn nvcc $kflags -Xptxas -warn-spills -c "$f" -o $bin/$(basename "$f").o
    done
    spawn nvcc $flags -x cu -c core/buffer.cpp -o $bin/buffer.o
    spawn g++ -std=c++20 -O2 -I. -c kernels/reference/paged_attention_reference.cpp -o $bin/ref.o
    spawn nvcc $flags -x cu -c tests/kernels/cuda/attention_cuda_test.cpp -o $bin/test.o
  fi
  spawn nvcc $flags -c bench/cuda/attention_cuda.cu -o $bin/bench.o
  for name in "${!variants[@]}"; do
    for src in $(variant_sources $name); do
      spawn nvcc $kflags -Xptxas -warn-spills $(variant_flags $name) -c kernels/cuda/$src -o $bin/variant_${name}_$src.o
    done
  done
  for p in "${pids[@]}"; do wait $p || { echo "compile failed"; exit 1; }; done
  if [[ $what == all ]]; then
    nvcc $lflags -o $bin/kernels_cuda_test $bin/test.o $bin/attention*.o $bin/buffer.o $bin/ref.o -lgtest -lgtest_main -lpthread || exit 1
  fi
  nvcc $lflags -o $bin/attention_cuda $bin/bench.o $bin/attention*.o $bin/buffer.o || exit 1
  rm -f $bin/attention_cuda_*
  for name in "${!variants[@]}"; do
    local objs="" src
    for o in $bin/attention*.o; do
      src=$(basename $o .o)
      [[ " $(variant_sources $name) " == *" $src "* ]] && objs+=" $bin/variant_${name}_$src.o" || objs+=" $o"
    done
    nvcc $lflags -o $bin/attention_cuda_$name $bin/bench.o $objs $bin/buffer.o || exit 1
  done
  echo "built in $(( $(date +%s) - start )) s"
}
if [[ " $steps " == *" build "* ]]; then
  build all
elif [[ " $steps " == *" buildbench "* ]]; then
  build bench
elif [[ -x $bin/kernels_cuda_test ]] && $bin/kernels_cuda_test --gtest_list_tests > /dev/null 2>&1; then
  echo "using the binaries in $bin"
else
  echo "building"
  build all
fi

for step in $steps; do
  case $step in
    tests)
      start=$(date +%s)
      $bin/kernels_cuda_test > "$out/tests.log" 2>&1; echo "tests rc=$? in $(( $(date +%s) - start )) s"
      grep -E "FAILED|Failure|error|PASSED|SKIPPED \]" "$out/tests.log" | head -40 ;;
    sanitize)
      start=$(date +%s)
      filter='*DecodeMatchesReference/bf16_d128_g4_p16:*PrefillMatchesReference/f16_d80_g8_p32:*PrefillGroupsNotDividingTheTile*:*PrefillLongPromptsMainShape*:*GraphReplay*:*MixedBatch*:*DecodeManyRows*:*DecodeManyItems*:*LargeCapacity*'
      timeout 200 compute-sanitizer --tool memcheck --error-exitcode 3 $bin/kernels_cuda_test --gtest_brief=1 \
        --gtest_filter="$filter" > "$out/memcheck.log" 2>&1; echo "memcheck rc=$?"; tail -5 "$out/memcheck.log"
      timeout 200 compute-sanitizer --tool racecheck --error-exitcode 3 $bin/kernels_cuda_test --gtest_brief=1 \
        --gtest_filter='*DecodeMatchesReference/bf16_d128_g4_p16:*PrefillMatchesReference/f16_d64_g4_p16:*PrefillMatchesReference/bf16_d64_g8_p32:*PrefillMatchesReference/bf16_d128_g4_p16:*DecodeManyRows*:*DecodeManyItems*:*MixedBatch*' \
        > "$out/racecheck.log" 2>&1; echo "racecheck rc=$?"; tail -5 "$out/racecheck.log"
      echo "sanitize took $(( $(date +%s) - start )) s" ;;
    bench)
      PAGEDSERVE_BENCH_VERBOSE=1 $bin/attention_cuda 30 2>&1 | tee "$out/bench.log"
      PAGEDSERVE_BENCH_VERBOSE=1 $bin/attention_cuda 30 > "$out/bench2.log" 2>&1 ;;
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
    profile4)  # decode B=256 vs B=64: DRAM bytes and throughput of the kernel alone
      for c in "decode B=256" "decode B=64 L=4096"; do
        timeout 120 ncu --clock-control none --kernel-name regex:decode_attention --launch-skip 3 --launch-count 1 \
          --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats \
          --metrics dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum,sm__warps_active.avg.pct_of_peak_sustained_active \
          $bin/attention_cuda 5 "$c" > "$out/ncu_$(echo $c | tr ' =' '__').txt" 2>&1
        grep -E "dram__bytes|gpu__time_duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Waves Per SM|Block Limit|warps_active" \
          "$out/ncu_$(echo $c | tr ' =' '__').txt" | head -20
      done ;;
    profile2)
      stalls='regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio'
      timeout 120 ncu --clock-control none --kernel-name regex:decode_attention --launch-skip 3 --launch-count 1 \
        --section SpeedOfLight --metrics "$stalls" $bin/attention_cuda 5 "decode B=256" > "$out/ncu_decode256.txt" 2>&1
      timeout 120 ncu --clock-control none --kernel-name regex:prefill_attention --launch-skip 3 --launch-count 1 \
        --section SpeedOfLight --section ComputeWorkloadAnalysis --metrics "$stalls" \
        $bin/attention_cuda 5 "prefill 4 x 2048" > "$out/ncu_prefill_stalls.txt" 2>&1
      echo "profiles written" ;;
    profile3)  # prefill: where the per-CTA time goes (short vs long prompts)
      for c in "prefill 16 x 512" "prefill 1 x 8192"; do
        timeout 150 ncu --clock-control none --kernel-name regex:prefill_attention --launch-skip 3 --launch-count 1 \
          --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats \
          --section LaunchStats --metrics sm__cycles_active.avg,sm__cycles_elapsed.avg,smsp__warps_active.avg.per_cycle_active \
          $bin/attention_cuda 5 "$c" > "$out/ncu_$(echo $c | tr ' =' '__').txt" 2>&1
        grep -E "Duration|cycles_active|cycles_elapsed|Achieved Occupancy|Issue Slots Busy|No Eligible|Stall|warps_active|SM Busy" \
          "$out/ncu_$(echo $c | tr ' =' '__').txt" | head -30
      done ;;
    variant)  # prefill variants on the prefill cases, decode variants on the decode cases
      for name in $(echo "${!variants[@]}" | tr ' ' '\n' | sort); do
        echo "variant $name: ${variants[$name]}"
        if [[ $(variant_sources $name) == *prefill* ]]; then
          $bin/attention_cuda_$name 30 prefill 2>&1 | grep -E "prefill|stamps"
        else
          PAGEDSERVE_BENCH_FRAGMENT=1 $bin/attention_cuda_$name 30 "decode B=" 2>&1 | grep -E "decode"
        fi
      done 2>&1 | tee "$out/bench_variant.log" ;;
    decodediag)  # is the many-row page-16 slowdown the allocation? (see bench/cuda/attention_cuda.cu)
      for mode in separate pool pool2m; do
        echo "== K/V $mode, after a 2 x 2 GiB allocate/free, each case 3 times"
        PAGEDSERVE_BENCH_VERBOSE=1 PAGEDSERVE_BENCH_FRAGMENT=1 PAGEDSERVE_BENCH_REPEAT=3 PAGEDSERVE_BENCH_KV=$mode \
          $bin/attention_cuda 30 "decode B=64|decode B=256|decode B=128" 2>&1 | grep -E "decode|# kv"
      done 2>&1 | tee "$out/bench_decodediag.log"
      echo "== K/V separate, fresh process, no fragmenting, each case 3 times" | tee -a "$out/bench_decodediag.log"
      PAGEDSERVE_BENCH_VERBOSE=1 PAGEDSERVE_BENCH_REPEAT=3 $bin/attention_cuda 30 "decode B=64|decode B=256" 2>&1 \
        | grep -E "decode|# kv" | tee -a "$out/bench_decodediag.log" ;;
    settle)  # the first case after a 2 x 2 GiB free, rep by rep, without and with the settle
      for ms in 0 300; do
        echo "== settle $ms ms, after a 2 x 2 GiB allocate/free, each case twice, every repetition"
        PAGEDSERVE_BENCH_SETTLE_MS=$ms PAGEDSERVE_BENCH_FRAGMENT=1 PAGEDSERVE_BENCH_REPEAT=2 PAGEDSERVE_BENCH_TIMELINE=1 \
          $bin/attention_cuda 30 "decode B=64 L=4096|decode B=256" 2>&1 | grep -E "decode|reps"
      done 2>&1 | tee "$out/bench_settle.log" ;;
    decode)  # decode cases alone, in a process that never allocated the copy buffers
      $bin/attention_cuda 30 decode 2>&1 | tee "$out/bench_decode.log" ;;
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
