#!/usr/bin/env bash
# Rebuilds records.wasm and records-fixed.wasm the way a wasm-bindgen crate ships: a release cdylib
# (-O), no --emit-relocs, debug info stripped (rustc keeps the name section). Debian's
# /usr/bin/rustc 1.63 with libstd-rust-dev-wasm32. Both are compiled as records.rs with the same
# --crate-name: the file name is in every panic location and the crate name in every symbol.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in records records-fixed; do
  cp "$name.rs" "$tmp/records.rs"
  (cd "$tmp" && /usr/bin/rustc --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib -O -C strip=debuginfo \
    --crate-name records -o out.wasm records.rs)
  cp "$tmp/out.wasm" "$name.wasm"
  echo "built $(pwd)/$name.wasm"
done
