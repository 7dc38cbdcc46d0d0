import { HotpatchError, patchRejected, type Problem } from '../errors.js';
import type { BaselineFunction, PatchManifest } from '../format/manifest.js';
import { parseModule } from '../format/module.js';
import { checkPatch, FunctionIndex, type HOOKS, type PatchCheck } from '../format/check.js';
import { patchManifest } from './_manifests.js';
import { COMMITTER_MIN_TARGETS, type Committer, Committers, type StagedCommitter } from './_committer.js';
import type { LoadOptions } from './contract.js';
import type { GuestEvent } from './events.js';
import { Patch, type PatchInternals } from './patch.js';
import { checkSize, checkTrust, type PatchPolicy, signaturesRequired } from './policy.js';
import type { Patches } from './registry.js';
import type { Slots } from './slots.js';
import type { Baseline } from './baseline.js';

type Imports = Record<string, Record<string, unknown>>;

const now = (): number => globalThis.performance.now();

/** A load whose checks passed: what its second half needs. */
interface BegunLoad {
  readonly manifest: PatchManifest;
  readonly check: PatchCheck;
  readonly slots: Int32Array;
  readonly staged: StagedCommitter | undefined;
}

/** What a loader reports to its guest. */
export type Emit = (type: 'loaded' | 'rejected', init: ConstructorParameters<typeof GuestEvent>[1]) => void;

/**
 * Loading and staging, the first of the two phases: trust, checks, compile, instantiate, and the
 * commit staged, with no effect on what the guest runs. Whatever can fail about a patch fails
 * here, and every problem found is reported at once (one E_PATCH_REJECTED).
 */
export class Loader {
  readonly #baseline: Baseline;
  readonly #functions: FunctionIndex;
  readonly #slots: Slots;
  readonly #committers: Committers;
  readonly #patches: Patches;
  readonly #policy: PatchPolicy;
  readonly #hostImports: Imports;
  readonly #hostNames: Set<string>;
  readonly #owner: object;
  readonly #emit: Emit;

  constructor(baseline: Baseline, slots: Slots, patches: Patches, options: { policy: PatchPolicy; hostImports: Imports; owner: object; emit: Emit }) {
    this.#baseline = baseline;
    this.#functions = new FunctionIndex(baseline.manifest.functions);
    this.#slots = slots;
    this.#committers = new Committers(baseline.set);
    this.#patches = patches;
    this.#policy = options.policy;
    this.#hostImports = options.hostImports;
    this.#hostNames = new Set(Object.entries(options.hostImports).flatMap(([m, o]) => Object.keys(o).map((n) => `${m}.${n}`)));
    this.#owner = options.owner;
    this.#emit = options.emit;
  }

  /** The baseline's functions by name, export name or `#index`. */
  get functions(): FunctionIndex {
    return this.#functions;
  }

