#!/usr/bin/env bash
# Rebuilds service.wasm and service-fixed.wasm (Debian: apt-get install clang lld). The built
# files are checked in, so the tests, the examples and the demo need no C toolchain.
# Compile and link separately: clang's driver runs wasm-opt after linking when it finds one on
# PATH, which would make the output depend on the machine (and breaks --emit-relocs data).
# --emit-relocs keeps the linker's relocations, so `wasm-hotpatch diff` checks statics exactly.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in service service-fixed; do
  clang --target=wasm32 -O2 -nostdlib -c -o "$tmp/$name.o" "$name.c"
  wasm-ld --no-entry --emit-relocs -o "$name.wasm" "$tmp/$name.o"
  echo "built $(pwd)/$name.wasm"
done
