// Differential fuzzing of prepare: random valid modules (binaryen's translate-to-fuzz, plus our own
// generator of legacy exception handling, which binaryen no longer emits) run as the original and
// as a baseline in every dispatch mode, with safepoints, quiescent counting, and a patch wrapping
// every function around its original, applied throughout or switched on and off at every
// safepoint. Same calls, same results and traps, same imports called, same globals and memory.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildPatch } from '../src/build/build.js';
import { Guest, HotpatchError } from '../src/engine/index.js';
import { ByteWriter } from '../src/format/bytes.js';
import type { BaselineManifest } from '../src/format/manifest.js';
import { encodeFuncType, kindByte, parseModule } from '../src/format/module.js';
import { prepare, type PrepareOptions } from '../src/prepare/prepare.js';
import { generateLegacyEh } from './fuzz-eh.js';
import { FuzzHost, isExhaustion, observable, type Observation, type ScriptCall } from './fuzz-host.js';
import { rng } from './rng.js';

/** Every way prepare can shape a baseline, and how the wrapping patch is used with it. */
export const CONFIGS: readonly { label: string; options: PrepareOptions; patch?: 'applied' | 'toggled' }[] = [
  { label: 'entry', options: { dispatch: 'entry' } },
  { label: 'indirect', options: { dispatch: 'indirect' } },
  { label: 'entry, patched', options: { dispatch: 'entry' }, patch: 'applied' },
  { label: 'indirect, patched', options: { dispatch: 'indirect' }, patch: 'applied' },
  { label: 'entry, safepoints switching the patch', options: { dispatch: 'entry', safepoints: { loops: true, entries: true, interval: 1 } }, patch: 'toggled' },
  { label: 'entry, quiescent, patched', options: { dispatch: 'entry', consistency: 'quiescent' }, patch: 'applied' },
  {
    label: 'indirect, quiescent, safepoints switching the patch',
    options: { dispatch: 'indirect', consistency: 'quiescent', safepoints: { loops: true, entries: true, interval: 2 } },
    patch: 'toggled',
  },
  // Part of the module left unpatchable: calls cross between rewritten and untouched functions.
  { label: 'indirect, half excluded, patched', options: { dispatch: 'indirect', exclude: '[02468]$' }, patch: 'applied' },
  { label: 'entry, half excluded, loop safepoints switching the patch', options: { dispatch: 'entry', exclude: '[02468]$', safepoints: { loops: true, interval: 1 } }, patch: 'toggled' },
];

// binaryen's features that Node 20 runs; exception handling is left out (binaryen emits only the
// exnref proposal, which V8 11.3 rejects) and covered by fuzz-eh.ts.
const FEATURES = [
  '--mvp-features',
  '--enable-sign-ext',
  '--enable-mutable-globals',
  '--enable-nontrapping-float-to-int',
  '--enable-simd',
  '--enable-bulk-memory',
  '--enable-bulk-memory-opt',
  '--enable-reference-types',
  '--enable-multivalue',
  '--enable-tail-call',
  '--enable-threads',
];
const WASM_OPT = fileURLToPath(new URL('../node_modules/binaryen/bin/wasm-opt', import.meta.url));

