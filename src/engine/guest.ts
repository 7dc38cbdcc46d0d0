import { formatProblems, HotpatchError, type Problem } from '../errors.js';
import {
  BASELINE_SECTION,
  type BaselineFunction,
  type BaselineManifest,
  computeBaselineId,
  decodeBaselineManifest,
  decodePatchManifest,
  type Dispatch,
  type PatchManifest,
  FORMAT_VERSION,
  parseBaselineManifest,
} from '../format/manifest.js';
import { unzlibSync } from 'fflate';
import { deriveOriginals } from '../format/originals.js';
import { checkSize, checkTrust, type PatchPolicy, signaturesRequired } from './policy.js';
import { parseModule } from '../format/module.js';
import { COMMITTER_MIN_TARGETS, type Committer, finishCommitter, type StagedCommitter, stageCommitter } from './_committer.js';
import { emptyInstance, hostFunction, parseSignature } from './_host.js';
import { patchOfTrap } from '../format/manifest.js';
import { checkPatch, FunctionIndex, type HOOKS, type PatchCheck } from '../format/check.js';
import { GuestEvent, type GuestEventType } from './events.js';
import { Patch, type PatchInternals, patchInternals, type PatchState } from './patch.js';
import { PatchStacks } from './stacks.js';

type Imports = Record<string, Record<string, unknown>>;

/** Options of a guest. */
export interface GuestOptions {
  /**
   * Imports beyond the baseline that patches may take, by module and name (the host's policy).
   * Anything a patch imports that is not here or from its baseline is rejected at load.
   */
  readonly hostImports?: Imports;
  /** Recompute the baseline id from its bytes and refuse a mismatch (default true; bytes only). */
  readonly verifyBaseline?: boolean;
  /** What patches this host accepts: who must have signed them, how large they may be. */
  readonly policy?: PatchPolicy;
  /**
   * The baseline's bytes, for `adopt`: a baseline with derived originals rebuilds them from its
   * own bodies when one is first needed (`instantiate` from bytes keeps them itself).
   */
  readonly baselineBytes?: Uint8Array;
}


/** Options of `load` and `apply`. */
export interface ApplyOptions {
  /** Allow a patch older than an applied cumulative patch (anti-downgrade override). */
  readonly force?: boolean;
  /** Quiescent baselines: apply even while a target function is running (its activations finish in old code). */
  readonly whileActive?: boolean;
  /**
   * A health check run right after the switch: a function, or the name of a guest export taking
   * no arguments. A throw (a trap), `false` or `0` rolls the patch back at once (E_ROLLED_BACK).
   */
  readonly probe?: (() => unknown) | string;
  /**
   * Watch the patched functions after the switch: `traps` traps in the patch's own code (default 1)
   * within `calls` calls or `window` ms (default: until revert) roll it back, at the trap.
   */
  readonly watch?: { readonly traps?: number; readonly calls?: number; readonly window?: number };
}

/** One patch as `status()` reports it. */
export interface PatchStatus {
  readonly id: string;
  readonly sequence: number;
  readonly cumulative: boolean;
  readonly description: string;
  readonly state: PatchState;
  readonly targets: readonly string[];
  readonly loadedAt: string;
  readonly appliedAt?: string;
  readonly revertedAt?: string;
  readonly replacedBy?: string;
  readonly rollback?: { readonly reason: string; readonly evidence?: string; readonly at: string };
}

/** The guest's patch level: livepatch's sysfs, the Windows hotpatch report. */
export interface GuestStatus {
  readonly baseline: string;
  readonly dispatch: Dispatch;
  readonly slots: number;
  readonly patches: readonly PatchStatus[];
  /** Every patched function and the patch that owns it now (`stack` lists all, bottom first). */
  readonly functions: readonly { function: string; index: number; slot: number; patch: string; stack: readonly string[] }[];
}

const now = (): number => globalThis.performance.now();

/** A load whose checks passed: what its second half needs. */
interface BegunLoad {
  readonly manifest: PatchManifest;
  readonly check: PatchCheck;
  readonly slots: Int32Array;
  readonly restores: readonly Function[];
  readonly staged: StagedCommitter | undefined;
}

/**
 * A running baseline instance and its patch stack. Loading validates, compiles and instantiates
 * a patch with no effect on the guest; applying and reverting only write table slots.
 */
