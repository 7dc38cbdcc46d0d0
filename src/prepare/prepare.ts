import { deflateSync } from 'node:zlib';
import { HotpatchError } from '../errors.js';
import { ByteWriter } from '../format/bytes.js';
import {
  BASELINE_SECTION,
  type BaselineExport,
  type BaselineFunction,
  type BaselineManifest,
  customSection,
  type Dispatch,
  decodeBaselineManifest,
  encodeBaselineManifest,
  BASELINE_FORMAT_VERSION,
  ORIGINALS_SECTION,
  sha256,
} from '../format/manifest.js';
import { customSections, functionType, invalidity, kindByte, parseModule, signatureText, type WasmModule } from '../format/module.js';
import { rebuildModule } from '../format/sections.js';
import { buildOriginals, derivesExactly, scanOriginals } from '../format/originals.js';
import { HOTPATCH_ACTIVE_EXPORT, HOTPATCH_SETTER_EXPORT, HOTPATCH_TABLE_EXPORT, rewrite, type SafepointOptions } from './_rewrite.js';
import { checkProfile, type HotExclusion, hotReason, hottest, type Profile } from './profile.js';

export { HOTPATCH_SETTER_EXPORT, HOTPATCH_TABLE_EXPORT };

/** Options of {@link prepare}. */
export interface PrepareOptions {
  /**
   * How calls reach a patch. `entry` (default): calls stay direct and each patchable function
   * starts with a check of its own flag, diverting through its slot only while patched.
   * `indirect`: every call to a patchable function goes through `call_indirect` on the table.
   */
  readonly dispatch?: Dispatch;
  /** Only functions whose name or an export name matches become patchable. */
  readonly only?: RegExp | string;
  /** Functions whose name or an export name matches stay unpatchable. */
  readonly exclude?: RegExp | string;
  /**
   * Insert safepoints, so a guest that never returns to its host (a service loop, a long
   * computation in a worker) still takes patches: cheap polls at loop headers (and, with
   * `entries`, function entries) that every `interval` polls (default 1024, rounded up to a power
   * of two) call the poll handler the runtime installs. `true` means loops only.
   */
  readonly safepoints?: boolean | { readonly loops?: boolean; readonly entries?: boolean; readonly interval?: number };
  /**
   * `next-call` (default): a patch takes effect at each function's next call; activations already
   * running finish in old code. `quiescent`: each patchable function counts its own activations, and
   * a patch applies (in each thread) only when none of its targets is running there, so a patch
   * that changes several functions together never mixes old and new in one call chain. Costs a
   * count per call, and adds a `try` around each patchable body (exception handling).
   */
  readonly consistency?: 'next-call' | 'quiescent';
  /**
   * Where an entry-dispatch baseline keeps its originals (the untouched bodies that `original`
   * imports and test stubs call). `derived` (default where possible): nothing extra, the engine
   * rebuilds them from the baseline's own bodies the first time one is needed, so it needs the
   * baseline's bytes (`Guest.instantiate` has them; pass `baselineBytes` to `Guest.adopt`).
   * `embedded`: a compressed copy in a custom section, for hosts that only ever see the compiled
   * module; baselines with safepoints or quiescent consistency always embed.
   */
  readonly originals?: 'derived' | 'embedded';
  /**
   * Leave the `count` functions that took the most calls in `profile` (recorded on this module's
   * counting build, {@link prepareProfile}) without the entry check: the hot tiny functions of an
   * interpreter. `diff` carries a change to one of them through its callers.
   */
  readonly excludeHot?: { readonly profile: Profile; readonly count: number };
}

/** A hotpatch-ready module and its manifest. */
export interface Baseline {
  readonly bytes: Uint8Array;
  readonly manifest: BaselineManifest;
  /** The functions `excludeHot` left unpatchable, hottest first, with their calls. */
  readonly excludedHot?: readonly HotExclusion[];
}

function toRegExp(value: RegExp | string | undefined, option: string): RegExp | undefined {
  if (value === undefined || value instanceof RegExp) return value;
  try {
    return new RegExp(value);
  } catch (cause) {
    throw new HotpatchError('E_BAD_OPTIONS', `--${option} is not a valid regular expression: ${value}`, { cause });
  }
}