/** A random valid module from binaryen's translate-to-fuzz mode, fed `size` bytes from `seed`. */
export async function generateTtf(seed: number, size = 4096): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), 'fuzz-prepare-'));
  try {
    const random = rng(seed);
    writeFileSync(
      join(dir, 'in.bin'),
      Uint8Array.from({ length: size }, () => Math.floor(random() * 256)),
    );
    await promisify(execFile)(process.execPath, [WASM_OPT, join(dir, 'in.bin'), '-ttf', ...FEATURES, '-o', join(dir, 'out.wasm')], { timeout: 60_000 });
    return new Uint8Array(readFileSync(join(dir, 'out.wasm')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A patch replacing every function that has an original with a wrapper that counts and (tail-)calls it. */
export async function wrappingPatch(baseline: Uint8Array, manifest: BaselineManifest, random: () => number, without: ReadonlySet<string> = new Set()): Promise<Uint8Array | undefined> {
  const targets = manifest.functions.filter((f) => f.slot !== undefined && !manifest.noOriginal?.[String(f.index)] && !without.has(String(f.index)));
  if (targets.length === 0) return undefined;
  const module = parseModule(baseline);
  const types = targets.map((f) => module.types[module.functions[f.index - module.importedFunctions]!]!);
  const n = targets.length;
  const w = new ByteWriter().bytes(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  const section = (id: number, items: Uint8Array[]) => {
    const content = new ByteWriter().u32(items.length);
    for (const item of items) content.bytes(item);
    const c = content.finish();
    w.u8(id).u32(c.length).bytes(c);
  };
  section(1, types.map(encodeFuncType));
  section(
    2,
    targets.map((f, k) => new ByteWriter().name('original').name(`#${f.index}`).u8(kindByte('func')).u32(k).finish()),
  );
  section(
    3,
    targets.map((_, k) => new ByteWriter().u32(k).finish()),
  );
  section(6, [new ByteWriter().u8(0x7f).u8(1).u8(0x41).u8(0).u8(0x0b).finish()]);
  section(7, [
    new ByteWriter().name('calls').u8(kindByte('global')).u32(0).finish(),
    ...targets.map((f, k) =>
      new ByteWriter()
        .name(`w${f.index}`)
        .u8(kindByte('func'))
        .u32(n + k)
        .finish(),
    ),
  ]);
  section(
    10,
    targets.map((_, k) => {
      const body = new ByteWriter().u32(0).u8(0x23).u32(0).u8(0x41).u8(1).u8(0x6a).u8(0x24).u32(0);
      for (let p = 0; p < types[k]!.params.length; p++) body.u8(0x20).u32(p);
      body
        .u8(random() < 0.5 ? 0x10 : 0x12)
        .u32(k)
        .u8(0x0b); // call or return_call the original
      const b = body.finish();
      return new ByteWriter().u32(b.length).bytes(b).finish();
    }),
  );
  const built = await buildPatch({ wasm: w.finish(), manifest: { id: 'wrap', sequence: 1, targets: targets.map((f) => ({ function: `#${f.index}`, export: `w${f.index}` })) }, baseline });
  return built.bytes;
}

/** How one module fared. */
export interface CaseResult {
  readonly failures: string[];
  /** Why the module was not compared, when it was not. */
  readonly skipped?: string;
  /** Configurations whose comparison stopped at a stack overflow (frame sizes differ by design). */
  readonly exhausted: number;
  readonly calls: number;
  /** Calls that reached a wrapper of the patch. */
  readonly wrapped: number;
  /** Times a safepoint applied or reverted the patch. */
  readonly switches: number;
}

function firstDifference(expected: readonly Observation[], actual: readonly Observation[]): { at: number; exhausted: boolean } | undefined {
  for (let i = 0; i < expected.length; i++) {
    const a = expected[i]!;
    const b = actual[i]!;
    if (isExhaustion(a.outcome) || isExhaustion(b.outcome)) return { at: i, exhausted: true };
    if (JSON.stringify(a) !== JSON.stringify(b)) return { at: i, exhausted: false };
  }
  return undefined;
}

function activeSlots(guest: Guest, slots: number): number[] {
  const active = (guest.exports as Record<string, any>)['hotpatch.active'] as (slot: number) => number;
  return Array.from({ length: slots }, (_, s) => s).filter((s) => active(s) !== 0);
}

function describeDifference(a: Observation, b: Observation): string {
  const cut = (v: unknown) => JSON.stringify(v).slice(0, 400);
  const fields = (Object.keys(a) as (keyof Observation)[]).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  return `${a.call} differs in ${fields.join(', ')}\n${fields.map((k) => `  ${k}: original ${cut(a[k])}\n  ${' '.repeat(k.length)}  prepared ${cut(b[k])}`).join('\n')}`;
}

type Config = (typeof CONFIGS)[number];

/** Runs the script on one configuration of the baseline; returns what each call did and what went wrong on the way. */
async function runConfig(bytes: Uint8Array, config: Config, script: readonly ScriptCall[], seed: number, without: ReadonlySet<string>, result: { switches: number }) {
  const problems: string[] = [];
  let baseline: Awaited<ReturnType<typeof prepare>>;
  try {
    baseline = await prepare(bytes, config.options);
  } catch (error) {
    if (error instanceof HotpatchError && error.code === 'E_NOTHING_TO_PATCH' && config.options.exclude) return undefined;
    throw error;
  }
  const host = new FuzzHost(bytes);
  const guest = await Guest.instantiate(baseline.bytes, host.imports());
  host.exports = guest.exports as Record<string, any>;
  const wrap = config.patch ? await wrappingPatch(baseline.bytes, baseline.manifest, rng(seed + 1), without) : undefined;
  const patch = wrap ? await guest.load(wrap) : undefined;
  if (patch && config.patch === 'applied') guest.apply(patch);
  if (patch && config.patch === 'toggled') {
    guest.setSafepointHandler(() => {
      try {
        if (patch.state === 'applied') guest.revert(patch);
        else guest.apply(patch);
        result.switches++;
      } catch (error) {
        if (!(error instanceof HotpatchError && error.code === 'E_ACTIVE')) problems.push(`safepoint: ${(error as Error).message}`);
      }
    });
  }
  const observations: Observation[] = [];
  // Quiescent baselines: after a call that ended without a trap anywhere (traps leave counts up,
  // by design), every activation count is back to zero.
  let counting = config.options.consistency === 'quiescent';
  for (const call of script) {
    const observation = host.observe(call);
    observations.push(observation);
    counting &&= host.caught === 0 && (observation.outcome.startsWith('value') || /^threw (exception|Error: thrown by the host)/.test(observation.outcome));
    const active = counting ? activeSlots(guest, baseline.manifest.slots) : [];
    if (active.length > 0) {
      problems.push(`after ${observation.call} (${observation.outcome}), activations still counted in slots ${active.join(', ')}`);
      counting = false;
    }
  }
  const wrapped = patch ? ((patch.instance.exports.calls as WebAssembly.Global).value as number) : 0;
  return { observations, wrapped, problems: problems.slice(0, 3) };
}

/** Runs `original` and every configuration of its baseline on the same script and compares them. */
export async function differential(original: Uint8Array, seed: number, calls = 24): Promise<CaseResult> {
  const result = { failures: [] as string[], exhausted: 0, calls: 0, wrapped: 0, switches: 0 };
  const bytes = observable(original);
  if (!WebAssembly.validate(bytes as BufferSource)) return { ...result, skipped: 'V8 rejects the generated module' };
  const reference = new FuzzHost(bytes);
  try {
    reference.exports = (await WebAssembly.instantiate(bytes as BufferSource, reference.imports())).instance.exports as Record<string, any>;
  } catch {
    return { ...result, skipped: 'the original does not instantiate' };
  }
  const script = reference.script(rng(seed), calls);
  const expected = script.map((c) => reference.observe(c));
  const wrapCounts: string[] = [];
  // Functions with no original under entry dispatch are left unwrapped in every mode, so every
  // patched configuration wraps the same functions and must count the same calls.
  let without: ReadonlySet<string>;
  try {
    without = new Set(Object.keys((await prepare(bytes)).manifest.noOriginal ?? {}));
  } catch (error) {
    if (error instanceof HotpatchError && error.code === 'E_NOTHING_TO_PATCH') return { ...result, skipped: 'no function to patch' };
    throw error;
  }
  for (const config of CONFIGS) {
    const label = `seed ${seed}, ${config.label}`;
    let run: NonNullable<Awaited<ReturnType<typeof runConfig>>>;
    try {
      const outcome = await runConfig(bytes, config, script, seed, without, result);
      if (!outcome) continue;
      run = outcome;
    } catch (error) {
      result.failures.push(`${label}: ${(error as Error).constructor.name}: ${(error as Error).message}`);
      continue;
    }
    result.calls += run.observations.length;
    result.wrapped += run.wrapped;
    result.failures.push(...run.problems.map((p) => `${label}: ${p}`));
    const difference = firstDifference(expected, run.observations);
    if (difference?.exhausted) result.exhausted++;
    else if (difference) result.failures.push(`${label}: ${describeDifference(expected[difference.at]!, run.observations[difference.at]!)}`);
    else if (config.patch === 'applied' && !config.options.exclude) {
      // Every call of a patched function reaches the wrapper, whatever the dispatch: the same count in every mode.
      wrapCounts.push(`${config.label}: ${run.wrapped}`);
      if (wrapCounts.some((c) => !c.endsWith(`: ${run.wrapped}`))) result.failures.push(`seed ${seed}: the wrapping patch ran a different number of times: ${wrapCounts.join(', ')}`);
    }
  }
  return result;
}

/** Which generator a case uses: one in three is legacy exception handling. */
export const caseKind = (caseSeed: number): 'ttf' | 'eh' => (caseSeed % 3 === 0 ? 'eh' : 'ttf');

/** The module of one case, from its seed alone (so a failure replays from the seed it prints). */
export async function caseModule(caseSeed: number): Promise<Uint8Array> {
  return caseKind(caseSeed) === 'eh' ? generateLegacyEh(caseSeed) : generateTtf(caseSeed, 1024 + (caseSeed % 16) * 1024);
}

/** A summary of many cases. */
export interface PrepareFuzzReport {
  readonly cases: number;
  readonly compared: number;
  readonly skipped: Record<string, number>;
  readonly exhausted: number;
  readonly calls: number;
  readonly wrapped: number;
  readonly switches: number;
  readonly failures: string[];
}

/** Runs the cases whose seeds are given (modules are generated two at a time, one per core). */
export async function fuzzPrepare(caseSeeds: readonly number[], progress?: (done: number, report: PrepareFuzzReport) => void): Promise<PrepareFuzzReport> {
  const report = { cases: caseSeeds.length, compared: 0, skipped: {} as Record<string, number>, exhausted: 0, calls: 0, wrapped: 0, switches: 0, failures: [] as string[] };
  // The next module is generated (in a child process) while this one runs.
  const generate = (seed: number) =>
    caseModule(seed).then(
      (bytes) => ({ bytes }),
      (error: Error) => ({ error }),
    );
  let next = generate(caseSeeds[0]!);
  for (let i = 0; i < caseSeeds.length; i++) {
    const seed = caseSeeds[i]!;
    const generated = await next;
    if (i + 1 < caseSeeds.length) next = generate(caseSeeds[i + 1]!);
    if ('error' in generated) {
      report.failures.push(`case seed ${seed} (${caseKind(seed)}): generating failed: ${generated.error.message}`);
      continue;
    }
    const module = generated.bytes;
    let r: CaseResult;
    try {
      r = await differential(module, seed);
    } catch (error) {
      report.failures.push(`case seed ${seed} (${caseKind(seed)}): ${(error as Error).constructor.name}: ${(error as Error).message}`);
      continue;
    }
    if (r.skipped) report.skipped[r.skipped] = (report.skipped[r.skipped] ?? 0) + 1;
    else report.compared++;
    report.exhausted += r.exhausted;
    report.calls += r.calls;
    report.wrapped += r.wrapped;
    report.switches += r.switches;
    if (r.failures.length > 0) {
      // Kept as a file: a regression fixture must not depend on binaryen's generator staying the same.
      const saved = join(tmpdir(), `fuzz-prepare-${seed}.wasm`);
      writeFileSync(saved, module);
      report.failures.push(...r.failures.map((f) => `case seed ${seed} (${caseKind(seed)}, module saved to ${saved}): ${f}`));
    }
    progress?.(i + 1, report);
  }
  return report;
}