export class Guest extends EventTarget {
  readonly instance: WebAssembly.Instance;
  readonly module: WebAssembly.Module;
  readonly manifest: BaselineManifest;
  readonly #functions: FunctionIndex;
  readonly #bySlot: BaselineFunction[];
  readonly #table: WebAssembly.Table;
  readonly #set: (slot: number, target: unknown, patched: number) => void;
  readonly #active: ((slot: number) => number) | undefined;
  readonly #hostImports: Imports;
  readonly #policy: PatchPolicy;
  readonly #hostNames: Set<string>;
  readonly #patches = new Map<string, Patch>();
  readonly #stacks: PatchStacks<Patch>;
  #originals: WebAssembly.Exports | undefined;
  readonly #bytes: Uint8Array | undefined;
  #hostPatches = 0;
  /** Milliseconds the last apply or revert spent writing table slots: the pause the guest saw. */
  lastCommit = 0;
  /** Bumped by every apply and revert: cached lookups of what a function runs check it. */
  #generation = 0;
  readonly #owner = {};

  private constructor(instance: WebAssembly.Instance, module: WebAssembly.Module, manifest: BaselineManifest, options: GuestOptions) {
    super();
    this.instance = instance;
    this.module = module;
    this.manifest = manifest;
    this.#functions = new FunctionIndex(manifest.functions);
    this.#bySlot = [];
    for (const f of manifest.functions) if (f.slot !== undefined) this.#bySlot[f.slot] = f;
    const table = instance.exports[manifest.table];
    const set = instance.exports[manifest.setter];
    const expected = manifest.slots + manifest.functions.length + ('table' in manifest.original ? manifest.slots : 0) + (manifest.safepoints ? 1 : 0);
    if (!(table instanceof WebAssembly.Table) || typeof set !== 'function' || table.length !== expected) {
      throw new HotpatchError('E_NOT_A_BASELINE', 'instance does not export the hotpatch table and setter its manifest names');
    }
    this.#table = table;
    this.#set = set as (slot: number, target: unknown, patched: number) => void;
    this.#stacks = new PatchStacks(manifest.slots);
    this.#active = manifest.active ? (instance.exports[manifest.active] as (slot: number) => number) : undefined;
    this.#hostImports = options.hostImports ?? {};
    this.#policy = options.policy ?? {};
    this.#bytes = options.baselineBytes;
    // Compile the setter now (V8 compiles lazily) by writing slot 0's unpatched state again: the first apply is not the slow one.
    if (manifest.slots > 0) this.#set(0, this.#restore(0), 0);
    this.#hostNames = new Set(Object.entries(this.#hostImports).flatMap(([m, o]) => Object.keys(o).map((n) => `${m}.${n}`)));
  }

