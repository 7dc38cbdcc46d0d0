// Profile-guided exclusion (issue 15): a counting build counts every function's entries, a
// workload runs on it, and prepare leaves the functions taking the most calls without the entry
// check. kpatch's answer to functions it cannot trace: a change to one is carried by patching its
// callers instead (diff does that, see src/build/_callers.ts).
import { HotpatchError } from '../errors.js';
import { ByteWriter } from '../format/bytes.js';
import { encodeType } from '../format/encode.js';
import { Op } from '../format/instructions.js';
import { sha256 } from '../format/manifest.js';
import { customSections, invalidity, kindByte, parseModule, type WasmModule } from '../format/module.js';
import { appendToVector, rebuildModule } from '../format/sections.js';
import { globalReader } from './_rewrite.js';

/** The export of a counting build: `hotpatch.calls(function index) -> i64`, entries so far. */
export const PROFILE_CALLS_EXPORT = 'hotpatch.calls';
/** The `format` field of a profile file. */
export const PROFILE_FORMAT = 'wasm-hotpatch.profile/1';

/** A module whose every defined function counts its entries; indices and behaviour are the original's. */
export interface CountingBuild {
  readonly bytes: Uint8Array;
  /** SHA-256 of the module it was made from: a profile names the build it describes. */
  readonly source: string;
  /** Defined functions, by index: name and body size in bytes. */
  readonly functions: readonly { readonly index: number; readonly name: string; readonly size: number }[];
}

/** One function's share of a workload's calls. */
export interface ProfiledFunction {
  readonly index: number;
  readonly name: string;
  readonly calls: number;
  /** Body size in bytes (a hint: the hot functions of an interpreter are mostly small). */
  readonly size: number;
}

/** What a workload called, from a counting build: functions with at least one call, most calls first. */
export interface Profile {
  readonly format: typeof PROFILE_FORMAT;
  /** SHA-256 of the module profiled (the one prepare is later given). */
  readonly source: string;
  /** Calls to every defined function together. */
  readonly total: number;
  readonly functions: readonly ProfiledFunction[];
}

const nameOf = (m: WasmModule, i: number): string => m.functionNames.get(i) ?? m.exports.find((e) => e.kind === 'func' && e.index === i)?.name ?? `#${i}`;

/**
 * Makes a counting build: each defined function starts by adding one to its own i64 global, and
 * `hotpatch.calls(index)` reads it. Nothing else moves, so the toolchain's glue loads it as it
 * loads the original; run a workload on it, then {@link readProfile}.
 * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM, E_ALREADY_PREPARED, E_NOTHING_TO_PATCH
 */
export async function prepareProfile(wasm: Uint8Array): Promise<CountingBuild> {
  const module = parseModule(wasm);
  const invalid = invalidity(wasm);
  if (invalid) throw new HotpatchError('E_INVALID_WASM', `invalid WebAssembly module: ${invalid}`);
  if (customSections(module, 'hotpatch.baseline').length > 0 || module.exports.some((e) => e.name.startsWith('hotpatch.'))) {
    throw new HotpatchError('E_ALREADY_PREPARED', 'module is already a baseline or a counting build (it uses hotpatch.* names); profile the original module');
  }
  const first = module.importedFunctions;
  const count = module.functions.length;
  if (count === 0) throw new HotpatchError('E_NOTHING_TO_PATCH', 'module defines no functions: nothing to count');
  const globalBase = module.importedGlobals + module.globals.length;
  const getterType = module.types.length;
  const getter = first + count;
  const counter = (index: number): number => globalBase + index - first;

  const globals = Array.from({ length: count }, () => new ByteWriter().u8(0x7e).u8(1).u8(Op.i64Const).u8(0).u8(Op.end).finish());
  // hotpatch.calls(index): out of range (or imported) reads 0.
  const bodies = globalReader({ globals: globalBase, count, offset: first, chunkFunction: getter + 1, zero: [Op.i64Const, 0] });

  const code = new ByteWriter().u32(count + bodies.length);
  const functions: CountingBuild['functions'][number][] = [];
  module.bodies.forEach((b, k) => {
    const index = first + k;
    functions.push({ index, name: nameOf(module, index), size: b.end - b.codeStart });
    const g = counter(index);
    const content = new ByteWriter()
      .bytes(module.bytes.subarray(b.bodyStart, b.codeStart))
      .u8(Op.globalGet)
      .u32(g)
      .u8(Op.i64Const)
      .u8(1)
      .u8(0x7c /* i64.add */)
      .u8(Op.globalSet)
      .u32(g)
      .bytes(module.bytes.subarray(b.codeStart, b.end))
      .finish();
    code.u32(content.length).bytes(content);
  });
  for (const b of bodies) code.bytes(b);

  const sections = new Map<number, Uint8Array>([
    [1, appendToVector(module, 1, [encodeType({ params: ['i32'], results: ['i64'] })])],
    [
      3,
      appendToVector(
        module,
        3,
        bodies.map(() => new ByteWriter().u32(getterType).finish()),
      ),
    ],
    [6, appendToVector(module, 6, globals)],
    [7, appendToVector(module, 7, [new ByteWriter().name(PROFILE_CALLS_EXPORT).u8(kindByte('func')).u32(getter).finish()])],
    [10, code.finish()],
  ]);
  const bytes = rebuildModule(module, sections);
  if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
    throw new HotpatchError('E_UNSUPPORTED_FEATURE', 'prepareProfile produced an invalid module; please report this with the input file');
  }
  return { bytes, source: await sha256(wasm), functions };
}

