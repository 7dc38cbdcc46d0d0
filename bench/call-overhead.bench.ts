// Question: what does being patchable cost a guest that is not patched? Original vs prepared,
// per dispatch design, on call-heavy code and on real library workloads, side by side.
import { prepare } from '../src/prepare/prepare.js';
import { compare, type Row, type Suite } from './_harness.js';
import { brotli, brotliWasm, C_CASES, cWorkload, sampleText, sqlJs, sqlJsWasm, sqlQuery } from './_libraries.js';

const workload = cWorkload();

async function exportsOf(bytes: Uint8Array): Promise<Record<string, (...a: number[]) => number>> {
  return (await WebAssembly.instantiate(bytes as BufferSource)).instance.exports as never;
}

async function variants(original: Uint8Array) {
  return {
    original,
    'prepared (entry)': (await prepare(original, { dispatch: 'entry' })).bytes,
    'prepared (indirect)': (await prepare(original, { dispatch: 'indirect' })).bytes,
  };
}

export default async function callOverhead(): Promise<Suite> {
  const rows: Row[] = [];
  const c = await variants(workload);
  const instances = Object.fromEntries(await Promise.all(Object.entries(c).map(async ([k, b]) => [k, await exportsOf(b)] as const)));
  const each = (fn: (e: Record<string, (...a: number[]) => number>) => unknown) =>
    Object.fromEntries(Object.entries(instances).map(([k, e]) => [k, { fn: () => fn(e) }]));

  for (const [name, run] of C_CASES) rows.push(...(await compare(name, each(run))));

  const sql = await variants(sqlJsWasm());
  const queries = Object.fromEntries(await Promise.all(Object.entries(sql).map(async ([k, b]) => [k, { fn: sqlQuery(await sqlJs(b)) }] as const)));
  rows.push(...(await compare('sql.js: GROUP BY query over 2000 rows (emscripten)', queries)));

  const br = await variants(brotliWasm());
  const text = sampleText();
  const compressors = Object.fromEntries(
    await Promise.all(Object.entries(br).map(async ([k, b]) => [k, { fn: ((m) => () => m.compress(text, { quality: 5 }))(await brotli(b)) }] as const)),
  );
  rows.push(...(await compare('brotli-wasm: compress 64 KiB at quality 5 (Rust, wasm-bindgen)', compressors)));

  return {
    name: 'Cost of being patchable (unpatched guest)',
    question: 'Original module vs the same module prepared, for each dispatch design. Reference: the original.',
    rows,
    notes: [
      'entry: direct calls stay direct; each patchable function starts with `global.get $patched; if`, diverting through its slot only when patched (the default).',
      'indirect: every call to a patchable function is a `call_indirect` on the hotpatch table.',
    ],
  };
}