function sameSelection(manifest: BaselineManifest, dispatch: Dispatch, only?: RegExp, exclude?: RegExp, safepoints?: SafepointOptions, quiescent = false): boolean {
  if ((manifest.consistency === 'quiescent') !== quiescent) return false;
  const a = manifest.safepoints;
  const sameSafepoints =
    a === undefined ? safepoints === undefined : safepoints !== undefined && a.loops === safepoints.loops && a.entries === safepoints.entries && a.interval === safepoints.interval;
  return manifest.dispatch === dispatch && manifest.only === only?.source && manifest.exclude === exclude?.source && sameSafepoints;
}

function safepointOptions(value: PrepareOptions['safepoints']): SafepointOptions | undefined {
  if (!value) return undefined;
  const o = value === true ? {} : value;
  const asked = o.interval ?? 1024;
  if (!Number.isSafeInteger(asked) || asked < 1 || asked > 2 ** 30) {
    throw new HotpatchError('E_BAD_OPTIONS', `safepoints.interval must be a whole number from 1 to 2^30, not ${o.interval}`);
  }
  // Loop polls test a mask: the interval is rounded up to a power of two.
  const interval = 2 ** Math.ceil(Math.log2(asked));
  const loops = o.loops ?? true;
  const entries = o.entries ?? false;
  if (!loops && !entries) throw new HotpatchError('E_BAD_OPTIONS', 'safepoints need loops, entries, or both');
  return { loops, entries, interval };
}

/**
 * Turns a Wasm module into a hotpatch-ready baseline: every selected function gets a slot in an
 * exported funcref table, and every way into it (direct calls, the module's own tables, exports,
 * `ref.func`) reaches whatever that slot holds once it is patched. Nothing is removed or renamed;
 * existing function, global and table indices do not change.
 * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM, E_UNSUPPORTED_FEATURE, E_ALREADY_PREPARED, E_BAD_OPTIONS, E_BAD_PROFILE
 */
export async function prepare(wasm: Uint8Array, options: PrepareOptions = {}): Promise<Baseline> {
  const dispatch = options.dispatch ?? 'entry';
  if (dispatch !== 'entry' && dispatch !== 'indirect') {
    throw new HotpatchError('E_BAD_OPTIONS', `dispatch must be "entry" or "indirect", not ${JSON.stringify(dispatch)}`);
  }
  const only = toRegExp(options.only, 'only');
  const exclude = toRegExp(options.exclude, 'exclude');
  const safepoints = safepointOptions(options.safepoints);
  const consistency = options.consistency ?? 'next-call';
  if (consistency !== 'next-call' && consistency !== 'quiescent') {
    throw new HotpatchError('E_BAD_OPTIONS', `consistency must be "next-call" or "quiescent", not ${JSON.stringify(consistency)}`);
  }
  const quiescent = consistency === 'quiescent';
  const hotCount = options.excludeHot?.count;
  if (hotCount !== undefined && (!Number.isSafeInteger(hotCount) || hotCount < 0)) {
    throw new HotpatchError('E_BAD_OPTIONS', `excludeHot.count must be a whole number, not ${hotCount}`);
  }
  const module = parseModule(wasm);

  if (customSections(module, BASELINE_SECTION).length > 0) {
    const manifest = decodeBaselineManifest(wasm);
    if (!options.excludeHot && sameSelection(manifest, dispatch, only, exclude, safepoints, quiescent)) return { bytes: wasm, manifest };
    throw new HotpatchError(
      'E_ALREADY_PREPARED',
      `module is already a baseline (dispatch ${manifest.dispatch}${manifest.only ? `, only /${manifest.only}/` : ''}${manifest.exclude ? `, exclude /${manifest.exclude}/` : ''}); prepare the original module again instead`,
    );
  }
  const invalid = invalidity(wasm);
  if (invalid) throw new HotpatchError('E_INVALID_WASM', `invalid WebAssembly module: ${invalid}`);
  for (const e of module.exports) {
    if (e.name.startsWith('hotpatch.')) {
      throw new HotpatchError('E_ALREADY_PREPARED', `module already exports "${e.name}": the hotpatch.* export names are reserved`);
    }
  }

  let functions = describeFunctions(module, only, exclude);
  let excludedHot: HotExclusion[] | undefined;
  if (options.excludeHot) {
    checkProfile(options.excludeHot.profile, module, await sha256(wasm));
    ({ functions, excluded: excludedHot } = excludeHot(functions, options.excludeHot.profile, options.excludeHot.count));
  }
  const patchable = functions.filter((f) => f.slot !== undefined);
  if (patchable.length === 0) {
    throw new HotpatchError(
      'E_NOTHING_TO_PATCH',
      module.functions.length === 0 ? 'module defines no functions: nothing to make patchable' : 'no function matches the selection (--only / --exclude): nothing to make patchable',
    );
  }
  const exported = importableExports(module);
  const rewritten = rewrite(module, functions, patchable, dispatch, safepoints, quiescent);
  const sections = rewritten.sections(exported.exports);
  const assembled = rebuildModule(module, sections);
  if (!WebAssembly.validate(assembled as Uint8Array<ArrayBuffer>)) {
    // A bug in prepare, never the user's: fail loudly rather than hand back a wrong module.
    throw new HotpatchError('E_UNSUPPORTED_FEATURE', 'prepare produced an invalid module; please report this with the input file');
  }
  const { section: originals, original, noOriginal } = placeOriginals(module, patchable, exported, assembled, dispatch, options.originals, !safepoints && !quiescent);
  const withOriginals = originals ? concat([assembled, originals]) : assembled;
  const id = await sha256(withOriginals);
  const manifest: BaselineManifest = {
    format: BASELINE_FORMAT_VERSION,
    id,
    source: await sha256(wasm),
    dispatch,
    ...(only ? { only: only.source } : {}),
    ...(exclude ? { exclude: exclude.source } : {}),
    table: HOTPATCH_TABLE_EXPORT,
    setter: HOTPATCH_SETTER_EXPORT,
    slots: patchable.length,
    live: rewritten.live,
    original: rewritten.original === undefined ? original! : { table: rewritten.original },
    ...(noOriginal ? { noOriginal } : {}),
    ...(safepoints ? { safepoints: { ...safepoints, slot: rewritten.pollSlot! } } : {}),
    ...(quiescent ? { consistency: 'quiescent' as const, active: HOTPATCH_ACTIVE_EXPORT } : {}),
    functions,
    memories: exported.memories,
    tables: exported.tables,
    globals: exported.globals,
    tags: exported.tags,
  };
  return { bytes: concat([withOriginals, encodeBaselineManifest(manifest)]), manifest, ...(excludedHot ? { excludedHot } : {}) };
}

