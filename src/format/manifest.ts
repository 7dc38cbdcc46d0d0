import { unzlibSync, zlibSync } from 'fflate';
import { HotpatchError, type Problem, throwProblems } from '../errors.js';
import { ByteReader, ByteWriter, fromUtf8 } from './bytes.js';
import { type ValType, looksLikeWasm } from './module.js';
import { subtleCrypto } from './webcrypto.js';

/** Custom section holding a baseline's manifest. */
export const BASELINE_SECTION = 'hotpatch.baseline';
/** Custom section holding a patch's manifest. */
export const PATCH_SECTION = 'hotpatch.patch';
/** Version of the patch manifest format; bumped on any incompatible change. */
export const FORMAT_VERSION = 1;
/**
 * Version of the baseline manifest format; bumped on any incompatible change. 2: per-function
 * fields that can be derived are left out (see {@link encodeBaselineManifest}); format 1 is refused.
 */
export const BASELINE_FORMAT_VERSION = 2;

/** How calls reach a patch: `entry` checks a flag at function entry, `indirect` routes every call through the table. */
export type Dispatch = 'entry' | 'indirect';

/** One function of a baseline, as its manifest records it. */
export interface BaselineFunction {
  /** Function index in the module (imports first). */
  readonly index: number;
  /** Name section name, else first export name, else `#index`. */
  readonly name: string;
  /** Export names, if the function is exported. */
  readonly exports: readonly string[];
  /** Signature text, e.g. `(i32, i32) -> (i32)`. */
  readonly signature: string;
  /** Slot in the hotpatch table, for patchable functions. */
  readonly slot?: number;
  /** Why the function is not patchable. */
  readonly reason?: string;
}

/** A baseline export that patches may import. */
export interface BaselineExport {
  readonly index: number;
  readonly export: string;
  /** Table element type or global value type. */
  readonly type?: ValType;
  readonly mutable?: boolean;
}

/** The manifest `prepare` writes into every baseline. */
export interface BaselineManifest {
  readonly format: number;
  /** SHA-256 (hex) of the baseline's bytes without this section: what a patch pins. */
  readonly id: string;
  /** SHA-256 (hex) of the module `prepare` was given. */
  readonly source: string;
  readonly dispatch: Dispatch;
  /** `quiescent`: patches apply only where none of their targets is running (see prepare). */
  readonly consistency?: 'quiescent';
  /** Export name of `active(slot) -> i32`, the running activations of a slot's body (quiescent). */
  readonly active?: string;
  /** Safepoints prepare inserted: where, how often the poll handler runs, and its table slot. */
  readonly safepoints?: { readonly loops: boolean; readonly entries: boolean; readonly interval: number; readonly slot: number };
  /** Why an original implementation cannot be imported, per function index (entry dispatch). */
  readonly noOriginal?: Readonly<Record<string, string>>;
  /** The function selection prepare was given (regex sources). */
  readonly only?: string;
  readonly exclude?: string;
  /** Export name of the hotpatch table. */
  readonly table: string;
  /** Export name of the slot setter `(slot i32, target funcref, patched i32) -> ()`. */
  readonly setter: string;
  /** Number of dispatch slots, [0, slots) of the table: one per patchable function. */
  readonly slots: number;
  /** Table index of function 0's live entry; function i's is at `live + i` (every function, imported ones too). */
  readonly live: number;
  /**
   * Where originals come from: with indirect dispatch the table holds them (`original + slot`);
   * with entry dispatch the custom section `originals` holds a module exporting them by function index,
   * or (`derived`) the engine rebuilds that module from the baseline's own bodies when first needed.
   */
  readonly original: { readonly table: number } | { readonly section: string } | { readonly derived: 'entry' };
  readonly functions: readonly BaselineFunction[];
  readonly memories: readonly BaselineExport[];
  readonly tables: readonly BaselineExport[];
  readonly globals: readonly BaselineExport[];
  readonly tags: readonly BaselineExport[];
}

/** Custom section holding the deflate-compressed originals module of an entry-dispatch baseline. */
export const ORIGINALS_SECTION = 'hotpatch.originals';

