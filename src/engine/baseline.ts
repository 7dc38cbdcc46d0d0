import { unzlibSync } from 'fflate';
import { HotpatchError } from '../errors.js';
import { BASELINE_SECTION, type BaselineFunction, type BaselineManifest, computeBaselineId, decodeBaselineManifest, parseBaselineManifest } from '../format/manifest.js';
import { deriveOriginals } from '../format/originals.js';
import type { Setter } from './slots.js';

type Imports = Record<string, Record<string, unknown>>;

/**
 * A running baseline instance and what its manifest says is where: the hotpatch table and its
 * setter, each function's live entry, and its original. Reads only: slots are written by `Slots`.
 */
export class Baseline {
  readonly instance: WebAssembly.Instance;
  readonly module: WebAssembly.Module;
  readonly manifest: BaselineManifest;
  readonly table: WebAssembly.Table;
  readonly set: Setter;
  /** Quiescent baselines: how many activations of a slot's function run in this thread. */
  readonly active: ((slot: number) => number) | undefined;
  readonly #bySlot: BaselineFunction[] = [];
  #originals: WebAssembly.Exports | undefined;
  /** The baseline's bytes when known: a baseline with derived originals rebuilds them from its bodies. */
  readonly #bytes: Uint8Array | undefined;

  /** @throws HotpatchError E_NOT_A_BASELINE when the instance lacks the table and setter its manifest names */
  constructor(instance: WebAssembly.Instance, module: WebAssembly.Module, manifest: BaselineManifest, bytes?: Uint8Array) {
    this.#bytes = bytes;
    this.instance = instance;
    this.module = module;
    this.manifest = manifest;
    for (const f of manifest.functions) if (f.slot !== undefined) this.#bySlot[f.slot] = f;
    const table = instance.exports[manifest.table];
    const set = instance.exports[manifest.setter];
    const expected = manifest.slots + manifest.functions.length + ('table' in manifest.original ? manifest.slots : 0) + (manifest.safepoints ? 1 : 0);
    if (!(table instanceof WebAssembly.Table) || typeof set !== 'function' || table.length !== expected) {
      throw new HotpatchError('E_NOT_A_BASELINE', 'instance does not export the hotpatch table and setter its manifest names');
    }
    this.table = table;
    this.set = set as Setter;
    this.active = manifest.active ? (instance.exports[manifest.active] as (slot: number) => number) : undefined;
  }

  /** The function that owns a slot. */
  bySlot(slot: number): BaselineFunction {
    return this.#bySlot[slot]!;
  }

  /** The live entry of any function: calling it reaches whatever patch owns it now. */
  live(fn: BaselineFunction): Function {
    return this.table.get(this.manifest.live + fn.index) as Function;
  }

