#!/usr/bin/env bash
# Rebuilds service.wasm from service.c (Debian: apt-get install clang lld). The built file is
# checked in, so the tests, the example and the demo need no C toolchain.
# Compile and link separately: clang's driver runs wasm-opt after linking when it finds one on
# PATH, which would make the output depend on the machine (and breaks --emit-relocs data).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
clang --target=wasm32 -O2 -nostdlib -c -o "$tmp/service.o" service.c
wasm-ld --no-entry --emit-relocs -o service.wasm "$tmp/service.o"
echo "built $(pwd)/service.wasm"
