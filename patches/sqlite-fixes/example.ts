// SQLite 3.53.2 built by emscripten -O2 (no names, no relocations), running its own workload
// through its own JS glue, with a baseline adopted by the engine so patches apply while it runs.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { Guest, ShadowState } from '../../src/engine/index.js';

const require = createRequire(import.meta.url);
const here = (file: string): string => new URL(file, import.meta.url).pathname;
/** A build in this folder: `sqlite` (pristine) or `sqlite-<fix>`. */
export const build = (name: string): Uint8Array => new Uint8Array(readFileSync(here(`${name}.wasm`)));

/** A running SQLite: its guest, its shadow state store, and its workload's query function. */
export interface RunningSqlite {
  readonly guest: Guest;
  readonly shadow: ShadowState;
  /** Runs SQL in the workload's one connection: rows as `a|b` lines, or `error: …`. */
  query(sql: string): string;
}

/**
 * Starts the pristine glue (sqlite.cjs) on the given baseline bytes. emscripten's `instantiateWasm`
 * hook lets us instantiate, adopt the instance as a guest (with shadow state as a host import
 * module for patches) and hand it back to the glue, which carries on as usual.
 */
export async function startSqlite(baseline: Uint8Array): Promise<RunningSqlite> {
  let guest: Guest | undefined;
  let instance: WebAssembly.Instance | undefined;
  const shadow = ShadowState.fromExports(() => instance!.exports);
  // The glue's module object, as far as we use it: the workload's open call and emscripten's cwrap.
  type SqliteModule = { _wl_open(): number; cwrap(name: string, returns: string, args: string[]): unknown };
  const createSqlite = require(here('sqlite.cjs')) as (config: object) => Promise<SqliteModule>;
  const Module = await createSqlite({
    instantiateWasm(imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) {
      WebAssembly.instantiate(baseline as BufferSource, imports).then((result) => {
        instance = result.instance;
        guest = Guest.adopt(result.instance, result.module, { hostImports: shadow.imports });
        done(result.instance, result.module);
      });
      return {};
    },
  });
  if (Module._wl_open() !== 0) throw new Error('sqlite3_open failed');
  const query = Module.cwrap('wl_query', 'string', ['string']) as (sql: string) => string;
  return { guest: guest!, shadow, query };
}

/** The workload's data: a schema, rows, an index, and what it reads back (to check it intact). */
export function seed(db: RunningSqlite): string {
  db.query('CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL, tag TEXT); CREATE INDEX item_tag ON item(tag)');
  db.query("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO item SELECT i, 'item-' || i, (i * 37) % 101 / 3.0, char(97 + i % 4) FROM n");
  return digest(db);
}

/** Everything the workload can read back, and SQLite's own integrity check. */
export function digest(db: RunningSqlite): string {
  return [
    db.query('PRAGMA integrity_check'),
    db.query('SELECT tag, count(*), round(sum(price), 4), max(name) FROM item GROUP BY tag ORDER BY tag'),
    db.query("SELECT count(*), sum(length(name)), group_concat(id % 7, '') FROM (SELECT * FROM item WHERE tag = 'b' ORDER BY id LIMIT 50)"),
  ].join('');
}