  /** What a slot holds when no patch owns it. */
  restore(slot: number): Function {
    const { original } = this.manifest;
    if ('table' in original) return this.table.get(original.table + slot) as Function;
    return this.live(this.#bySlot[slot]!);
  }

  /**
   * The original implementation: bypasses patches on entry, but its own calls still reach them.
   * @throws HotpatchError E_IMPORT_UNRESOLVED when prepare could not keep it, E_ORIGINALS_UNAVAILABLE, E_MANIFEST_INVALID
   */
  original(fn: BaselineFunction): Function {
    const { original } = this.manifest;
    if (fn.slot === undefined) return this.live(fn); // nothing can patch it: live is original
    if ('table' in original) return this.table.get(original.table + fn.slot) as Function;
    const reason = this.manifest.noOriginal?.[String(fn.index)];
    if (reason) throw new HotpatchError('E_IMPORT_UNRESOLVED', `the original of "${fn.name}" is not available: ${reason}`);
    this.#originals ??= this.#instantiateOriginals(original);
    return this.#originals[String(fn.index)] as Function;
  }

  /**
   * Instantiates the baseline's originals module (entry dispatch), once, the first time something
   * needs an original. Synchronous, so a test stub can be installed from inside an import callback.
   */
  #instantiateOriginals(original: { readonly section: string } | { readonly derived: 'entry' }): WebAssembly.Exports {
    let bytes: Uint8Array;
    if ('section' in original) {
      const [compressed] = WebAssembly.Module.customSections(this.module, original.section);
      if (!compressed) throw new HotpatchError('E_MANIFEST_INVALID', `baseline has no "${original.section}" section`);
      bytes = unzlibSync(new Uint8Array(compressed));
    } else {
      if (!this.#bytes) {
        throw new HotpatchError(
          'E_ORIGINALS_UNAVAILABLE',
          'this baseline rebuilds its originals from its own bytes, and the guest was adopted without them: pass { baselineBytes } to Guest.adopt (or prepare with originals "embedded")',
        );
      }
      bytes = deriveOriginals(this.#bytes, this.manifest).bytes;
    }
    const live: Record<string, unknown> = {};
    for (const f of this.manifest.functions) live[String(f.index)] = this.live(f);
    const baseline: Record<string, unknown> = {};
    for (const x of [...this.manifest.memories, ...this.manifest.tables, ...this.manifest.globals, ...this.manifest.tags]) {
      baseline[x.export] = this.instance.exports[x.export];
    }
    const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    return new WebAssembly.Instance(module, { live, baseline } as WebAssembly.Imports).exports;
  }

  /** The exported memories' sizes in bytes, to tell whether a hook grew one. */
  memorySizes(): number[] {
    return this.manifest.memories.map((m) => (this.instance.exports[m.export] as WebAssembly.Memory | undefined)?.buffer.byteLength ?? 0);
  }
}

/**
 * Compiles and instantiates a baseline from bytes (verifying its id against them) or a module.
 * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM, E_NOT_A_BASELINE, E_MANIFEST_INVALID, E_BASELINE_TAMPERED, E_INSTANTIATE_FAILED
 */
export async function instantiateBaseline(source: Uint8Array | ArrayBuffer | WebAssembly.Module, imports: Imports, verify: boolean): Promise<Baseline> {
  let module: WebAssembly.Module;
  let manifest: BaselineManifest;
  let bytes: Uint8Array | undefined;
  if (source instanceof WebAssembly.Module) {
    module = source;
    manifest = manifestOf(module);
  } else {
    bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
    manifest = decodeBaselineManifest(bytes);
    if (verify) {
      const id = await computeBaselineId(bytes);
      if (id !== manifest.id) {
        throw new HotpatchError('E_BASELINE_TAMPERED', `baseline bytes hash to ${id.slice(0, 12)}… but its manifest says ${manifest.id.slice(0, 12)}…: the module was changed after prepare`);
      }
    }
    try {
      module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    } catch (cause) {
      throw new HotpatchError('E_INVALID_WASM', `baseline does not compile: ${(cause as Error).message}`, { cause });
    }
  }
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, imports as WebAssembly.Imports);
  } catch (cause) {
    throw new HotpatchError('E_INSTANTIATE_FAILED', `baseline does not instantiate: ${(cause as Error).message}`, { cause });
  }
  return new Baseline(instance, module, manifest, bytes);
}

/**
 * Reads a baseline manifest from a compiled module's custom section.
 * @throws HotpatchError E_NOT_A_BASELINE, E_MANIFEST_INVALID
 */
export function manifestOf(module: WebAssembly.Module): BaselineManifest {
  const sections = WebAssembly.Module.customSections(module, BASELINE_SECTION);
  if (sections.length !== 1) {
    throw new HotpatchError(
      'E_NOT_A_BASELINE',
      `not a baseline: ${sections.length === 0 ? 'no' : sections.length} "${BASELINE_SECTION}" section${sections.length === 0 ? '' : 's'} (run \`wasm-hotpatch prepare\` first)`,
    );
  }
  return parseBaselineManifest(new Uint8Array(sections[0]!));
}