/** Takes the hottest still-patchable functions out of the selection; slots are numbered again in index order. */
function excludeHot(functions: readonly BaselineFunction[], profile: Profile, count: number): { functions: BaselineFunction[]; excluded: HotExclusion[] } {
  const byIndex = new Map(functions.map((f) => [f.index, f]));
  const excluded = hottest(profile, count, (i) => byIndex.get(i)?.slot !== undefined);
  const why = new Map(excluded.map((h) => [h.index, hotReason(h)]));
  let slot = 0;
  const out = functions.map((f): BaselineFunction => {
    if (f.slot === undefined) return f;
    const reason = why.get(f.index);
    const { slot: _, ...rest } = f;
    return reason === undefined ? { ...rest, slot: slot++ } : { ...rest, reason };
  });
  return { functions: out, excluded };
}
/**
 * Entry dispatch: builds the originals module and decides where it lives. Derived originals are
 * checked here: the engine must rebuild exactly this module from the baseline, or they are embedded.
 */
function placeOriginals(
  module: WasmModule,
  patchable: readonly BaselineFunction[],
  exported: ReturnType<typeof importableExports>,
  assembled: Uint8Array,
  dispatch: Dispatch,
  wanted: PrepareOptions['originals'],
  derivable: boolean,
): { section?: Uint8Array; original?: BaselineManifest['original']; noOriginal?: Record<string, string> } {
  if (wanted !== undefined && wanted !== 'derived' && wanted !== 'embedded') {
    throw new HotpatchError('E_BAD_OPTIONS', `originals must be "derived" or "embedded", not ${JSON.stringify(wanted)}`);
  }
  if (dispatch !== 'entry') return {};
  if (wanted === 'derived' && !derivable) {
    throw new HotpatchError(
      'E_BAD_OPTIONS',
      'originals cannot be derived from a baseline with safepoints or quiescent consistency (their bodies are rewritten beyond the entry): use originals "embedded"',
    );
  }
  const noOriginalOf = (unavailable: Map<number, string>) => (unavailable.size > 0 ? { noOriginal: Object.fromEntries([...unavailable].map(([i, why]) => [String(i), why])) } : {});
  if ((wanted ?? (derivable ? 'derived' : 'embedded')) === 'derived') {
    // What the engine will rebuild from this baseline: its bodies must be the original bodies,
    // byte for byte, or the originals are embedded instead.
    const baseline = parseModule(assembled);
    const { unavailable } = scanOriginals(module, patchable);
    if (patchable.every((f) => unavailable.has(f.index) || derivesExactly(baseline, module, f.index))) {
      return { original: { derived: 'entry' }, ...noOriginalOf(unavailable) };
    }
    if (wanted === 'derived')
      throw new HotpatchError('E_UNSUPPORTED_FEATURE', 'the originals cannot be rebuilt exactly from this baseline; please report this with the input file (originals "embedded" works)');
  }
  const built = buildOriginals(module, patchable, exported);
  if (!WebAssembly.validate(built.bytes as Uint8Array<ArrayBuffer>)) {
    throw new HotpatchError('E_UNSUPPORTED_FEATURE', 'prepare produced an invalid originals module; please report this with the input file');
  }
  const noOriginal = noOriginalOf(built.unavailable);
  return { section: customSection(ORIGINALS_SECTION, deflateSync(built.bytes)), original: { section: ORIGINALS_SECTION }, ...noOriginal };
}

