// Question: how long does `diff` take on two real builds of about 1 MB? Next to V8 compiling one
// of them, and to `prepare` of the old one, in the same run. Target: under 2 s.
import { diffBuilds } from '../src/build/diff.js';
import { prepare } from '../src/prepare/prepare.js';
import { compare, type Suite } from './_harness.js';
import { editOneConstant } from './_edit.js';
import { brotliWasm, sqlJsWasm } from './_libraries.js';
import { readFileSync } from 'node:fs';

const fixture = (path: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../patches/${path}`, import.meta.url)));

/**
 * Upstream-style fixes (patches/sqlite-fixes, patches/rust-lines): builds whose line numbers moved
 * below the edit, so diff compares hundreds of functions instruction by instruction, and a struct
 * layout change (every function touching the struct differs).
 */
export async function fixCases(options: { rounds?: number; iterations?: number } = {}) {
  const rows = [];
  const sqlite = fixture('sqlite-fixes/sqlite.wasm');
  const sqliteBaseline = (await prepare(sqlite)).manifest;
  const records = fixture('rust-lines/records.wasm');
  const recordsBaseline = (await prepare(records)).manifest;
  const cases = [
    ['SQLite 3.53.2 (emscripten -O2, 992 KB, no names): 4 lines added, 11 functions left out', sqlite, fixture('sqlite-fixes/sqlite-lines-added.wasm'), sqliteBaseline],
    ['SQLite: a struct field added (refused, 370 functions differ)', sqlite, fixture('sqlite-fixes/sqlite-layout.wasm'), sqliteBaseline],
    ['Rust cdylib (rustc -O, 28 KB): 4 lines added, panic locations left out', records, fixture('rust-lines/records-fixed.wasm'), recordsBaseline],
  ] as const;
  for (const [name, old, fresh, baseline] of cases) {
    rows.push(
      ...(await compare(
        name,
        {
          'WebAssembly.compile (reference)': { fn: () => WebAssembly.compile(old as BufferSource) },
          'diffBuilds(old, new)': { fn: () => diffBuilds(old, fresh, { baseline, id: 'bench' }) },
        },
        { rounds: options.rounds ?? 3, time: 0, iterations: options.iterations ?? 3 },
      )),
    );
  }
  return rows;
}

export default async function diffTime(): Promise<Suite> {
  const rows = [];
  for (const [name, old] of [
    ['brotli-wasm (Rust), 1.0 MB, one function edited', brotliWasm()],
    ['sql.js (emscripten), 688 KB, one function edited', sqlJsWasm()],
  ] as const) {
    const { bytes: fresh } = editOneConstant(old, 200);
    const baseline = await prepare(old);
    rows.push(
      ...(await compare(
        name,
        {
          'WebAssembly.compile (reference)': { fn: () => WebAssembly.compile(old as BufferSource) },
          'prepare(old)': { fn: () => prepare(old) },
          'diffBuilds(old, new)': { fn: () => diffBuilds(old, fresh, { baseline: baseline.manifest, id: 'bench' }) },
        },
        { rounds: 3, time: 1000, iterations: 3 },
      )),
    );
  }
  rows.push(...(await fixCases()));
  return {
    name: 'diff time',
    question: 'Wall time of `diffBuilds` on two real ~1 MB builds that differ in one function, in one process. Target: under 2 s.',
    rows,
    notes: [
      'sql.js has no name section: its 1,500 functions are matched by export name and structure.',
      'The fix cases compare every function that differs instruction by instruction (line numbers, field offsets) after matching by shape.',
    ],
  };
}