/** One function a patch replaces. */
export interface PatchTarget {
  /** Baseline function: name, export name, or `#index`. */
  readonly function: string;
  /** The patch's export that replaces it. */
  readonly export: string;
}

/** The manifest of a patch module. */
export interface PatchManifest {
  readonly format: number;
  readonly id: string;
  readonly sequence: number;
  /** Baseline id this patch was built for. */
  readonly baseline: string;
  readonly cumulative: boolean;
  readonly description: string;
  readonly targets: readonly PatchTarget[];
  /** Key id of the key that signed the patch (set by `sign`). */
  readonly signer?: string;
}

/** Encodes a custom section (id 0) with the given name and payload. */
export function customSection(name: string, payload: Uint8Array): Uint8Array {
  const inner = new ByteWriter().name(name).bytes(payload).finish();
  return new ByteWriter().u8(0).u32(inner.length).bytes(inner).finish();
}

/** A located custom section: where it starts and ends in the binary, and its payload. */
export interface FoundSection {
  readonly start: number;
  readonly end: number;
  readonly payload: Uint8Array;
}

/**
 * Finds custom sections by name with a light scan (no full parse).
 * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM
 */
export function findCustomSections(bytes: Uint8Array, name: string): FoundSection[] {
  if (!looksLikeWasm(bytes)) throw new HotpatchError('E_NOT_WASM', 'not a WebAssembly module: the file does not start with "\\0asm"');
  const r = new ByteReader(bytes, 8);
  const found: FoundSection[] = [];
  while (!r.done) {
    const start = r.pos;
    const id = r.u8();
    const size = r.u32();
    const end = r.pos + size;
    if (end > bytes.length) throw new HotpatchError('E_INVALID_WASM', `malformed module: section ${id} runs past the end of the file`);
    if (id === 0) {
      const s = new ByteReader(bytes, r.pos, end);
      if (s.name() === name) found.push({ start, end, payload: bytes.subarray(s.pos, end) });
    }
    r.pos = end;
  }
  return found;
}

/** The module's bytes with the given byte ranges removed. */
export function withoutRanges(bytes: Uint8Array, ranges: readonly { start: number; end: number }[]): Uint8Array {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out = new Uint8Array(bytes.length - sorted.reduce((n, x) => n + x.end - x.start, 0));
  let at = 0;
  let from = 0;
  for (const x of sorted) {
    out.set(bytes.subarray(from, x.start), at);
    at += x.start - from;
    from = x.end;
  }
  out.set(bytes.subarray(from), at);
  return out;
}

/**
 * SHA-256 of bytes, as lowercase hex (WebCrypto: works in Node and browsers).
 * @throws HotpatchError E_NO_WEBCRYPTO outside a secure context
 */
