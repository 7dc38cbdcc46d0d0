// Question: what does being patchable cost a guest that is not patched? Original vs prepared,
// per dispatch design, on call-heavy code, real libraries and two interpreters, side by side,
// next to an A/A row (a second instance of the original) that shows the noise floor.
import { prepare } from '../src/prepare/prepare.js';
import type { Row, Suite } from './_harness.js';
import { interleave } from './_interleave.js';
import { lua, luaWasm, quickJs, quickJsWasm } from './_interpreters.js';
import { brotli, brotliWasm, C_CASES, cWorkload, sampleText, sqlJs, sqlJsWasm, sqlQuery } from './_libraries.js';

const AA = 'original again (A/A)';

/** Every variant of a module: the reference, the same bytes instantiated again, and each dispatch design. */
async function variants(original: Uint8Array): Promise<Record<string, Uint8Array>> {
  return {
    original,
    [AA]: original.slice(),
    'prepared (entry)': (await prepare(original, { dispatch: 'entry' })).bytes,
    'prepared (indirect)': (await prepare(original, { dispatch: 'indirect' })).bytes,
  };
}

/** Instantiates every variant through `make` (its own glue, one instance each), in order. */
async function each<T>(bytes: Record<string, Uint8Array>, make: (b: Uint8Array) => Promise<T>): Promise<Record<string, T>> {
  const out: Record<string, T> = {};
  for (const [name, b] of Object.entries(bytes)) out[name] = await make(b);
  return out;
}

export default async function callOverhead(): Promise<Suite> {
  const rows: Row[] = [];
  const c = await each(await variants(cWorkload()), async (b) => (await WebAssembly.instantiate(b as BufferSource)).instance.exports as Record<string, (...a: number[]) => number>);
  for (const [name, run] of C_CASES) rows.push(...interleave(name, Object.fromEntries(Object.entries(c).map(([k, e]) => [k, () => run(e)]))));

  rows.push(...interleave('sql.js: GROUP BY query over 2000 rows (emscripten)', await each(await variants(sqlJsWasm()), async (b) => sqlQuery(await sqlJs(b)))));

  const text = sampleText();
  rows.push(
    ...interleave(
      'brotli-wasm: compress 64 KiB at quality 5 (Rust, wasm-bindgen)',
      await each(await variants(brotliWasm()), async (b) =>
        (
          (m) => () =>
            m.compress(text, { quality: 5 })
        )(await brotli(b)),
      ),
    ),
  );

  rows.push(...interleave('QuickJS: fib(16), a property loop and string joins (quickjs-emscripten)', await each(await variants(quickJsWasm()), quickJs)));
  rows.push(...interleave('Lua 5.4: fib(16), a table loop and string joins (wasmoon, emscripten)', await each(await variants(luaWasm()), lua)));

  return {
    name: 'Cost of being patchable (unpatched guest)',
    question: 'Original module vs the same module prepared, for each dispatch design, next to the original against a second instance of itself (A/A: the noise floor). Reference: the original.',
    rows,
    notes: [
      'Interleaved: many short rounds, every variant once per round in rotating order, each the minimum of a few back-to-back runs; a ratio is the median over rounds of variant ÷ reference within the same round, with its interquartile range. A slow phase of this bimodal machine hits a whole round alike and cancels in the ratio.',
      'A/A: the original bytes instantiated a second time. A prepared ratio inside the A/A spread is indistinguishable from noise.',
      'entry: direct calls stay direct; each patchable function starts with `global.get $flags; i32.const $bit; i32.and; if` (13 functions share a flag global), diverting through its slot only when patched (the default).',
      'indirect: every call to a patchable function is a `call_indirect` on the hotpatch table.',
    ],
  };
}
