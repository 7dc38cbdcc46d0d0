// Question: what does quiescent consistency cost a guest that is never patched? The same module
// prepared with and without it (each patchable function counts its activations, inside a try).
import { prepare } from '../src/prepare/prepare.js';
import { compare, type Row, type Suite } from './_harness.js';
import { C_CASES, cWorkload, sqlJs, sqlJsWasm, sqlQuery } from './_libraries.js';

const workload = cWorkload();

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
  for (const [name, run] of C_CASES) rows.push(...(await compare(name, each(run))));
  const sql = await variants(sqlJsWasm());
  rows.push(
    ...(await compare(
      'sql.js: GROUP BY query over 2000 rows (emscripten)',
      Object.fromEntries(await Promise.all(Object.entries(sql).map(async ([k, b]) => [k, { fn: sqlQuery(await sqlJs(b)) }] as const))),
    )),
  );
  return {
    name: 'Cost of quiescent consistency',
    question: 'A baseline prepared with `consistency: "quiescent"` next to the same baseline without, unpatched.',
    rows,
    notes: ['Each call of a patchable function adds two updates of its count (entry, exit) and enters a try block.'],
  };
}
