# Sourced by the fetch scripts: npm_pack_verified SPEC ARCHIVE SHA256 DIR
# Leaves DIR/ARCHIVE (from `npm pack SPEC`, fetched only when missing) and checks its sha256; on a
# mismatch deletes it, says which file and both hashes, and exits 1.
npm_pack_verified() {
  local spec=$1 archive=$2 sha=$3 dir=$4
  mkdir -p "$dir"
  if [ ! -f "$dir/$archive" ]; then
    echo "$(basename "$0"): npm pack $spec"
    (cd "$dir" && npm pack --silent "$spec" >/dev/null)
  fi
  local actual
  actual=$(sha256sum "$dir/$archive" | cut -d' ' -f1)
  if [ "$actual" != "$sha" ]; then
    echo "$(basename "$0"): sha256 mismatch for $dir/$archive" >&2
    echo "  expected $sha" >&2
    echo "  actual   $actual" >&2
    rm -f "$dir/$archive"
    exit 1
  fi
}
