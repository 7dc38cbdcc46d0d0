#!/usr/bin/env bash
# Rebuilds records.wasm and records-fixed.wasm with cargo, the way `wasm-pack build --release`
# compiles a wasm-bindgen crate before running the wasm-bindgen CLI (which is not available here:
# the .wasm files are the CLI's input). Debian's /usr/bin/cargo and /usr/bin/rustc 1.63 with
# libstd-rust-dev-wasm32, offline against Debian's vendored crates (apt-get install
# librust-wasm-bindgen-dev; see .cargo/config.toml). Both builds are compiled from src/lib.rs in
# the same crate: the file name is in every panic location and the crate name in every symbol.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src"
cp -r .cargo Cargo.toml Cargo.lock "$tmp/"
for name in lib lib-fixed lib-newstring; do
  cp "src/$name.rs" "$tmp/src/lib.rs"
  (cd "$tmp" && RUSTC=/usr/bin/rustc /usr/bin/cargo build --release --locked --quiet)
  out=records${name#lib}.wasm
  cp "$tmp/target/wasm32-unknown-unknown/release/records.wasm" "$out"
  echo "built $(pwd)/$out"
done
