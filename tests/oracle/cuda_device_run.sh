#!/usr/bin/env bash
# The CUDA backend on the GPU machine: kernel tests, the transformers/CPU/engine oracle
# (compare_backends.py), compute-sanitizer on an engine run, the HTTP server with --backend cuda
# (tiny model and a dummy Llama-3.1-8B, curl), and the model benchmark. Device time is scarce, so
# everything is built here (no GPU needed) and carried:
#   tests/oracle/cuda_device_run.sh pack   # here: build; .devbin/ = binaries + libs + tiny models,
#                                          # packed as .devpack/devbin.tar.xz (under the 64 MiB carry limit)
#   run(carry [".devpack"]): tests/oracle/cuda_device_run.sh unpack tests cpu oracle oracle_cpu sanitize serve bench
#   issue 13's A/B of the programmatic dependent launch: `... unpack bench_pdl` (PDL_LEVELS, BENCH_ARGS)
#   issue 17's side by side on the host CPU: also `bench/cpu/side_by_side.sh --pack-source
#   .devpack/llama-src.tar.xz` here, then `... unpack cpu_sbs` there (SBS_THREADS, SBS_REPEATS)
# Logs go to $OUT (or /tmp/out). The test and bench_pdl binaries run under `timeout ${RUN_TIMEOUT:-180}`.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/out}
mkdir -p "$out"
bin=$PWD/.devbin
build=${BUILD_DIR:-build}
export LD_LIBRARY_PATH=$bin/lib:${LD_LIBRARY_PATH:-}
binaries="server/pagedserve tests/oracle/runner_tokens tests/oracle/dump_logits bench/cuda/model_cuda
  bench/serve/bench_serve tests/kernels/cuda/kernels_cuda_test tests/kernels/cuda/sampling_cuda_test
  tests/kernels/kernels_test bench/model_cpu bench/matmul_cpu"