export async function sha256(bytes: Uint8Array, purpose = 'to hash a module'): Promise<string> {
  const digest = await subtleCrypto(purpose).digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The id a baseline's bytes hash to: SHA-256 of the module without its baseline manifest section.
 * @throws HotpatchError E_NO_WEBCRYPTO outside a secure context
 */
export async function computeBaselineId(bytes: Uint8Array): Promise<string> {
  return sha256(withoutRanges(bytes, findCustomSections(bytes, BASELINE_SECTION)), "to check a baseline's id against its bytes (or pass verifyBaseline: false to trust them)");
}

// ---------------------------------------------------------------------------------------------
// Encoding. Baselines of real programs have thousands of functions, so a function costs as few
// bytes as it can: everything derivable is left out. Sequential numbers in JSON compress badly
// (sql.js: its index, name and slot columns took ~4 KB each of a 17 KB section).

/**
 * The baseline manifest as stored: `functions` becomes columns. A function's index is its position;
 * its signature an index into `signatures`; its name is stored only when it is not its first
 * export name or `#index`; exports only when it has some; reasons by reason; slots are implicit
 * (prepare gives them in function order to the functions without a reason).
 */
interface StoredFunctions {
  readonly signatures: string[];
  /** Per function, in index order: its signature's position in `signatures`. */
  readonly signature: number[];
  readonly names?: Record<string, string>;
  readonly exports?: Record<string, string[]>;
  /** Why functions are not patchable: reason → function indices. */
  readonly reasons?: Record<string, number[]>;
}

/** The name a function gets when nothing names it otherwise: its first export name, else `#index`. */
function defaultName(index: number, exports: readonly string[]): string {
  return exports[0] ?? `#${index}`;
}

/**
 * Encodes a baseline manifest as a custom section.
 * @throws HotpatchError E_MANIFEST_INVALID when `functions` are not in index order or slots not in function order
 */
export function encodeBaselineManifest(manifest: BaselineManifest): Uint8Array {
  const signatures: string[] = [];
  const sigIndex = new Map<string, number>();
  const signature: number[] = [];
  const names: Record<string, string> = {};
  const exports: Record<string, string[]> = {};
  const reasons: Record<string, number[]> = {};
  let slot = 0;
  manifest.functions.forEach((f, i) => {
    if (f.index !== i || (f.reason === undefined ? f.slot !== slot++ : f.slot !== undefined)) {
      throw new HotpatchError('E_MANIFEST_INVALID', `baseline manifest: function ${i} is out of order (index ${f.index}, slot ${f.slot})`);
    }
    let sig = sigIndex.get(f.signature);
    if (sig === undefined) {
      sig = signatures.push(f.signature) - 1;
      sigIndex.set(f.signature, sig);
    }
    signature.push(sig);
    if (f.name !== defaultName(i, f.exports)) names[i] = f.name;
    if (f.exports.length > 0) exports[i] = [...f.exports];
    if (f.reason !== undefined) {
      reasons[f.reason] ??= [];
      reasons[f.reason]!.push(i);
    }
  });
  const { functions: _functions, ...rest } = manifest;
  const stored: StoredFunctions = {
    signatures,
    signature,
    ...(Object.keys(names).length > 0 ? { names } : {}),
    ...(Object.keys(exports).length > 0 ? { exports } : {}),
    ...(Object.keys(reasons).length > 0 ? { reasons } : {}),
  };
  const json = JSON.stringify({ ...rest, ...stored });
  return customSection(BASELINE_SECTION, zlibSync(new TextEncoder().encode(json), { level: 9 }));
}

/** Parses a baseline manifest section's payload: zlib-compressed JSON, or plain JSON. */
export function parseBaselineManifest(payload: Uint8Array): BaselineManifest {
  let json = payload;
  if (payload[0] !== 0x7b) {
    try {
      json = unzlibSync(payload);
    } catch (cause) {
      throw new HotpatchError('E_MANIFEST_INVALID', 'baseline manifest is neither JSON nor compressed JSON', { cause });
    }
  }
  return validateBaselineManifest(parseJson(json, 'baseline'));
}

/** Encodes a patch manifest as a custom section. */
export function encodePatchManifest(manifest: PatchManifest): Uint8Array {
  return customSection(PATCH_SECTION, new TextEncoder().encode(JSON.stringify(manifest)));
}

function parseJson(payload: Uint8Array | string, what: string): unknown {
  try {
    return JSON.parse(typeof payload === 'string' ? payload : fromUtf8(payload));
  } catch (cause) {
    throw new HotpatchError('E_MANIFEST_INVALID', `${what} manifest is not valid JSON`, { cause });
  }
}

/** A small checker that records every problem with its path instead of stopping at the first. */
class Checker {
  readonly problems: Problem[] = [];
  constructor(readonly what: string) {}

  fail(path: string, message: string): void {
    this.problems.push({ code: 'E_MANIFEST_INVALID', message: `${this.what} manifest: ${path} ${message}`, path });
  }

  string(obj: Record<string, unknown>, key: string, path = key, optional = false): string {
    const v = obj[key];
    if (v === undefined && optional) return '';
    if (typeof v !== 'string') this.fail(path, 'must be a string');
    return typeof v === 'string' ? v : '';
  }

  int(obj: Record<string, unknown>, key: string, path = key, min = 0): number {
    const v = obj[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.fail(path, `must be an integer ≥ ${min}`);
    return typeof v === 'number' ? v : 0;
  }

  object(v: unknown, path: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      this.fail(path, 'must be an object');
      return {};
    }
    return v as Record<string, unknown>;
  }

  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) {
      this.fail(path, 'must be an array');
      return [];
    }
    return v;
  }
}

