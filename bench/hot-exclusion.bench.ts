// Question: on interpreters, does leaving the hottest functions without the entry check (issue 15,
// profile-guided exclusion) bring the cost of being patchable to 1.03×, and how many must go?
// Each interpreter's workload runs once on a counting build (prepareProfile) to find its hottest
// functions; then the original, an A/A copy and baselines excluding 0, 8, 32 and 128 of them run
// side by side with the interleaved estimator.
import { prepare } from '../src/prepare/prepare.js';
import { type CountingBuild, type Profile, prepareProfile, readProfile } from '../src/prepare/profile.js';
import { quick, type Row, type Suite } from './_harness.js';
import { interleave } from './_interleave.js';
import { lua, luaWasm, quickJs, quickJsWasm } from './_interpreters.js';
import { brotli, brotliWasm, C_CASES, cWorkload, sampleText, sqlJs, sqlJsWasm, sqlQuery } from './_libraries.js';

const AA = 'original again (A/A)';
const AA_APART = 'original compiled apart (A/A′)';

/**
 * The original with an empty custom section appended: the same code, but other bytes, so V8
 * compiles it on its own; the A/A copy has identical bytes, which V8's module cache (keyed on the
 * bytes) may answer with the original's compiled module. Its spread is the noise floor of a separate compile,
 * which is what every prepared variant is.
 */
function compiledApart(original: Uint8Array): Uint8Array {
  const name = new TextEncoder().encode('aa');
  const out = new Uint8Array(original.length + 3 + name.length);
  out.set(original);
  out.set([0, 1 + name.length, name.length, ...name], original.length);
  return out;
}
const COUNTS = [0, 8, 32, 128];

/** Runs `load` on a counting build, captures the instance its glue makes, and reads the profile after `rounds` rounds. */
async function profileOf(build: CountingBuild, load: (bytes: Uint8Array) => Promise<() => unknown>, rounds: number): Promise<Profile> {
  const instantiate = WebAssembly.instantiate;
  let instance: WebAssembly.Instance | undefined;
  // The toolchains' glue instantiates for us: keep the instance that exports the counters.
  WebAssembly.instantiate = (async (...args: Parameters<typeof instantiate>) => {
    const result = (await instantiate(...(args as [BufferSource, WebAssembly.Imports]))) as unknown as WebAssembly.WebAssemblyInstantiatedSource | WebAssembly.Instance;
    const made = result instanceof WebAssembly.Instance ? result : result.instance;
    if ('hotpatch.calls' in made.exports) instance = made;
    return result;
  }) as typeof instantiate;
  try {
    const run = await load(build.bytes);
    for (let i = 0; i < rounds; i++) run();
  } finally {
    WebAssembly.instantiate = instantiate;
  }
  if (!instance) throw new Error('the glue did not instantiate the counting build through WebAssembly.instantiate');
  return readProfile(build, instance);
}

/** `^name$` for prepare's `only`, with the name's regex characters escaped. */
const exactly = (names: readonly string[]): string => `^(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`;

