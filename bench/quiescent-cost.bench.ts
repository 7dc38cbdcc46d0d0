// Question: what does quiescent consistency cost a guest that is never patched? The same module
// prepared with and without it (each patchable function counts its activations, inside a try).
import { readFileSync } from 'node:fs';
import { prepare } from '../src/prepare/prepare.js';
import { compare, type Row, type Suite } from './_harness.js';
import { sqlJs, sqlJsWasm, sqlQuery } from './_libraries.js';

const workload = new Uint8Array(readFileSync(new URL('../test/fixtures/c/workload.wasm', import.meta.url)));

export default async function quiescentCost(): Promise<Suite> {
  const rows: Row[] = [];
  const variants = async (original: Uint8Array) => ({
    'prepared (reference)': (await prepare(original)).bytes,
    'prepared, quiescent': (await prepare(original, { consistency: 'quiescent' })).bytes,
  });
  const c = await variants(workload);
  const inst = Object.fromEntries(
    await Promise.all(Object.entries(c).map(async ([k, b]) => [k, (await WebAssembly.instantiate(b as BufferSource)).instance.exports as Record<string, (...a: number[]) => number>] as const)),
  );
  const each = (fn: (e: Record<string, (...a: number[]) => number>) => unknown) => Object.fromEntries(Object.entries(inst).map(([k, e]) => [k, { fn: () => fn(e) }]));
  rows.push(...(await compare('fib(24), recursive (C, clang -O2)', each((e) => e.fib!(24)))));
  rows.push(...(await compare('call loop, 2e5 calls (C)', each((e) => e.call_loop!(200_000)))));
  rows.push(...(await compare('quicksort 2000 keys through comparator pointers (C)', each((e) => (e.sort_checksum!(2000, 2), e.reset!())))));
  const sql = await variants(sqlJsWasm());
  rows.push(...(await compare('sql.js: GROUP BY query over 2000 rows (emscripten)', Object.fromEntries(await Promise.all(Object.entries(sql).map(async ([k, b]) => [k, { fn: sqlQuery(await sqlJs(b)) }] as const))))));
  return {
    name: 'Cost of quiescent consistency',
    question: 'A baseline prepared with `consistency: "quiescent"` next to the same baseline without, unpatched.',
    rows,
    notes: ['Each call of a patchable function adds two updates of its count (entry, exit) and enters a try block.'],
  };
}