const VALTYPE_NAMES = new Set(['i32', 'i64', 'f32', 'f64', 'v128', 'funcref', 'externref']);

/**
 * Reads and validates a baseline manifest.
 * @throws HotpatchError E_NOT_A_BASELINE (no manifest), E_MANIFEST_INVALID (every problem listed)
 */
export function decodeBaselineManifest(bytes: Uint8Array): BaselineManifest {
  const sections = findCustomSections(bytes, BASELINE_SECTION);
  if (sections.length === 0) {
    throw new HotpatchError('E_NOT_A_BASELINE', `not a baseline: no "${BASELINE_SECTION}" section (run \`wasm-hotpatch prepare\` first)`);
  }
  if (sections.length > 1) throw new HotpatchError('E_MANIFEST_INVALID', `baseline has ${sections.length} "${BASELINE_SECTION}" sections`);
  return parseBaselineManifest(sections[0]!.payload);
}

/** Rebuilds `functions` from their stored columns (see {@link StoredFunctions}), checking each. */
function storedFunctions(c: Checker, m: Record<string, unknown>, slots: number): BaselineFunction[] {
  const signatures = c.array(m.signatures, 'signatures').map((s, i) => {
    if (typeof s !== 'string') c.fail(`signatures[${i}]`, 'must be a string');
    return String(s);
  });
  const signature = c.array(m.signature, 'signature');
  const count = signature.length;
  const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v < count;
  const keyed = <T>(key: string, check: (v: unknown) => v is T, what: string): Map<number, T> => {
    const out = new Map<number, T>();
    if (m[key] === undefined) return out;
    for (const [k, v] of Object.entries(c.object(m[key], key))) {
      const index = Number(k);
      if (!isIndex(index) || String(index) !== k) c.fail(`${key}.${k}`, 'is not a function index');
      else if (!check(v)) c.fail(`${key}.${k}`, `must be ${what}`);
      else out.set(index, v);
    }
    return out;
  };
  const names = keyed('names', (v): v is string => typeof v === 'string', 'a name');
  const exports = keyed('exports', (v): v is string[] => Array.isArray(v) && v.length > 0 && v.every((e) => typeof e === 'string'), 'a list of names');
  const reasonOf = new Map<number, string>();
  if (m.reasons !== undefined) {
    for (const [reason, list] of Object.entries(c.object(m.reasons, 'reasons'))) {
      for (const [i, index] of c.array(list, `reasons.${reason}`).entries()) {
        if (!isIndex(index) || reasonOf.has(index)) c.fail(`reasons.${reason}[${i}]`, 'must be a function index listed once');
        else reasonOf.set(index, reason);
      }
    }
  }
  let slot = 0;
  const functions = signature.map((sig, index): BaselineFunction => {
    if (typeof sig !== 'number' || signatures[sig] === undefined) c.fail(`signature[${index}]`, 'must index signatures');
    const own = exports.get(index) ?? [];
    const reason = reasonOf.get(index);
    return {
      index,
      name: names.get(index) ?? defaultName(index, own),
      exports: own,
      signature: signatures[Number(sig)] ?? '',
      ...(reason === undefined ? { slot: slot++ } : { reason }),
    };
  });
  if (slot !== slots && c.problems.length === 0) c.fail('slots', `is ${slots} but ${slot} functions have slots`);
  return functions;
}

/**
 * Validates a decoded baseline manifest object.
 * @throws HotpatchError E_MANIFEST_INVALID
 */