/**
 * Reads a counting build's counters after a workload ran on it: the profile {@link prepare}'s
 * `excludeHot` takes.
 * @throws HotpatchError E_BAD_PROFILE when the instance is not the counting build's
 */
export function readProfile(build: CountingBuild, instance: WebAssembly.Instance | WebAssembly.Exports): Profile {
  const exports = instance instanceof WebAssembly.Instance ? instance.exports : instance;
  const calls = exports[PROFILE_CALLS_EXPORT];
  if (typeof calls !== 'function') throw new HotpatchError('E_BAD_PROFILE', `the instance has no ${PROFILE_CALLS_EXPORT} export: it is not a counting build (prepareProfile)`);
  const counted = build.functions.map((f) => ({ ...f, calls: Number((calls as (i: number) => bigint)(f.index)) })).filter((f) => f.calls > 0);
  counted.sort((a, b) => b.calls - a.calls || a.index - b.index);
  return { format: PROFILE_FORMAT, source: build.source, total: counted.reduce((s, f) => s + f.calls, 0), functions: counted };
}

/**
 * Checks a profile read from a file (JSON text or the parsed value): every problem at once.
 * @throws HotpatchError E_BAD_PROFILE
 */
export function parseProfile(input: string | unknown): Profile {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (cause) {
      throw new HotpatchError('E_BAD_PROFILE', `the profile is not JSON: ${(cause as Error).message}`, { cause });
    }
  }
  const problems: string[] = [];
  const p = value as Partial<Profile> | null;
  if (typeof p !== 'object' || p === null) throw new HotpatchError('E_BAD_PROFILE', 'the profile is not a JSON object');
  if (p.format !== PROFILE_FORMAT) problems.push(`format is ${JSON.stringify(p.format)}, not "${PROFILE_FORMAT}"`);
  if (typeof p.source !== 'string' || !/^[0-9a-f]{64}$/.test(p.source)) problems.push('source is not a SHA-256 in hex');
  if (!Array.isArray(p.functions)) problems.push('functions is not a list');
  else {
    p.functions.forEach((f: Partial<ProfiledFunction>, k) => {
      const whole = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
      if (typeof f !== 'object' || f === null || !whole(f.index) || !whole(f.calls) || typeof f.name !== 'string' || !whole(f.size)) {
        problems.push(`functions[${k}] needs a whole index, calls and size and a name`);
      }
    });
  }
  if (problems.length > 0) throw new HotpatchError('E_BAD_PROFILE', `not a profile: ${problems.slice(0, 5).join('; ')}`);
  const functions = [...(p.functions as ProfiledFunction[])].sort((a, b) => b.calls - a.calls || a.index - b.index);
  return { format: PROFILE_FORMAT, source: p.source!, total: functions.reduce((s, f) => s + f.calls, 0), functions };
}

/** Why one function was left without the entry check. */
export interface HotExclusion {
  readonly index: number;
  readonly name: string;
  readonly calls: number;
  /** Its share of the profile's calls. */
  readonly share: number;
  /** 1 for the function taking the most calls. */
  readonly rank: number;
}

/**
 * The `count` functions taking the most calls in `profile`, among those `eligible` allows (each
 * must be a defined function of the profiled module), with the reason each is excluded.
 */
export function hottest(profile: Profile, count: number, eligible: (index: number) => boolean): HotExclusion[] {
  const out: HotExclusion[] = [];
  for (const f of profile.functions) {
    if (out.length >= count) break;
    if (!eligible(f.index)) continue;
    out.push({ index: f.index, name: f.name, calls: f.calls, share: profile.total > 0 ? f.calls / profile.total : 0, rank: out.length + 1 });
  }
  return out;
}

/** The reason recorded in the manifest for a function {@link hottest} picked. */
export const hotReason = (h: HotExclusion): string => `excluded as hot: ${h.calls} calls (${(h.share * 100).toFixed(1)}% of the profile's, rank ${h.rank})`;

/** Checks that a profile describes this module. @throws HotpatchError E_BAD_PROFILE */
export function checkProfile(profile: Profile, module: WasmModule, source: string): void {
  if (profile.source !== source) {
    throw new HotpatchError('E_BAD_PROFILE', `the profile was recorded on another build (its source ${profile.source.slice(0, 12)}…, this module ${source.slice(0, 12)}…): profile this exact module`);
  }
  const end = module.importedFunctions + module.functions.length;
  const bad = profile.functions.filter((f) => f.index < module.importedFunctions || f.index >= end).map((f) => f.index);
  if (bad.length > 0) throw new HotpatchError('E_BAD_PROFILE', `the profile names functions this module does not define: ${bad.slice(0, 5).join(', ')}`);
}
