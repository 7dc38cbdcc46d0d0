import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';
import { wasmFixture } from './helpers.js';

const require = createRequire(import.meta.url);

/** sql.js (SQLite compiled by emscripten): a fresh copy of its own glue each time, fed our bytes. */
async function loadSqlJs(wasmBinary: Uint8Array, extra: Record<string, unknown> = {}) {
  const path = require.resolve('sql.js/dist/sql-wasm.js');
  delete require.cache[path]; // the glue caches its init promise per module instance
  const initSqlJs = require(path) as (config: object) => Promise<any>;
  return initSqlJs({ wasmBinary, ...extra });
}

/** The library's own workload: schema, inserts, joins, aggregates, text functions, an exported file. */
function sqlWorkload(SQL: any) {
  const db = new SQL.Database();
  db.run('CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL, tag TEXT)');
  db.run('CREATE TABLE sale (item INTEGER, qty INTEGER)');
  const insert = db.prepare('INSERT INTO item VALUES (?, ?, ?, ?)');
  for (let i = 0; i < 500; i++) insert.run([i, `item-${i}`, ((i * 37) % 101) / 3, ['a', 'b', 'c'][i % 3]]);
  insert.free();
  db.run('INSERT INTO sale SELECT id % 97, id % 13 FROM item');
  const results = [
    db.exec('SELECT tag, count(*), round(sum(price), 4), max(name) FROM item GROUP BY tag ORDER BY tag'),
    db.exec('SELECT i.name, sum(s.qty) q FROM item i JOIN sale s ON s.item = i.id GROUP BY i.id ORDER BY q DESC, i.name LIMIT 5'),
    db.exec("SELECT upper(name), length(name), substr(name, 3, 4), printf('%08.3f', price) FROM item WHERE name LIKE 'item-4_' ORDER BY id"),
    db.exec("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200) SELECT sum(x * x), group_concat(x % 7, '') FROM n"),
  ];
  const file = db.export();
  db.close();
  return { results, file: Buffer.from(file).toString('base64') };
}

describe('real toolchain output: prepared modules run their own glue unchanged', () => {
  it('sql.js (C via emscripten): same query results and database file', async () => {
    const original = new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm')));
    const baseline = await prepare(original);
    expect(baseline.manifest.slots).toBeGreaterThan(1000);
    const expected = sqlWorkload(await loadSqlJs(original));
    const actual = sqlWorkload(await loadSqlJs(baseline.bytes));
    expect(actual).toEqual(expected);
    expect(expected.results[0]![0].values).toHaveLength(3);
  });

  it('sql.js with indirect dispatch too', async () => {
    const original = new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm')));
    const baseline = await prepare(original, { dispatch: 'indirect' });
    expect(sqlWorkload(await loadSqlJs(baseline.bytes))).toEqual(sqlWorkload(await loadSqlJs(original)));
  });

  it('brotli-wasm (Rust via wasm-bindgen): same compressed bytes, round trips', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'brotli-'));
    // The package exports only its entry points: find the web build next to the main one.
    const pkg = dirname(require.resolve('brotli-wasm'));
    const glue = join(pkg, 'pkg.web/brotli_wasm.js');
    const load = async (name: string, bytes: Uint8Array) => {
      copyFileSync(glue, join(dir, `${name}.js`));
      const mod = await import(pathToFileURL(join(dir, `${name}.js`)).href);
      await mod.default(bytes);
      return mod;
    };
    const original = new Uint8Array(readFileSync(join(pkg, 'pkg.web/brotli_wasm_bg.wasm')));
    const baseline = await prepare(original);
    const a = await load('original', original);
    const b = await load('prepared', baseline.bytes);
    const text = new TextEncoder().encode(readFileSync(require.resolve('sql.js/dist/sql-wasm.js'), 'utf8').slice(0, 200_000));
    for (const quality of [1, 5, 11]) {
      const ca = a.compress(text, { quality });
      const cb = b.compress(text, { quality });
      expect(Buffer.from(cb).equals(Buffer.from(ca))).toBe(true);
      expect(Buffer.from(b.decompress(cb)).equals(Buffer.from(text))).toBe(true);
    }
    expect(() => b.decompress(new Uint8Array([1, 2, 3, 4]))).toThrow();
  });

  it('C via clang: the workload gives the same checksums', async () => {
    const original = wasmFixture('c/workload.wasm');
    for (const dispatch of ['entry', 'indirect'] as const) {
      const baseline = await prepare(original, { dispatch });
      const run = async (bytes: Uint8Array) => {
        const e = (await WebAssembly.instantiate(bytes as BufferSource)).instance.exports as Record<string, any>;
        const out = [e.fib(20), e.call_loop(100000), e.sort_checksum(3000, 0), e.sort_checksum(3000, 1), e.sort_checksum(3000, 2), e.table_checksum(5000), e.calls()];
        e.reset();
        return out;
      };
      expect(await run(baseline.bytes)).toEqual(await run(original));
    }
  });
});

describe('adopting an instance made by a toolchain glue', () => {
  let baselineBytes: Uint8Array;
  beforeAll(async () => {
    baselineBytes = (await prepare(new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm'))))).bytes;
  });

  it('sql.js: patch sqlite3_changes through emscripten instantiateWasm, keep the database, revert', async () => {
    let guest: Guest | undefined;
    const SQL = await loadSqlJs(baselineBytes, {
      // emscripten's documented hook: we instantiate, the glue carries on with our instance.
      instantiateWasm(imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) {
        WebAssembly.instantiate(baselineBytes as BufferSource, imports).then(({ instance, module }) => {
          guest = Guest.adopt(instance, module);
          done(instance, module);
        });
        return {};
      },
    });
    const db = new SQL.Database();
    db.run('CREATE TABLE t (x)');
    db.run('INSERT INTO t VALUES (1), (2), (3)');
    expect(db.getRowsModified()).toBe(3);
    // sql.js minifies export names; its glue maps `_sqlite3_changes` to export "Da".
    const { bytes } = await buildPatch({
      wat: '(module (func (export "changes") (param i32) (result i32) (i32.const 42)))',
      manifest: { id: 'changes-42', sequence: 1, targets: [{ function: 'Da', export: 'changes' }] },
      baseline: baselineBytes,
    });
    const patch = guest!.apply(await guest!.load(bytes));
    expect(db.getRowsModified()).toBe(42);
    db.run('INSERT INTO t VALUES (4)');
    expect(db.exec('SELECT sum(x) FROM t')[0].values).toEqual([[10]]);
    guest!.revert(patch);
    db.run('DELETE FROM t WHERE x > 2');
    expect(db.getRowsModified()).toBe(2);
    expect(db.exec('SELECT group_concat(x) FROM t')[0].values).toEqual([['1,2']]);
  });
});