  /**
   * Compiles and instantiates a baseline, verifying its id against its bytes.
   * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM, E_NOT_A_BASELINE, E_MANIFEST_INVALID, E_BASELINE_TAMPERED, E_INSTANTIATE_FAILED
   */
  static async instantiate(source: Uint8Array | ArrayBuffer | WebAssembly.Module, imports: Imports = {}, options: GuestOptions = {}): Promise<Guest> {
    let module: WebAssembly.Module;
    let manifest: BaselineManifest;
    let baselineBytes = options.baselineBytes;
    if (source instanceof WebAssembly.Module) {
      module = source;
      manifest = manifestOf(module);
    } else {
      const bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
      baselineBytes ??= bytes;
      manifest = decodeBaselineManifest(bytes);
      if (options.verifyBaseline !== false) {
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
    return new Guest(instance, module, manifest, baselineBytes ? { ...options, baselineBytes } : options);
  }

  /**
   * Wraps an instance some other code made (a toolchain's own JS glue) from a baseline module.
   * Glue that hands back only the exports object (wasm-bindgen's `init`) can pass that instead.
   * @throws HotpatchError E_NOT_A_BASELINE, E_MANIFEST_INVALID
   */
  static adopt(instance: WebAssembly.Instance | WebAssembly.Exports, module: WebAssembly.Module, options: GuestOptions = {}): Guest {
    const inst = instance instanceof WebAssembly.Instance ? instance : ({ exports: instance } as WebAssembly.Instance);
    return new Guest(inst, module, manifestOf(module), options);
  }

  /** The instance's exports (for calling the guest). */
  get exports(): WebAssembly.Exports {
    return this.instance.exports;
  }

  /** A loaded patch by id. */
  patch(id: string): Patch | undefined {
    return this.#patches.get(id);
  }

  /**
   * Validates, compiles and instantiates a patch without any effect on the guest. Every problem
   * found is reported at once.
   * @throws HotpatchError E_PATCH_REJECTED (with `problems`: E_NOT_WASM, E_INVALID_WASM, E_MANIFEST_*,
   * E_BASELINE_MISMATCH, E_UNKNOWN_FUNCTION, E_NOT_PATCHABLE, E_DUPLICATE_TARGET, E_MISSING_EXPORT,
   * E_SIGNATURE_MISMATCH, E_IMPORT_*, E_PATCH_HAS_START, E_PATCH_WRITES_BASELINE, E_BAD_HOOK,
   * E_ALREADY_LOADED, E_ALREADY_APPLIED, E_DOWNGRADE, E_INSTANTIATE_FAILED)
   */
  async load(bytes: Uint8Array | ArrayBuffer, options: ApplyOptions = {}): Promise<Patch> {
    const start = now();
    const ids: { id?: string } = {};
    try {
      const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
      // Trust first: nothing of an untrusted patch is compiled.
      const verifying = checkTrust(data, this.#policy);
      if (verifying !== undefined) await verifying;
      // Compile in the background first: the checks and the commit staging below overlap it.
      const compiling = WebAssembly.compile(data as Uint8Array<ArrayBuffer>);
      compiling.catch(() => {}); // a failed check below wins over a failed compile
      const begun = this.#beginLoad(data, options, ids);
      let module: WebAssembly.Module;
      try {
        module = await compiling;
      } catch (cause) {
        throw rejection(ids.id, [notCompiled(cause)], cause);
      }
      let instance: WebAssembly.Instance;
      try {
        instance = await WebAssembly.instantiate(module, this.#importObject(begun.check) as WebAssembly.Imports);
      } catch (cause) {
        throw rejection(ids.id, [notInstantiated(cause)], cause);
      }
      return this.#finishLoad(begun, instance, options, start);
    } catch (error) {
      throw this.#rejected(error, ids.id, start);
    }
  }

  /**
   * `load`, synchronously: for a worker serving a request at a safepoint, inside a Wasm call that
   * cannot await. Pass the module compiled ahead (a `WebAssembly.Module` crosses threads) to skip
   * compiling here; browsers refuse synchronous compiles of large modules on the main thread.
   * @throws HotpatchError E_PATCH_REJECTED, as `load`
   */
  loadSync(bytes: Uint8Array | ArrayBuffer, options: ApplyOptions & { readonly module?: WebAssembly.Module } = {}): Patch {
    const start = now();
    const ids: { id?: string } = {};
    try {
      const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
      checkSize(data, this.#policy);
      if (signaturesRequired(this.#policy)) {
        throw rejection(undefined, [{ code: 'E_UNSIGNED', message: 'this guest requires signed patches, and signatures verify asynchronously: use load(), or verify in the host before sending (WorkerGuest does)' }]);
      }
      const begun = this.#beginLoad(data, options, ids);
      let module = options.module;
      try {
        module ??= new WebAssembly.Module(data as Uint8Array<ArrayBuffer>);
      } catch (cause) {
        throw rejection(ids.id, [notCompiled(cause)], cause);
      }
      let instance: WebAssembly.Instance;
      try {
        instance = new WebAssembly.Instance(module, this.#importObject(begun.check) as WebAssembly.Imports);
      } catch (cause) {
        throw rejection(ids.id, [notInstantiated(cause)], cause);
      }
      return this.#finishLoad(begun, instance, options, start);
    } catch (error) {
      throw this.#rejected(error, ids.id, start);
    }
  }

  /** The synchronous first half of a load: every check, and the commit staged. */
  #beginLoad(data: Uint8Array, options: ApplyOptions, ids: { id?: string }): BegunLoad {
    const { manifest, check } = this.#check(data, options, (x) => (ids.id = x));
    const slots = Int32Array.from(check.targets, (t) => t.slot);
    const restores = check.targets.map((t) => this.#restore(t.slot));
    const staged = slots.length >= COMMITTER_MIN_TARGETS ? stageCommitter(slots, restores) : undefined;
    return { manifest, check, slots, restores, staged };
  }

  #importObject(check: PatchCheck): Imports {
    const importObject: Imports = {};
    for (const { import: imp, binding } of check.imports) {
      const ns = (importObject[imp.module] ??= {});
      if (binding.kind === 'host') ns[imp.name] = this.#hostImports[imp.module]![imp.name];
      else if (binding.kind === 'baseline') ns[imp.name] = this.instance.exports[binding.export];
      else ns[imp.name] = binding.kind === 'live' ? this.#live(binding.fn) : this.#original(binding.fn);
    }
    return importObject;
  }

  /** The second half: the instance becomes a loaded patch (if the guest's state still allows it). */
  #finishLoad(begun: BegunLoad, instance: WebAssembly.Instance, options: ApplyOptions, start: number): Patch {
    const { manifest, check, slots, restores, staged } = begun;
    // The guest may have changed while we awaited (another load or apply): check its state again.
    const stale = this.#stateProblems(manifest, options);
    if (stale.length > 0) throw rejection(manifest.id, stale);
    const hooks: PatchInternals['hooks'] = {};
    for (const [key, name] of Object.entries(check.hooks) as [keyof typeof HOOKS, string][]) {
      hooks[key] = instance.exports[name] as () => unknown;
    }
    const refs = check.targets.map((t) => instance.exports[t.export] as Function);
    let committer: Committer | undefined;
    if (staged) {
      try {
        committer = finishCommitter(staged, this.#set, refs);
      } catch (cause) {
        throw rejection(manifest.id, [{ code: 'E_INSTANTIATE_FAILED', message: `cannot prepare its commit: ${(cause as Error).message}` }], cause);
      }
    }
    const loaded = new Patch(manifest, instance, check.targets.map((t) => t.fn.name), {
      slots,
      refs,
      restores,
      ...(committer ? { committer } : {}),
      hooks,
      owner: this.#owner,
    });
    this.#patches.set(manifest.id, loaded);
    this.#emit('loaded', { patch: manifest.id, duration: now() - start });
    return loaded;
  }

  /**
   * Load answers with one E_PATCH_REJECTED carrying the specific problems. Anything that is not a
   * HotpatchError is a bug of ours, not bad input: it is reported as E_INTERNAL, not disguised.
   */
  #rejected(error: unknown, id: string | undefined, start: number): HotpatchError {
    const err =
      error instanceof HotpatchError && error.code === 'E_PATCH_REJECTED'
        ? error
        : error instanceof HotpatchError
          ? rejection(id, error.problems, error)
          : new HotpatchError('E_INTERNAL', `internal error while loading a patch (a bug in wasm-hotpatch; please report it): ${(error as Error)?.message ?? String(error)}`, { cause: error });
    this.#emit('rejected', { patch: id, duration: now() - start, error: err });
    return err;
  }

  /** Everything about a patch that can be checked without instantiating it. */
  #check(data: Uint8Array, options: ApplyOptions, onId: (id: string) => void) {
    let patch: ReturnType<typeof parseModule>;
    let manifest: ReturnType<typeof decodePatchManifest>;
    try {
      patch = parseModule(data);
      manifest = decodePatchManifest(data);
    } catch (error) {
      if (!(error instanceof HotpatchError)) throw error;
      throw rejection(undefined, error.problems, error);
    }
    onId(manifest.id);
    if (manifest.baseline !== this.manifest.id) {
      throw rejection(manifest.id, [
        {
          code: 'E_BASELINE_MISMATCH',
          message: `built for baseline ${manifest.baseline.slice(0, 12)}…, but this guest runs ${this.manifest.id.slice(0, 12)}…`,
          path: 'baseline',
        },
      ]);
    }
    const check = checkPatch(this.manifest, this.#functions, patch, manifest, this.#hostNames);
    const problems: Problem[] = [...check.problems, ...this.#stateProblems(manifest, options)];
    if (problems.length > 0) throw rejection(manifest.id, problems);
    return { patch, manifest, check };
  }

  /** What the guest's current patch level says against loading this patch: id in use, downgrade. */
  #stateProblems(manifest: ReturnType<typeof decodePatchManifest>, options: ApplyOptions): Problem[] {
    const problems: Problem[] = [];
    const existing = this.#patches.get(manifest.id);
    if (existing?.state === 'applied') problems.push({ code: 'E_ALREADY_APPLIED', message: `a patch with id "${manifest.id}" is already applied`, path: 'id' });
    else if (existing?.state === 'loaded') problems.push({ code: 'E_ALREADY_LOADED', message: `a patch with id "${manifest.id}" is already loaded`, path: 'id' });
    const downgrade = this.#downgrade(manifest.id, manifest.sequence, options);
    if (downgrade) problems.push(downgrade);
    return problems;
  }

  #downgrade(id: string, sequence: number, options: ApplyOptions): Problem | undefined {
    if (options.force && this.#policy.allowForcedDowngrade !== false) return undefined;
    for (const p of this.#patches.values()) {
      if (p.id !== id && p.state === 'applied' && p.cumulative && p.sequence > sequence) {
        return {
          code: 'E_DOWNGRADE',
          message: `sequence ${sequence} is older than cumulative patch "${p.id}" (sequence ${p.sequence}) that is applied; ${this.#policy.allowForcedDowngrade === false ? "this host's policy does not allow forcing a downgrade" : 'pass force to downgrade'}`,
          path: 'sequence',
        };
      }
    }
    return undefined;
  }

  /** The live entry of any function: calling it reaches whatever patch owns it now. */
  #live(fn: BaselineFunction): Function {
    return this.#table.get(this.manifest.live + fn.index) as Function;
  }

  /** What a slot holds when no patch owns it, and the flag that goes with it. */
  #restore(slot: number): Function {
    const { original } = this.manifest;
    if ('table' in original) return this.#table.get(original.table + slot) as Function;
    return this.#live(this.#bySlot[slot]!);
  }

  /** The original implementation: bypasses patches on entry, but its own calls still reach them. */
  #original(fn: BaselineFunction): Function {
    const { original } = this.manifest;
    if (fn.slot === undefined) return this.#live(fn); // nothing can patch it: live is original
    if ('table' in original) return this.#table.get(original.table + fn.slot) as Function;
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
        throw new HotpatchError('E_ORIGINALS_UNAVAILABLE', 'this baseline rebuilds its originals from its own bytes, and the guest was adopted without them: pass { baselineBytes } to Guest.adopt (or prepare with originals "embedded")');
      }
      bytes = deriveOriginals(this.#bytes, this.manifest);
    }
    const live: Record<string, unknown> = {};
    for (const f of this.manifest.functions) live[String(f.index)] = this.#live(f);
    const baseline: Record<string, unknown> = {};
    for (const x of [...this.manifest.memories, ...this.manifest.tables, ...this.manifest.globals, ...this.manifest.tags]) {
      baseline[x.export] = this.instance.exports[x.export];
    }
    const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    return new WebAssembly.Instance(module, { live, baseline } as WebAssembly.Imports).exports;
  }

  #patchable(name: string, what: string): BaselineFunction & { slot: number } {
    const fn = this.#functions.resolve(name, what);
    if ('code' in fn) throw new HotpatchError(fn.code, fn.message);
    if (fn.slot === undefined) throw new HotpatchError('E_NOT_PATCHABLE', `${what}: "${name}" is not patchable (${fn.reason ?? 'no slot'})`);
    return fn as BaselineFunction & { slot: number };
  }