export function validateBaselineManifest(value: unknown): BaselineManifest {
  const c = new Checker('baseline');
  const m = c.object(value, '(root)');
  const format = c.int(m, 'format');
  if (format !== BASELINE_FORMAT_VERSION && c.problems.length === 0) {
    c.fail('format', `is ${format}; this version reads format ${BASELINE_FORMAT_VERSION} (prepare the original module again)`);
  }
  const dispatch = c.string(m, 'dispatch');
  if (dispatch !== 'entry' && dispatch !== 'indirect') c.fail('dispatch', 'must be "entry" or "indirect"');
  const slots = c.int(m, 'slots');
  const functions = storedFunctions(c, m, slots);
  const exportList = (key: string, typed: boolean): BaselineExport[] =>
    c.array(m[key], key).map((x, i) => {
      const o = c.object(x, `${key}[${i}]`);
      const e: BaselineExport = {
        index: c.int(o, 'index', `${key}[${i}].index`),
        export: c.string(o, 'export', `${key}[${i}].export`),
        ...(typed ? { type: c.string(o, 'type', `${key}[${i}].type`) as ValType } : {}),
        ...(key === 'globals' ? { mutable: o.mutable === true } : {}),
      };
      if (typed && !VALTYPE_NAMES.has(e.type!)) c.fail(`${key}[${i}].type`, 'must be a value type');
      return e;
    });
  const live = c.int(m, 'live');
  const original = c.object(m.original, 'original');
  if (!(typeof original.table === 'number' || typeof original.section === 'string' || original.derived === 'entry')) c.fail('original', 'must name a table base, a section, or derived: "entry"');
  const noOriginal = m.noOriginal === undefined ? undefined : c.object(m.noOriginal, 'noOriginal');
  const sp = m.safepoints === undefined ? undefined : c.object(m.safepoints, 'safepoints');
  const safepoints = sp ? { loops: sp.loops === true, entries: sp.entries === true, interval: c.int(sp, 'interval', 'safepoints.interval', 1), slot: c.int(sp, 'slot', 'safepoints.slot') } : undefined;
  const manifest: BaselineManifest = {
    format,
    id: c.string(m, 'id'),
    source: c.string(m, 'source'),
    dispatch: dispatch as Dispatch,
    ...(typeof m.only === 'string' ? { only: m.only } : {}),
    ...(typeof m.exclude === 'string' ? { exclude: m.exclude } : {}),
    table: c.string(m, 'table'),
    setter: c.string(m, 'setter'),
    slots,
    live,
    original: typeof original.table === 'number' ? { table: original.table } : typeof original.section === 'string' ? { section: original.section } : { derived: 'entry' as const },
    ...(noOriginal ? { noOriginal: noOriginal as Record<string, string> } : {}),
    ...(safepoints ? { safepoints } : {}),
    ...(m.consistency === 'quiescent' ? { consistency: 'quiescent' as const, active: c.string(m, 'active') } : {}),
    functions,
    memories: exportList('memories', false),
    tables: exportList('tables', true),
    globals: exportList('globals', true),
    tags: exportList('tags', false),
  };
  if (!/^[0-9a-f]{64}$/.test(manifest.id)) c.fail('id', 'must be a SHA-256 hex digest');
  throwProblems('E_MANIFEST_INVALID', 'invalid baseline manifest', c.problems);
  return manifest;
}

/**
 * Reads and validates a patch manifest.
 * @throws HotpatchError E_MANIFEST_MISSING, E_MANIFEST_INVALID (every problem listed)
 */
export function decodePatchManifest(bytes: Uint8Array): PatchManifest {
  return parsePatchManifest(patchManifestText(bytes));
}

/**
 * The text of a patch's manifest section, unparsed (the engine caches parses by it).
 * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM, E_MANIFEST_MISSING, E_MANIFEST_INVALID (several sections)
 */
export function patchManifestText(bytes: Uint8Array): string {
  const sections = findCustomSections(bytes, PATCH_SECTION);
  if (sections.length === 0) {
    throw new HotpatchError('E_MANIFEST_MISSING', `not a patch: no "${PATCH_SECTION}" section (build it with \`wasm-hotpatch build\`)`);
  }
  if (sections.length > 1) throw new HotpatchError('E_MANIFEST_INVALID', `patch has ${sections.length} "${PATCH_SECTION}" sections`);
  return fromUtf8(sections[0]!.payload);
}

/**
 * Parses and validates a patch manifest's text.
 * @throws HotpatchError E_MANIFEST_INVALID (every problem listed)
 */
