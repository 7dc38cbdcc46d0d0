#!/bin/sh
# Rebuilds the SQLite builds: the pristine amalgamation (3.53.2, from npm's better-sqlite3 deps/)
# and one build per fix in fixes/, each the amalgamation with that one unified diff applied.
# emscripten -O2 the way it ships: no name section, no relocations. Needs Debian's emscripten
# (3.1.6) and node-acorn; takes about 1.5 minutes per build.
set -e
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gunzip -c sqlite3.c.gz > "$tmp/sqlite3.c"
FLAGS="-O2 -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_DEPRECATED -DSQLITE_DQS=0 -I. \
  -sMODULARIZE=1 -sEXPORT_NAME=createSqlite -sALLOW_MEMORY_GROWTH=1 -sEXPORTED_RUNTIME_METHODS=ccall,cwrap"
build() { # source output [extra flags]
  src=$1; out=$2; shift 2
  NODE_PATH=/usr/share/nodejs emcc $FLAGS "$@" -o "$tmp/$out.js" "$src" workload.c
  cp "$tmp/$out.wasm" "$out.wasm"
}
only=${1:-all}
if [ "$only" = all ] || [ "$only" = sqlite ]; then
  build "$tmp/sqlite3.c" sqlite -sEXPORTED_FUNCTIONS=_wl_open,_wl_query
  cp "$tmp/sqlite.js" sqlite.cjs # CommonJS glue; the package is "type": "module"
fi
for fix in fixes/*.diff; do
  name=$(basename "$fix" .diff)
  [ "$only" = all ] || [ "$only" = "$name" ] || continue
  patch -s -o "$tmp/$name.c" "$tmp/sqlite3.c" < "$fix"
  case $name in
    # The fix calls the host's shadow-state imports and exports its post-revert hook.
    shadow) build "$tmp/$name.c" "sqlite-$name" -sEXPORTED_FUNCTIONS=_wl_open,_wl_query,_hotpatch_post_revert -sERROR_ON_UNDEFINED_SYMBOLS=0 ;;
    *) build "$tmp/$name.c" "sqlite-$name" -sEXPORTED_FUNCTIONS=_wl_open,_wl_query ;;
  esac
done