  /**
   * A function's original implementation, callable from JS: patches are bypassed on entry, and
   * the original's own calls (recursion included) still reach them.
   * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE, E_IMPORT_UNRESOLVED
   */
  original(name: string): Function {
    return this.#original(this.#patchable(name, 'original'));
  }

  /**
   * What a function runs now: the replacement of the patch on top of its stack, or its original.
   * With `below`, what runs under that patch (what a wrapper such as a spy should call).
   * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE
   */
  implementation(name: string, options: { below?: Patch } = {}): Function {
    const fn = this.#patchable(name, 'implementation');
    const owner = options.below ? this.#stacks.under(fn.slot, options.below) : this.#stacks.top(fn.slot);
    if (!owner) return this.#original(fn);
    const inner = patchInternals(owner)!;
    return inner.refs[inner.slots.indexOf(fn.slot)]!;
  }

  /**
   * Installs the function a busy guest calls at its safepoints (every `interval` polls; see
   * prepare's `safepoints`). The worker runtime serves pending patch work there.
   * @throws HotpatchError E_NOT_A_BASELINE when the baseline was prepared without safepoints
   */
  setSafepointHandler(handler: () => void): void {
    const sp = this.manifest.safepoints;
    if (!sp) throw new HotpatchError('E_NOT_A_BASELINE', 'this baseline has no safepoints: prepare it with the safepoints option');
    this.#table.set(sp.slot, hostFunction('() -> ()', handler));
  }