export function parsePatchManifest(text: string): PatchManifest {
  return validatePatchManifest(parseJson(text, 'patch'));
}

/**
 * Validates a patch manifest object (as decoded, or as written by hand in a JSON file).
 * `requireBaseline: false` accepts a manifest whose baseline id the builder will fill in.
 * @throws HotpatchError E_MANIFEST_INVALID
 */
export function validatePatchManifest(value: unknown, { requireBaseline = true } = {}): PatchManifest {
  const c = new Checker('patch');
  const m = c.object(value, '(root)');
  const format = m.format === undefined && !requireBaseline ? FORMAT_VERSION : c.int(m, 'format');
  if (format !== FORMAT_VERSION && c.problems.length === 0) c.fail('format', `is ${format}; this version reads format ${FORMAT_VERSION}`);
  const id = c.string(m, 'id');
  if (id.length === 0 || id.length > 200 || /[\u0000-\u001f]/.test(id)) c.fail('id', 'must be 1–200 printable characters');
  const sequence = c.int(m, 'sequence');
  const baseline = c.string(m, 'baseline', 'baseline', !requireBaseline);
  if ((requireBaseline || baseline !== '') && !/^[0-9a-f]{64}$/.test(baseline)) c.fail('baseline', 'must be a baseline id (SHA-256 hex)');
  if (m.cumulative !== undefined && typeof m.cumulative !== 'boolean') c.fail('cumulative', 'must be true or false');
  const description = c.string(m, 'description', 'description', true);
  const targets = c.array(m.targets, 'targets').map((t, i): PatchTarget => {
    const o = c.object(t, `targets[${i}]`);
    return { function: c.string(o, 'function', `targets[${i}].function`), export: c.string(o, 'export', `targets[${i}].export`) };
  });
  if (targets.length === 0 && Array.isArray(m.targets)) c.fail('targets', 'must name at least one function');
  throwProblems('E_MANIFEST_INVALID', 'invalid patch manifest', c.problems);
  if (m.signer !== undefined && typeof m.signer !== 'string') c.fail('signer', 'must be a key id');
  return { format, id, sequence, baseline, cumulative: m.cumulative === true, description, targets, ...(typeof m.signer === 'string' ? { signer: m.signer } : {}) };
}

/**
 * The module with its name-section module name set (replacing any): V8 prints it in every stack
 * frame of the module's code, which is how a trap is traced to the patch it happened in.
 */
export function withModuleName(bytes: Uint8Array, moduleName: string): Uint8Array {
  const [existing] = findCustomSections(bytes, 'name');
  const rest: Uint8Array[] = [];
  if (existing) {
    // Keep every subsection but the module name (id 0).
    const r = new ByteReader(existing.payload);
    try {
      while (!r.done) {
        const start = r.pos;
        const id = r.u8();
        const size = r.u32();
        r.skip(size);
        if (id !== 0) rest.push(existing.payload.subarray(start, r.pos));
      }
    } catch {
      rest.length = 0; // a malformed name section is dropped: names are debug information
    }
  }
  const name = new ByteWriter().name(moduleName).finish();
  const payload = new ByteWriter().u8(0).u32(name.length).bytes(name);
  for (const sub of rest) payload.bytes(sub);
  const section = customSection('name', payload.finish());
  const bare = existing ? withoutRanges(bytes, [existing]) : bytes;
  const out = new Uint8Array(bare.length + section.length);
  out.set(bare);
  out.set(section, bare.length);
  return out;
}

/** The patch a trap happened in: the module name of the innermost Wasm frame, if it is a patch's. */
export function patchOfTrap(error: unknown): string | undefined {
  const stack = (error as Error | undefined)?.stack ?? '';
  // The innermost Wasm frame, named or not: wasm://wasm/<name>-<hash>:… or wasm://wasm/<hash>:…
  const frame = /wasm:\/\/wasm\/(\S+?):wasm-function/.exec(stack)?.[1];
  if (!frame?.startsWith('hotpatch:')) return undefined;
  return frame.slice('hotpatch:'.length).replace(/-[0-9a-f]+$/, '');
}