  /**
   * Validates, compiles and instantiates a patch, and records it as loaded.
   * @throws HotpatchError E_PATCH_REJECTED (every problem), E_INTERNAL
   */
  async load(bytes: Uint8Array | ArrayBuffer, options: LoadOptions): Promise<Patch> {
    const start = now();
    const ids: { id?: string } = {};
    let begun: BegunLoad | undefined;
    try {
      const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
      // Trust first: nothing of an untrusted patch is compiled.
      const verifying = checkTrust(data, this.#policy);
      if (verifying !== undefined) await verifying;
      // Compile in the background first: the checks and the commit staging below overlap it.
      const compiling = WebAssembly.compile(data as Uint8Array<ArrayBuffer>);
      compiling.catch(() => {}); // a failed check below wins over a failed compile
      begun = this.#begin(data, options, ids);
      let module: WebAssembly.Module;
      try {
        module = await compiling;
      } catch (cause) {
        throw patchRejected(ids.id, [notCompiled(cause)], cause);
      }
      let instance: WebAssembly.Instance;
      try {
        instance = await WebAssembly.instantiate(module, this.#importObject(begun.check) as WebAssembly.Imports);
      } catch (cause) {
        throw patchRejected(ids.id, [notInstantiated(cause)], cause);
      }
      return this.#finish(begun, instance, options, start);
    } catch (error) {
      throw this.#rejected(error, ids.id, start, begun);
    }
  }

  /**
   * `load`, synchronously, with the module compiled ahead when given.
   * @throws HotpatchError E_PATCH_REJECTED (every problem; E_UNSIGNED when the policy wants signatures), E_INTERNAL
   */
  loadSync(bytes: Uint8Array | ArrayBuffer, options: LoadOptions & { readonly module?: WebAssembly.Module }): Patch {
    const start = now();
    const ids: { id?: string } = {};
    let begun: BegunLoad | undefined;
    try {
      const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
      checkSize(data, this.#policy);
      if (signaturesRequired(this.#policy)) {
        throw patchRejected(undefined, [
          { code: 'E_UNSIGNED', message: 'this guest requires signed patches, and signatures verify asynchronously: use load(), or verify in the host before sending (WorkerGuest does)' },
        ]);
      }
      begun = this.#begin(data, options, ids);
      let module = options.module;
      try {
        module ??= new WebAssembly.Module(data as Uint8Array<ArrayBuffer>);
      } catch (cause) {
        throw patchRejected(ids.id, [notCompiled(cause)], cause);
      }
      let instance: WebAssembly.Instance;
      try {
        instance = new WebAssembly.Instance(module, this.#importObject(begun.check) as WebAssembly.Imports);
      } catch (cause) {
        throw patchRejected(ids.id, [notInstantiated(cause)], cause);
      }
      return this.#finish(begun, instance, options, start);
    } catch (error) {
      throw this.#rejected(error, ids.id, start, begun);
    }
  }

  /** The synchronous first half of a load: every check, and the commit staged. */
  #begin(data: Uint8Array, options: LoadOptions, ids: { id?: string }): BegunLoad {
    const { manifest, check } = this.#check(data, options, (x) => (ids.id = x));
    // A loop, not Int32Array.from with a map function (V8's generic path: 8 µs for 100 targets).
    const { targets } = check;
    const slots = new Int32Array(targets.length);
    for (let i = 0; i < targets.length; i++) slots[i] = targets[i]!.slot;
    this.#slots.prime(slots);
    const staged =
      slots.length >= COMMITTER_MIN_TARGETS
        ? this.#committers.stage(
            slots,
            targets.map((t) => this.#slots.restore(t.slot)),
          )
        : undefined;
    return { manifest, check, slots, staged };
  }

  /** Everything about a patch that can be checked without instantiating it. */
  #check(data: Uint8Array, options: LoadOptions, onId: (id: string) => void): { manifest: PatchManifest; check: PatchCheck } {
    let patch: ReturnType<typeof parseModule>;
    let manifest: PatchManifest;
    try {
      patch = parseModule(data);
      manifest = patchManifest(data);
    } catch (error) {
      if (!(error instanceof HotpatchError)) throw error;
      throw patchRejected(undefined, error.problems, error);
    }
    onId(manifest.id);
    const baseline = this.#baseline.manifest;
    if (manifest.baseline !== baseline.id) {
      const message = `built for baseline ${manifest.baseline.slice(0, 12)}…, but this guest runs ${baseline.id.slice(0, 12)}…`;
      throw patchRejected(manifest.id, [{ code: 'E_BASELINE_MISMATCH', message, path: 'baseline' }]);
    }
    const check = checkPatch(baseline, this.#functions, patch, manifest, this.#hostNames);
    const problems: Problem[] = [...check.problems, ...this.#patches.loadProblems(manifest.id, manifest.sequence, options.force)];
    if (problems.length > 0) throw patchRejected(manifest.id, problems);
    return { manifest, check };
  }

  #importObject(check: PatchCheck): Imports {
    const importObject: Imports = {};
    const exports = this.#baseline.instance.exports;
    for (const { import: imp, binding } of check.imports) {
      importObject[imp.module] ??= {};
      const ns = importObject[imp.module]!;
      if (binding.kind === 'host') ns[imp.name] = this.#hostImports[imp.module]![imp.name];
      else if (binding.kind === 'baseline') ns[imp.name] = exports[binding.export];
      else ns[imp.name] = binding.kind === 'live' ? this.#baseline.live(binding.fn) : this.#baseline.original(binding.fn);
    }
    return importObject;
  }

  /** The second half: the instance becomes a loaded patch (if the guest's state still allows it). */
  #finish(begun: BegunLoad, instance: WebAssembly.Instance, options: LoadOptions, start: number): Patch {
    const { manifest, check, slots, staged } = begun;
    // The guest may have changed while we awaited (another load or apply): check its state again.
    const stale = this.#patches.loadProblems(manifest.id, manifest.sequence, options.force);
    if (stale.length > 0) throw patchRejected(manifest.id, stale);
    const exports = instance.exports; // a getter: read once, not once per target
    const hooks: PatchInternals['hooks'] = {};
    for (const [key, name] of Object.entries(check.hooks) as [keyof typeof HOOKS, string][]) {
      hooks[key] = exports[name] as () => unknown;
    }
    const refs = check.targets.map((t) => exports[t.export] as Function);
    let committer: Committer | undefined;
    if (staged) {
      try {
        committer = this.#committers.finish(staged, refs);
      } catch (cause) {
        throw patchRejected(manifest.id, [{ code: 'E_INSTANTIATE_FAILED', message: `cannot prepare its commit: ${(cause as Error).message}` }], cause);
      }
    }
    const inner: PatchInternals = { slots, refs, ...(committer ? { committer } : {}), hooks, owner: this.#owner };
    const loaded = new Patch(
      manifest,
      instance,
      check.targets.map((t) => t.fn.name),
      inner,
    );
    this.#patches.add(loaded);
    this.#emit('loaded', { patch: manifest.id, duration: now() - start });
    return loaded;
  }

  /**
   * Load answers with one E_PATCH_REJECTED carrying the specific problems. Anything that is not a
   * HotpatchError is a bug of ours, not bad input: it is reported as E_INTERNAL, not disguised.
   */
  #rejected(error: unknown, id: string | undefined, start: number, begun: BegunLoad | undefined): HotpatchError {
    // A load that staged a committer region and did not become a patch gives the region back
    // (nothing throws once the patch exists).
    begun?.staged?.release();
    const err =
      error instanceof HotpatchError && (error.code === 'E_PATCH_REJECTED' || error.code === 'E_CLOSED')
        ? error
        : error instanceof HotpatchError
          ? patchRejected(id, error.problems, error)
          : new HotpatchError('E_INTERNAL', `internal error while loading a patch (a bug in wasm-hotpatch; please report it): ${(error as Error)?.message ?? String(error)}`, { cause: error });
    this.#emit('rejected', { patch: id, duration: now() - start, error: err });
    return err;
  }

  /**
   * A baseline function that has a slot, by name.
   * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE
   */
  patchable(name: string, what: string): BaselineFunction & { slot: number } {
    const fn = this.#functions.resolve(name, what);
    if ('code' in fn) throw new HotpatchError(fn.code, fn.message);
    if (fn.slot === undefined) throw new HotpatchError('E_NOT_PATCHABLE', `${what}: "${name}" is not patchable (${fn.reason ?? 'no slot'})`);
    return fn as BaselineFunction & { slot: number };
  }
}

function notCompiled(cause: unknown): Problem {
  return { code: 'E_INVALID_WASM', message: `does not compile: ${(cause as Error).message}` };
}

function notInstantiated(cause: unknown): Problem {
  return { code: 'E_INSTANTIATE_FAILED', message: `does not instantiate: ${(cause as Error).message}` };
}