/** Names, signatures and slots of every function; imported ones are listed as not patchable. */
function describeFunctions(module: WasmModule, only?: RegExp, exclude?: RegExp): BaselineFunction[] {
  const exportNames = new Map<number, string[]>();
  for (const e of module.exports) {
    if (e.kind !== 'func') continue;
    const list = exportNames.get(e.index) ?? [];
    list.push(e.name);
    exportNames.set(e.index, list);
  }
  const total = module.importedFunctions + module.functions.length;
  const out: BaselineFunction[] = [];
  let slot = 0;
  for (let index = 0; index < total; index++) {
    const exports = exportNames.get(index) ?? [];
    const name = module.functionNames.get(index) ?? exports[0] ?? `#${index}`;
    const signature = signatureText(functionType(module, index));
    const names = [name, ...exports];
    let reason: string | undefined;
    if (index < module.importedFunctions) reason = 'imported';
    else if (only && !names.some((n) => only.test(n))) reason = `not selected by --only /${only.source}/`;
    else if (exclude && names.some((n) => exclude.test(n))) reason = `excluded by --exclude /${exclude.source}/`;
    out.push(reason === undefined ? { index, name, exports, signature, slot: slot++ } : { index, name, exports, signature, reason });
  }
  return out;
}

/** Exports patches (and the originals module) may import: existing export names where there are some, new `hotpatch.*` names otherwise. */
function importableExports(module: WasmModule) {
  const exports: Uint8Array[] = [];
  const add = (kind: 'memory' | 'table' | 'global' | 'tag', index: number): string => {
    const name = module.exports.find((e) => e.kind === kind && e.index === index)?.name;
    if (name !== undefined) return name;
    const added = kind === 'memory' && index === 0 ? 'hotpatch.memory' : `hotpatch.${kind}.${index}`;
    exports.push(new ByteWriter().name(added).u8(kindByte(kind)).u32(index).finish());
    return added;
  };
  const memoryCount = module.importedMemories + module.memories.length;
  const memories: BaselineExport[] = Array.from({ length: memoryCount }, (_, index) => ({ index, export: add('memory', index) }));
  const importedTables = module.imports.filter((i) => i.kind === 'table').map((i) => i.table!);
  const tables: BaselineExport[] = [...importedTables, ...module.tables].map((t, index) => ({ index, export: add('table', index), type: t.element }));
  const importedGlobals = module.imports.filter((i) => i.kind === 'global').map((i) => i.global!);
  const globals: BaselineExport[] = [...importedGlobals, ...module.globals.map((g) => g.type)].map((g, index) => ({
    index,
    export: add('global', index),
    type: g.type,
    mutable: g.mutable,
  }));
  const tagCount = module.imports.filter((i) => i.kind === 'tag').length + module.tags.length;
  const tags: BaselineExport[] = Array.from({ length: tagCount }, (_, index) => ({ index, export: add('tag', index) }));
  return { exports, memories, tables, globals, tags };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
