// Real library workloads shared by the benchmarks: sql.js (emscripten) and brotli-wasm (wasm-bindgen).
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);

export const sqlJsWasm = (): Uint8Array => new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm')));
const brotliDir = join(dirname(require.resolve('brotli-wasm')), 'pkg.web');
export const brotliWasm = (): Uint8Array => new Uint8Array(readFileSync(join(brotliDir, 'brotli_wasm_bg.wasm')));

/** A fresh sql.js glue instance running the given module bytes. */
export async function sqlJs(wasmBinary: Uint8Array): Promise<any> {
  const path = require.resolve('sql.js/dist/sql-wasm.js');
  delete require.cache[path];
  return (require(path) as (c: object) => Promise<any>)({ wasmBinary });
}

/** A database with some rows, and a query workload over it. */
export function sqlQuery(SQL: any): () => unknown {
  const db = new SQL.Database();
  db.run('CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL, tag TEXT)');
  const insert = db.prepare('INSERT INTO item VALUES (?, ?, ?, ?)');
  for (let i = 0; i < 2000; i++) insert.run([i, `item-${i}`, (i * 37) % 101, ['a', 'b', 'c', 'd'][i % 4]]);
  insert.free();
  const stmt = db.prepare("SELECT tag, count(*), sum(price), max(name) FROM item WHERE name LIKE '%1%' GROUP BY tag ORDER BY tag");
  return () => {
    const rows = [];
    while (stmt.step()) rows.push(stmt.get());
    stmt.reset();
    return rows;
  };
}

let copies = 0;
/** A fresh copy of brotli-wasm's web glue, initialised with the given bytes. */
export async function brotli(bytes: Uint8Array): Promise<{ compress(b: Uint8Array, o?: object): Uint8Array; decompress(b: Uint8Array): Uint8Array }> {
  const dir = mkdtempSync(join(tmpdir(), 'brotli-bench-'));
  const file = join(dir, `glue${copies++}.js`);
  copyFileSync(join(brotliDir, 'brotli_wasm.js'), file);
  const mod = await import(pathToFileURL(file).href);
  await mod.default(bytes);
  return mod;
}

/** Text to compress: the sql.js glue source, a realistic JS payload. */
export const sampleText = (): Uint8Array => new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.js')).subarray(0, 64 * 1024));

/** The C workload's call-heavy cases, one compare() case each, over named instances of it. */
export const C_CASES: readonly [string, (e: Record<string, (...a: number[]) => number>) => unknown][] = [
  ['fib(24), recursive (C, clang -O2)', (e) => e.fib!(24)],
  ['call loop, 2e5 calls of a 3-instruction function (C)', (e) => e.call_loop!(200_000)],
  [
    'quicksort 2000 keys through comparator pointers (C)',
    (e) => {
      e.sort_checksum!(2000, 2);
      return e.reset!();
    },
  ],
];

/** The C workload fixture (test/fixtures/c/workload.c). */
export const cWorkload = (): Uint8Array => new Uint8Array(readFileSync(new URL('../test/fixtures/c/workload.wasm', import.meta.url)));