async function rowsFor(
  caseName: string,
  original: Uint8Array,
  load: (bytes: Uint8Array) => Promise<() => unknown>,
  notes: string[],
  { counts = COUNTS, breakdown = true }: { counts?: readonly number[]; breakdown?: boolean } = {},
): Promise<Row[]> {
  const counting = await prepareProfile(original);
  const profile = await profileOf(counting, load, quick ? 2 : 10);
  const bytes: Record<string, Uint8Array> = { original, [AA]: original.slice(), [AA_APART]: compiledApart(original) };
  for (const count of counts) {
    const baseline = await prepare(original, count === 0 ? {} : { excludeHot: { profile, count } });
    const m = baseline.manifest;
    const defined = m.functions.filter((f) => f.reason !== 'imported').length;
    const share = (baseline.excludedHot ?? []).reduce((s, h) => s + h.share, 0);
    bytes[`entry, ${count} hottest excluded (${((100 * m.slots) / defined).toFixed(1)}% patchable, ${(100 * share).toFixed(0)}% of calls unchecked)`] = baseline.bytes;
  }
  if (breakdown) {
    // Where the rest of the cost is: one uncalled function patchable (the table, flags and
    // exports, no check on any call), and only the 128 hottest patchable.
    const called = new Set(profile.functions.map((f) => f.index));
    const cold = counting.functions.find((f) => !called.has(f.index))!;
    bytes['structure only (1 uncalled function patchable)'] = (await prepare(original, { only: exactly([cold.name]) })).bytes;
    bytes['only the 128 hottest patchable'] = (await prepare(original, { only: exactly(profile.functions.slice(0, 128).map((f) => f.name)) })).bytes;
    // Calls are counted, not time: a big function called rarely but running long (the
    // interpreter's loop) keeps its check. Exclude the 8 largest called functions too.
    const largest = [...profile.functions].sort((x, y) => y.size - x.size).slice(0, 8);
    const both = await prepare(original, { exclude: exactly(largest.map((f) => f.name)), excludeHot: { profile, count: 128 } });
    notes.push(`${caseName}: the 8 largest called functions: ${largest.map((f) => `${f.name} (${f.size} B, ${f.calls} calls)`).join(', ')}.`);
    bytes[`128 hottest and the 8 largest called excluded (${((100 * both.manifest.slots) / counting.functions.length).toFixed(1)}% patchable)`] = both.bytes;
  }
  const top = profile.functions.slice(0, 8).map((f) => `${f.name} ${((100 * f.calls) / profile.total).toFixed(1)}%`);
  notes.push(`${caseName}: ${profile.functions.length} functions called, ${profile.total} calls in the profiling rounds; hottest: ${top.join(', ')}.`);
  const loaded: Record<string, () => unknown> = {};
  for (const [name, b] of Object.entries(bytes)) loaded[name] = await load(b);
  return interleave(caseName, loaded, { rounds: quick ? 6 : 100 });
}

export default async function hotExclusion(): Promise<Suite> {
  const notes: string[] = [];
  const rows = [
    ...(await rowsFor('QuickJS: fib(16), a property loop and string joins (quickjs-emscripten)', quickJsWasm(), quickJs, notes)),
    ...(await rowsFor('Lua 5.4: fib(16), a table loop and string joins (wasmoon, emscripten)', luaWasm(), lua, notes)),
  ];
  // The other workloads of call-overhead, with their 8 hottest functions excluded.
  const others = { counts: [0, 8], breakdown: false };
  for (const [name, run] of C_CASES) {
    const load = async (b: Uint8Array) =>
      (
        (e) => () =>
          run(e)
      )((await WebAssembly.instantiate(b as BufferSource)).instance.exports as Record<string, (...a: number[]) => number>);
    rows.push(...(await rowsFor(name, cWorkload(), load, notes, others)));
  }
  rows.push(...(await rowsFor('sql.js: GROUP BY query over 2000 rows (emscripten)', sqlJsWasm(), async (b) => sqlQuery(await sqlJs(b)), notes, others)));
  const text = sampleText();
  rows.push(
    ...(await rowsFor(
      'brotli-wasm: compress 64 KiB at quality 5 (Rust, wasm-bindgen)',
      brotliWasm(),
      async (b) =>
        (
          (m) => () =>
            m.compress(text, { quality: 5 })
        )(await brotli(b)),
      notes,
      others,
    )),
  );
  return {
    name: 'Cost of being patchable with the hottest functions excluded',
    question:
      'Original vs entry-dispatch baselines that leave the 0, 8, 32 or 128 functions taking the most calls (profiled on the same workload) without the entry check, next to an A/A row. Reference: the original.',
    rows,
    notes: [
      'Interleaved estimator (bench/_interleave.ts), 100 rounds of min-of-5: ratios within a round, median and IQR over rounds.',
      'A/A: the original bytes instantiated again; identical bytes may share the compiled code of the original (the module cache of V8), so it can show instance-level noise only. A/A′: the original plus an empty custom section, compiled on its own like every prepared variant: the noise floor of code placement.',
      'The profile comes from the same workload the rows time (prepareProfile + readProfile); a different workload may have other hot functions.',
      'An excluded function can still be fixed: diff carries a change to it through its callers (they are patched, calling the fixed copy in the patch).',
      ...notes,
    ],
  };
}
