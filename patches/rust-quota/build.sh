#!/usr/bin/env bash
# Rebuilds quota.wasm and quota-fixed.wasm with Debian's rustc (apt-get install rustc
# libstd-rust-dev-wasm32; /usr/bin/rustc, not a newer one earlier on PATH). The built files are
# checked in, so tests need no Rust toolchain. Both builds use the same --crate-name: Rust mangles
# it into every symbol. --emit-relocs lets `wasm-hotpatch diff` check statics exactly.
set -euo pipefail
cd "$(dirname "$0")"
for name in quota quota-fixed; do
  /usr/bin/rustc --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib -O -C panic=abort -C strip=debuginfo \
    -C link-arg=--emit-relocs --crate-name quota -o "$name.wasm" "$name.rs"
  echo "built $(pwd)/$name.wasm"
done
