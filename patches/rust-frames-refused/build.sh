#!/usr/bin/env bash
# Rebuilds frames.wasm and frames-fixed.wasm with Debian's rustc (apt-get install rustc
# libstd-rust-dev-wasm32; /usr/bin/rustc, not a newer one earlier on PATH). The built files are
# checked in, so tests need no Rust toolchain. --emit-relocs lets `wasm-hotpatch diff` check
# statics exactly.
set -euo pipefail
cd "$(dirname "$0")"
for name in frames frames-fixed; do
  /usr/bin/rustc --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib -O -C panic=abort -C strip=debuginfo \
    -C link-arg=--emit-relocs --crate-name frames -o "$name.wasm" "$name.rs"
  echo "built $(pwd)/$name.wasm"
done