  /**
   * Like `implementation`, as a getter that re-resolves only when the patch level changed: for
   * wrappers (spies, faults) that call what is below them on every call.
   * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE
   */
  implementationGetter(name: string, options: { below?: Patch } = {}): () => Function {
    this.#patchable(name, 'implementation');
    let seen = -1;
    let cached: Function | undefined;
    return () => {
      if (seen !== this.#generation) {
        cached = this.implementation(name, options);
        seen = this.#generation;
      }
      return cached!;
    };
  }

  /**
   * Applies JavaScript functions as a patch, synchronously: test stubs, spies, fault injection.
   * Each is wrapped in a tiny module of its target's exact signature (one cached per signature),
   * so the guest calls it like any patch and the usual stacking and revert rules hold. i64 values
   * are BigInts; a function with several results returns an array.
   * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE, E_DUPLICATE_TARGET, E_ALREADY_LOADED
   */
  applyFunctions(replacements: Readonly<Record<string, Function>>, options: { id?: string; description?: string } = {}): Patch {
    const start = now();
    const id = options.id ?? `host-${++this.#hostPatches}`;
    if (this.#patches.has(id) && this.#patches.get(id)!.state !== 'reverted') throw new HotpatchError('E_ALREADY_LOADED', `a patch with id "${id}" is loaded`);
    const targets = Object.entries(replacements).map(([name, impl]) => {
      if (typeof impl !== 'function') throw new HotpatchError('E_USAGE', `replacement for "${name}" is not a function`);
      return { name, fn: this.#patchable(name, 'replace'), impl };
    });
    for (const t of targets) {
      // The adapter has the target's exact Wasm signature; a JS function expecting more arguments
      // than the target passes is wrong (fewer is fine: JS ignores the rest).
      const params = parseSignature(t.fn.signature).params.length;
      if (t.impl.length > params) {
        throw new HotpatchError('E_SIGNATURE_MISMATCH', `replacement for "${t.name}" takes ${t.impl.length} parameters; "${t.fn.name}" has ${params}: ${t.fn.signature}`);
      }
    }
    const slots = Int32Array.from(targets, (t) => t.fn.slot);
    if (new Set(slots).size !== slots.length) throw new HotpatchError('E_DUPLICATE_TARGET', 'two replacements name the same function');
    const refs = targets.map((t) => hostFunction(t.fn.signature, t.impl));
    const manifest = {
      format: FORMAT_VERSION,
      id,
      sequence: 0,
      baseline: this.manifest.id,
      cumulative: false,
      description: options.description ?? 'JavaScript replacement',
      targets: targets.map((t) => ({ function: t.name, export: t.name })),
    };
    const patch = new Patch(manifest, emptyInstance(), targets.map((t) => t.fn.name), {
      slots,
      refs,
      restores: targets.map((t) => this.#restore(t.fn.slot)),
      hooks: {},
      owner: this.#owner,
    });
    this.#patches.set(id, patch);
    this.#emit('loaded', { patch: id, duration: now() - start });
    // Stubs go in even while their target runs (from inside an import callback, mid-call).
    return this.apply(patch, { force: true, whileActive: true });
  }

  #resolve(patch: Patch | string): Patch {
    const p = typeof patch === 'string' ? this.#patches.get(patch) : patch;
    if (!p) throw new HotpatchError('E_UNKNOWN_PATCH', `no patch "${String(patch)}" is loaded in this guest`);
    if (patchInternals(p)?.owner !== this.#owner) throw new HotpatchError('E_WRONG_GUEST', `patch "${p.id}" was loaded into another guest`);
    return p;
  }

  /**
   * Forward attach: switches every target of a loaded patch to the patch, all at once, after its
   * pre-apply hook agrees. A cumulative patch also returns every function it does not replace to
   * the original and marks earlier patches replaced.
   * On a quiescent baseline it also refuses while a target function is running in this thread.
   * With `probe` or `watch`, a failing health check rolls the patch back (state `rolled-back`).
   * @throws HotpatchError E_UNKNOWN_PATCH, E_WRONG_GUEST, E_ALREADY_APPLIED, E_DOWNGRADE, E_ACTIVE, E_VETOED, E_HOOK_TRAPPED, E_ROLLED_BACK
   */
  apply(patch: Patch | string, options: ApplyOptions = {}): Patch {
    const start = now();
    const p = this.#resolve(patch);
    if (p.state === 'applied') throw new HotpatchError('E_ALREADY_APPLIED', `patch "${p.id}" is already applied`);
    const downgrade = this.#downgrade(p.id, p.sequence, options);
    if (downgrade) throw new HotpatchError('E_DOWNGRADE', `patch "${p.id}": ${downgrade.message}`);
    const inner = patchInternals(p)!;
    if (this.#active && !options.whileActive) {
      const running = [...inner.slots].filter((slot) => this.#active!(slot) > 0);
      if (running.length > 0) {
        throw new HotpatchError('E_ACTIVE', `patch "${p.id}": ${running.map((s) => `"${this.#bySlot[s]!.name}"`).join(', ')} ${running.length === 1 ? 'is' : 'are'} running in this thread; nothing changed (apply at a quiet moment, or pass whileActive)`);
      }
    }
    this.#runPreHook(p, inner.hooks.preApply, 'pre-apply');

    // Everything below only writes: no step can fail.
    const { slots, refs } = inner;
    let commit: number;
    if (p.cumulative) {
      const mine = new Set(slots);
      const others = this.#stacks.patchedSlots().filter((slot) => !mine.has(slot));
      const restores = others.map((slot) => this.#restore(slot));
      const t0 = now();
      for (let i = 0; i < slots.length; i++) this.#set(slots[i]!, refs[i], 1);
      for (let i = 0; i < others.length; i++) this.#set(others[i]!, restores[i], 0);
      commit = now() - t0;
      for (const q of this.#patches.values()) {
        if (q !== p && q.state === 'applied') {
          q.state = 'replaced';
          q.replacedBy = p.id;
        }
      }
      this.#stacks.clear();
    } else if (inner.committer) {
      const t0 = now();
      inner.committer.apply();
      commit = now() - t0;
    } else {
      const t0 = now();
      for (let i = 0; i < slots.length; i++) this.#set(slots[i]!, refs[i], 1);
      commit = now() - t0;
    }
    this.#stacks.push(p, slots);
    p.state = 'applied';
    p.appliedAt = new Date();
    p.revertedAt = undefined;
    p.replacedBy = undefined;
    this.#runPostHook(p, inner.hooks.postApply, 'post-apply');
    this.#emit('applied', { patch: p.id, duration: now() - start, commit });
    if (options.watch) this.#watch(p, options.watch);
    if (options.probe !== undefined) this.#probe(p, options.probe);
    return p;
  }

  /** Runs a health probe; a failure rolls the patch back and throws E_ROLLED_BACK. */
  #probe(p: Patch, probe: (() => unknown) | string): void {
    let verdict: unknown;
    try {
      verdict = typeof probe === 'string' ? (this.instance.exports[probe] as () => unknown)() : probe();
    } catch (error) {
      this.#rollBack(p, `the probe failed: ${(error as Error)?.message ?? String(error)}`, (error as Error)?.stack);
      throw new HotpatchError('E_ROLLED_BACK', `patch "${p.id}" rolled back: ${p.rollback!.reason}`, { cause: error });
    }
    if (verdict === false || verdict === 0) {
      this.#rollBack(p, `the probe answered ${String(verdict)}`);
      throw new HotpatchError('E_ROLLED_BACK', `patch "${p.id}" rolled back: ${p.rollback!.reason}`);
    }
  }

  /**
   * Puts a trap counter between the guest and the patch's functions for a while: a JS wrapper of
   * each replacement. A trap whose innermost frame is this patch's code (its module is named
   * `hotpatch:<id>`) counts; at the limit the patch is rolled back before the trap goes on.
   */
  #watch(p: Patch, watch: NonNullable<ApplyOptions['watch']>): void {
    const inner = patchInternals(p)!;
    const limit = watch.traps ?? 1;
    const deadline = watch.window === undefined ? Number.POSITIVE_INFINITY : now() + watch.window;
    let calls = 0;
    let traps = 0;
    let watching = true;
    const unwatch = (): void => {
      if (!watching) return;
      watching = false;
      for (let i = 0; i < inner.slots.length; i++) if (this.#stacks.top(inner.slots[i]!) === p) this.#set(inner.slots[i]!, inner.refs[i], 1);
    };
    for (let i = 0; i < inner.slots.length; i++) {
      const raw = inner.refs[i] as (...args: unknown[]) => unknown;
      const wrapper = hostFunction(this.#bySlot[inner.slots[i]!]!.signature, (...args: unknown[]) => {
        if (watching && (++calls > (watch.calls ?? Number.POSITIVE_INFINITY) || now() > deadline)) unwatch();
        try {
          return raw(...args);
        } catch (error) {
          if (watching && p.state === 'applied' && patchOfTrap(error) === p.id && ++traps >= limit) {
            watching = false;
            this.#rollBack(p, `${traps} trap${traps === 1 ? '' : 's'} in its code: ${(error as Error)?.message ?? String(error)}`, (error as Error)?.stack);
          }
          throw error;
        }
      });
      this.#set(inner.slots[i]!, wrapper, 1);
    }
  }

  /** Reverts a patch because its health checks failed, and says so in its state. */
  #rollBack(p: Patch, reason: string, evidence?: string): void {
    if (p.state === 'applied') this.revert(p);
    p.state = 'rolled-back';
    p.rollback = { reason, ...(evidence ? { evidence } : {}), at: new Date() };
    this.#emit('rolled-back', { patch: p.id, duration: 0 });
  }

  /**
   * Reverse attach: removes an applied patch (not only the newest). Each of its functions goes back
   * to whatever is below it in that function's stack: an earlier patch, or the original.
   * @throws HotpatchError E_UNKNOWN_PATCH, E_WRONG_GUEST, E_NOT_APPLIED
   */
  revert(patch: Patch | string): Patch {
    const start = now();
    const p = this.#resolve(patch);
    if (p.state !== 'applied') throw new HotpatchError('E_NOT_APPLIED', `patch "${p.id}" is not applied (it is ${p.state})`);
    const inner = patchInternals(p)!;
    // A failing pre-revert hook must not keep a bad patch in: report it and revert anyway.
    this.#runPostHook(p, inner.hooks.preRevert, 'pre-revert');
    // Each slot this patch owns goes to what is below it: an earlier patch, or the original.
    const { slots, restores } = inner;
    const targets: Function[] = new Array(slots.length);
    const flags = new Int8Array(slots.length).fill(-1); // -1: a newer patch owns the slot and keeps it
    let allRestore = true;
    for (let i = 0; i < slots.length; i++) {
      const below = this.#stacks.below(slots[i]!, p);
      if (below === undefined) {
        targets[i] = restores[i]!;
        flags[i] = 0;
      } else {
        allRestore = false;
        if (below === null) continue;
        const q = patchInternals(below)!;
        targets[i] = q.refs[q.slots.indexOf(slots[i]!)]!;
        flags[i] = 1;
      }
    }
    const t0 = now();
    if (allRestore && inner.committer) inner.committer.restore();
    else for (let i = 0; i < slots.length; i++) if (flags[i] !== -1) this.#set(slots[i]!, targets[i], flags[i]!);
    const commit = now() - t0;
    this.#stacks.remove(p, slots);
    this.#generation++;
    this.lastCommit = commit;
    p.state = 'reverted';
    p.revertedAt = new Date();
    this.#runPostHook(p, inner.hooks.postRevert, 'post-revert');
    this.#emit('reverted', { patch: p.id, duration: now() - start, commit });
    return p;
  }

  /** Forgets a patch that is not applied, so its id can be loaded again. */
  unload(patch: Patch | string): void {
    const p = this.#resolve(patch);
    if (p.state === 'applied') throw new HotpatchError('E_ALREADY_APPLIED', `patch "${p.id}" is applied: revert it first`);
    this.#patches.delete(p.id);
  }

  #runPreHook(p: Patch, hook: (() => unknown) | undefined, name: string): void {
    if (!hook) return;
    let result: unknown;
    try {
      result = hook();
    } catch (cause) {
      // A patch whose pre-apply hook traps is broken, not merely unwilling: it is rolled back
      // (nothing was switched) and says why. A veto (a non-zero answer) leaves it loaded.
      p.state = 'rolled-back';
      p.rollback = { reason: `its ${name} hook trapped: ${(cause as Error).message}`, ...((cause as Error).stack ? { evidence: (cause as Error).stack! } : {}), at: new Date() };
      this.#emit('rolled-back', { patch: p.id, duration: 0 });
      throw new HotpatchError('E_HOOK_TRAPPED', `patch "${p.id}": ${name} hook failed (${(cause as Error).message}); nothing changed`, { cause });
    }
    if (typeof result === 'number' && result !== 0) {
      throw new HotpatchError('E_VETOED', `patch "${p.id}": ${name} hook refused with ${result}; nothing changed`);
    }
  }

  #runPostHook(p: Patch, hook: (() => unknown) | undefined, name: string): void {
    if (!hook) return;
    try {
      hook();
    } catch (cause) {
      const error = new HotpatchError('E_HOOK_TRAPPED', `patch "${p.id}": ${name} hook failed (${(cause as Error).message})`, { cause });
      this.#emit('hook-failed', { patch: p.id, duration: 0, error });
    }
  }

