#!/usr/bin/env bash
# Rebuilds accounts.wasm, accounts-fixed.wasm and accounts-field.wasm as a release cdylib (-O, no --emit-relocs, debug
# info stripped) with Debian's /usr/bin/rustc 1.63 and libstd-rust-dev-wasm32. Both are compiled
# as accounts.rs with the same --crate-name, next to hotpatch_shadow.rs: the file name is in every
# panic location and the crate name in every symbol. The built files are checked in.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp hotpatch_shadow.rs "$tmp/"
for name in accounts accounts-fixed accounts-field; do
  cp "$name.rs" "$tmp/accounts.rs"
  (cd "$tmp" && /usr/bin/rustc --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib -O -C strip=debuginfo \
    --crate-name accounts -o out.wasm accounts.rs)
  cp "$tmp/out.wasm" "$name.wasm"
  echo "built $(pwd)/$name.wasm"
done