pack() {
  ninja -C "$build" $(for b in $binaries; do basename "$b"; done) make-tiny-model || exit 1
  BUILD_DIR=$build tools/fetch-zz-tiny-models.sh || exit 1
  rm -rf "$bin" && mkdir -p "$bin/lib" "$bin/models"
  for b in $binaries; do cp "$build/$b" "$bin/" && strip "$bin/$(basename "$b")"; done
  # The libraries this machine's build links that the GPU machine's image may lack or hold in
  # another version; glibc, libstdc++ and CUDA's own come from that image.
  for b in $binaries; do ldd "$build/$b"; done | awk '/=> \// {print $3}' | sort -u |
    grep -vE '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas[^/]*)\.so' |
    xargs -r -I{} cp -L {} "$bin/lib/"
  cp -r models/tiny-qwen3 "$bin/models/"
  [[ -n ${SLIM:-} ]] || cp -r models/tiny-llama "$bin/models/"
  [[ -n ${SLIM:-} ]] && rm -f "$bin/runner_tokens"
  mkdir -p .devpack && tar -cf - .devbin | xz -T0 -6 > .devpack/devbin.tar.xz
  rm -f .devpack/node.tar.xz
  if [[ -n ${WITH_NODE:-} ]]; then  # Node.js and the openai npm client, for the integration tests there
    tar -cf - -C / usr/bin/node -C "$PWD" tests/integration/client/node_modules | xz -T0 -6 > .devpack/node.tar.xz
  fi
  du -sh "$bin" .devpack/*
}

prompts_file() {  # a few prompts of token ids for the sanitizer run
  printf '1 2 3 4 5\n100 200 300 400 500 600 700 800 900 1000 1100 1200 1300 1400 1500 1600 1700\n42\n' > /tmp/prompts.txt
}

serve_checks() {  # $1 label, then the serve flags
  local label=$1
  shift
  "$bin/pagedserve" serve --port 8123 --served-model-name m "$@" > "$out/serve-$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do
    curl -fsS localhost:8123/health > /dev/null 2>&1 && break
    kill -0 $pid 2> /dev/null || break
    sleep 0.5
  done
  {
    echo "== $label: completion (token-id prompt, greedy, logprobs)"
    curl -sS localhost:8123/v1/completions -H 'Content-Type: application/json' \
      -d '{"model":"m","prompt":[1,2,3,4,5,6,7,8],"max_tokens":16,"temperature":0,"logprobs":2}'
    echo
    echo "== $label: text prompt, seeded sampling, n=2, streamed"
    curl -sS -N localhost:8123/v1/completions -H 'Content-Type: application/json' \
      -d '{"model":"m","prompt":"Hello, my name is","max_tokens":8,"temperature":0.8,"top_p":0.9,"top_k":50,"seed":3,"n":2,"stream":true}'
    echo "== $label: 32 concurrent requests"
    local pids=()
    for i in $(seq 1 32); do
      curl -sS localhost:8123/v1/completions -H 'Content-Type: application/json' \
        -d "{\"model\":\"m\",\"prompt\":[$i,7,9,11],\"max_tokens\":24,\"temperature\":0.7,\"seed\":$i,\"presence_penalty\":0.5,\"repetition_penalty\":1.1}" \
        -o /tmp/concurrent-$i.json &
      pids+=($!)
    done
    wait "${pids[@]}"
    grep -L '"finish_reason"' /tmp/concurrent-*.json | sed 's/^/missing finish_reason: /'
    grep -h -o '"completion_tokens":[0-9]*' /tmp/concurrent-*.json | sort | uniq -c
    echo "== $label: metrics"
    curl -sS localhost:8123/metrics | grep -E '^pagedserve_(generation_tokens_total|prompt_tokens_total|time_to_first_token_seconds_count)'
  } > "$out/curl-$label.log" 2>&1
  kill -TERM $pid
  wait $pid
  echo "serve $label: exit $?" | tee -a "$out/curl-$label.log"
}

for step in ${*:-tests oracle sanitize serve bench}; do
  case $step in
    pack) pack ;;
    unpack)
      tar -xJf .devpack/devbin.tar.xz
      [[ -f .devpack/node.tar.xz ]] && tar -xJf .devpack/node.tar.xz -C /tmp/ && mv /tmp/tests/integration/client/node_modules tests/integration/client/
      ;;
    client)  # the openai npm client's integration tests against --backend cuda
      for t in completions errors load; do
        PAGEDSERVE_BIN=$bin/pagedserve PAGEDSERVE_MODEL=$bin/models/tiny-qwen3 PAGEDSERVE_SERVE_ARGS="--backend cuda" \
          /tmp/usr/bin/node --test tests/integration/client/$t.test.mjs > "$out/client-$t.log" 2>&1
        echo "client $t: exit $?"; grep -E "^# (tests|pass|fail)" "$out/client-$t.log"
      done
      ;;
    cpu)  # the CPU matmul paths and model on this machine's host CPU (a Xeon with AMX)
      lscpu | grep -E "Model name|^CPU\(s\)|Flags" > "$out/host-cpu.txt"
      grep -o -E "amx_[a-z0-9]+|avx512_bf16|avx512f " "$out/host-cpu.txt" | sort -u | tr '\n' ' '; echo
      "$bin/kernels_test" --gtest_filter='Matmul*:CpuKernel*' > "$out/kernels_test_host.log" 2>&1
      echo "kernels_test (AMX on): exit $?"; grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$out/kernels_test_host.log"
      PAGEDSERVE_NO_AMX=1 "$bin/kernels_test" --gtest_filter='Matmul*' > "$out/kernels_test_host_noamx.log" 2>&1
      echo "kernels_test (AMX off): exit $?"
      for dtype in bf16 f16; do
        "$bin/model_cpu" --threads 2 --dtype $dtype --context 512 --steps 16 --repeats 2 > "$out/model_cpu_$dtype.log" 2>&1
        grep -E "bandwidth|decode batch|prefill" "$out/model_cpu_$dtype.log"
      done
      ;;
    cpu_sbs)  # issue 17 on this machine's host CPU: pagedserve beside llama.cpp (bench/cpu/side_by_side.sh)
      # Needs .devpack/llama-src.tar.xz (here: bench/cpu/side_by_side.sh --pack-source
      # .devpack/llama-src.tar.xz) carried with the binaries; llama.cpp is built there with -j$(nproc).
      lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|Socket|Flags" > "$out/host-cpu.txt"
      export LLAMA_CPP_DIR=/tmp/llama-sbs LLAMA_CPP_SOURCE_ARCHIVE=.devpack/llama-src.tar.xz MODEL_CPU=$bin/model_cpu
      bench/cpu/side_by_side.sh --build-only > "$out/sbs-build.log" 2>&1
      echo "llama.cpp build: exit $?"
      for threads in ${SBS_THREADS:-2 16}; do
        bench/cpu/side_by_side.sh --repeats "${SBS_REPEATS:-2}" --threads "$threads" > "$out/sbs-t$threads.log" 2>&1
        echo "side_by_side --threads $threads: exit $?"
        sed -n '/^| figure/,$p' "$out/sbs-t$threads.log"
      done
      ;;
    tests)
      nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$out/device.txt"
      timeout "${RUN_TIMEOUT:-180}" "$bin/kernels_cuda_test" --gtest_filter="${OPS_FILTER:-*}" > "$out/kernels_cuda_test.log" 2>&1
      echo "kernels_cuda_test: exit $?"
      timeout "${RUN_TIMEOUT:-180}" "$bin/sampling_cuda_test" > "$out/sampling_cuda_test.log" 2>&1
      echo "sampling_cuda_test: exit $?"
      grep -hE "^\[  (PASSED|FAILED) |Failure|Expected|Which is|seed|  got|expected|rows differ" \
        "$out/kernels_cuda_test.log" "$out/sampling_cuda_test.log" | head -40
      ;;
    oracle)
      PYTHONUNBUFFERED=1 python3 tests/oracle/compare_backends.py --runner "$bin/runner_tokens" \
        --tokenizer-dir "$bin/models/tiny-qwen3" --work /tmp/oracle "$bin/models/tiny-qwen3" \
        "$bin/models/tiny-llama" > "$out/oracle.log" 2>&1
      echo "oracle exit $?"
      grep -E "^==|greedy identical|ALL PASS|SOME FAILED|Error|error" "$out/oracle.log" | head -80
      ;;
    oracle_cpu)  # the CPU backend against transformers (an f32 copy exactly, the bf16 checkpoint
      # against transformers' own bf16): compare_with_transformers.py
      PYTHONUNBUFFERED=1 python3 tests/oracle/compare_with_transformers.py --dump "$bin/dump_logits" \
        "$bin/models/tiny-qwen3" "$bin/models/tiny-llama" > "$out/oracle-cpu.log" 2>&1
      echo "oracle_cpu exit $?"
      echo "$(grep -c ' PASS' "$out/oracle-cpu.log") lines PASS, $(grep -c ' FAIL' "$out/oracle-cpu.log") FAIL"
      grep -E " FAIL|Error|error|ALL PASS|SOME FAILED" "$out/oracle-cpu.log" | head -20
      ;;
    sanitize)
      prompts_file
      compute-sanitizer --tool memcheck --error-exitcode 3 "$bin/runner_tokens" --backend cuda --mode engine \
        --model "$bin/models/tiny-qwen3" --prompts /tmp/prompts.txt --out /tmp/sanitize.json --greedy 8 \
        --max-num-batched-tokens 16 > "$out/memcheck.log" 2>&1
      echo "memcheck exit $?"
      tail -3 "$out/memcheck.log"
      ;;
    serve)
      serve_checks tiny --backend cuda --model "$bin/models/tiny-qwen3"
      mkdir -p /tmp/llama8b && cp configs/models/llama-3.1-8b/config.json /tmp/llama8b/ &&
        cp "$bin/models/tiny-qwen3/tokenizer.json" /tmp/llama8b/
      serve_checks dummy8b --backend cuda --load-format dummy --model /tmp/llama8b --max-model-len 8192
      grep -hE "KV cache|weights on GPU|CUDA device|error" "$out"/serve-*.log | head
      ;;
    bench)
      "$bin/model_cuda" ${BENCH_ARGS:-} 2>&1 | tee "$out/model_cuda.log"
      ;;
    bench_pdl)  # issue 13: model_cuda at each PAGEDSERVE_CUDA_PDL level of PDL_LEVELS (default "0 1 0 1":
      # the skinny GEMM as a programmatic dependent launch or not; 2 adds the elementwise kernels),
      # runs alternated in that order, same environment otherwise
      run=0
      for pdl in ${PDL_LEVELS:-0 1 0 1}; do
        run=$((run + 1))
        log="$out/model_cuda_run$run-pdl$pdl.log"
        PAGEDSERVE_CUDA_PDL=$pdl timeout "${RUN_TIMEOUT:-180}" "$bin/model_cuda" ${BENCH_ARGS:---batches 1,16,64 --repeats 3} \
          > "$log" 2>&1
        echo "== run $run, PAGEDSERVE_CUDA_PDL=$pdl (exit $?, t=${SECONDS}s)"
        grep -E "read bandwidth|decode batch|prefill" "$log"
      done
      ;;
    serve_bench)  # issue 13's serving figures: bench_serve against a dummy Llama-3.1-8B on the GPU
      mkdir -p /tmp/llama8b && cp configs/models/llama-3.1-8b/config.json /tmp/llama8b/ &&
        cp "$bin/models/tiny-qwen3/tokenizer.json" /tmp/llama8b/
      # One server per (mode, scenario): the runner's host-time / GPU-idle figures, logged at
      # shutdown, are then those of one scenario (batch 1 or 64).
      for mode in ${SERVE_MODES:-graphs}; do
        extra=""
        [[ $mode == eager ]] && extra="--enforce-eager true"
        for scenario in ${SCENARIOS:-c1 c64}; do
          "$bin/pagedserve" serve --port 8124 --served-model-name m --backend cuda --load-format dummy \
            --model /tmp/llama8b --max-model-len 4096 --max-num-seqs 64 $extra ${SERVE_ARGS:-} \
            > "$out/serve-bench-$mode-$scenario.log" 2>&1 &
          pid=$!
          for _ in $(seq 1 600); do
            curl -fsS localhost:8124/health > /dev/null 2>&1 && break
            kill -0 $pid 2> /dev/null || break
            sleep 0.5
          done
          case $scenario in
            c1) args="--num-prompts 24 --max-concurrency 1 --input-len 512 --output-len 128" ;;
            c64) args="--num-prompts 256 --max-concurrency 64 --input-len 512 --output-len 256" ;;
          esac
          "$bin/bench_serve" --port 8124 --model m $args --ignore-eos --seed 1 --scrape-metrics --no-progress \
            --result-file "$out/serve-$mode-$scenario.json" > "$out/serve-$mode-$scenario.txt" 2>&1
          echo "== $mode $scenario (exit $?)"
          grep -E "throughput|TTFT|TPOT|ITL|Successful|Failed|server" "$out/serve-$mode-$scenario.txt" | head -24
          kill -TERM $pid
          wait $pid
          grep -hE "CUDA graphs|CUDA steps|KV cache on GPU" "$out/serve-bench-$mode-$scenario.log"
        done
      done
      ;;
    *) echo "unknown step $step" && exit 2 ;;
  esac
done