  /** The patch level: every patch and its state, and which patch owns each patched function. */
  status(): GuestStatus {
    const patches = [...this.#patches.values()].map(
      (p): PatchStatus => ({
        id: p.id,
        sequence: p.sequence,
        cumulative: p.cumulative,
        description: p.description,
        state: p.state,
        targets: p.targets,
        loadedAt: p.loadedAt.toISOString(),
        ...(p.appliedAt ? { appliedAt: p.appliedAt.toISOString() } : {}),
        ...(p.revertedAt ? { revertedAt: p.revertedAt.toISOString() } : {}),
        ...(p.replacedBy ? { replacedBy: p.replacedBy } : {}),
        ...(p.rollback ? { rollback: { reason: p.rollback.reason, ...(p.rollback.evidence ? { evidence: p.rollback.evidence } : {}), at: p.rollback.at.toISOString() } } : {}),
      }),
    );
    const functions = [...this.#stacks.snapshot()].map(([slot, stack]) => {
      const fn = this.#bySlot[slot]!;
      return { function: fn.name, index: fn.index, slot, patch: stack[stack.length - 1]!.id, stack: stack.map((q) => q.id) };
    });
    return { baseline: this.manifest.id, dispatch: this.manifest.dispatch, slots: this.manifest.slots, patches, functions };
  }

  #emit(type: GuestEventType, init: ConstructorParameters<typeof GuestEvent>[1]): void {
    this.dispatchEvent(new GuestEvent(type, init));
  }
}

function notCompiled(cause: unknown): Problem {
  return { code: 'E_INVALID_WASM', message: `does not compile: ${(cause as Error).message}` };
}

function notInstantiated(cause: unknown): Problem {
  return { code: 'E_INSTANTIATE_FAILED', message: `does not instantiate: ${(cause as Error).message}` };
}

function rejection(id: string | undefined, problems: readonly Problem[], cause?: unknown): HotpatchError {
  const what = id === undefined ? 'patch rejected' : `patch "${id}" rejected`;
  return new HotpatchError('E_PATCH_REJECTED', formatProblems(what, problems), { cause, problems });
}

/** Reads a baseline manifest from a compiled module's custom section. */
function manifestOf(module: WebAssembly.Module): BaselineManifest {
  const sections = WebAssembly.Module.customSections(module, BASELINE_SECTION);
  if (sections.length !== 1) {
    throw new HotpatchError('E_NOT_A_BASELINE', `not a baseline: ${sections.length === 0 ? 'no' : sections.length} "${BASELINE_SECTION}" section${sections.length === 0 ? '' : 's'} (run \`wasm-hotpatch prepare\` first)`);
  }
  return parseBaselineManifest(new Uint8Array(sections[0]!));
}

