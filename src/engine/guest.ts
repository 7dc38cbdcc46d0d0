import { HotpatchError } from '../errors.js';
import { type BaselineManifest, FORMAT_VERSION } from '../format/manifest.js';
import { emptyInstance, hostFunction } from './_host.js';
import { AsyncGuest } from './async-guest.js';
import { Baseline, instantiateBaseline, manifestOf } from './baseline.js';
import type { GuestEventMap, GuestListener, GuestStatus, LoadOptions, ShadowOptions, WatchOptions } from './contract.js';
import { type GuestEvent, GuestEventTarget } from './events.js';
import { functionPatch } from './functions.js';
import { type Failure, resolveProbe, runProbe, watchWrappers } from './health.js';
import { preApply, reportingHook } from './hooks.js';
import { Loader } from './loader.js';
import { Patch, type PatchInternals, patchInternals, transition } from './patch.js';
import type { PatchPolicy } from './policy.js';
import { Patches } from './registry.js';
import { allocatorOf, ShadowState } from './shadow.js';
import { Slots } from './slots.js';

type Imports = Record<string, Record<string, unknown>>;

/** Options of a guest. */
export interface GuestOptions {
  /**
   * Imports beyond the baseline that patches may take, by module and name (the host's policy).
   * Anything a patch imports that is not here or from its baseline is rejected at load.
   */
  readonly hostImports?: Imports;
  /**
   * Offer shadow state (`hotpatch.shadow`) to patches, its fields allocated by these guest exports
   * (`{}`: `malloc`, `free` if exported, `memory`): see {@link Guest.shadow}.
   */
  readonly shadow?: ShadowOptions;
  /** Recompute the baseline id from its bytes and refuse a mismatch (default true; bytes only). */
  readonly verifyBaseline?: boolean;
  /** What patches this host accepts: who must have signed them, how large they may be, whether `force` may downgrade. */
  readonly policy?: PatchPolicy;
  /**
   * The baseline's bytes, for `adopt`: a baseline with derived originals (prepare's default)
   * rebuilds them from its own bodies when one is first needed; `instantiate` from bytes keeps them.
   */
  readonly baselineBytes?: Uint8Array;
}

/** Options of `apply` (and `load`, which reads `force`). */
export interface ApplyOptions extends LoadOptions {
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
  readonly watch?: WatchOptions;
}

const now = (): number => globalThis.performance.now();

/** Apply/revert rounds at construction: enough for V8 to have compiled the path (measured: 1 round leaves ~90 µs of a first apply, 10 leave ~45). */
const WARM_UP_ROUNDS = 10;
/** Rounds rehearsed after each load (see `#loaded`). */
const LOAD_WARM_ROUNDS = 10;
const NO_OPTIONS: ApplyOptions = Object.freeze({});
const WARM_OPTIONS: ApplyOptions = Object.freeze({ whileActive: true });

/**
 * A running baseline instance and its patch stack: the facade over loading (`Loader`), the slot
 * writer (`Slots`), health checks and hooks. Loading validates, compiles and instantiates a patch
 * with no effect on the guest; applying and reverting only write table slots. Its life goes one
 * way: open, then closed (no more loads, applies or reverts).
 */
export class Guest extends GuestEventTarget {
  readonly #baseline: Baseline;
  readonly #slots: Slots;
  readonly #patches: Patches;
  readonly #loader: Loader;
  readonly #owner = {};
  #hostPatches = 0;
  #closed = false;
  #async: AsyncGuest | undefined;
  /** Shadow state the guest offers its patches (the `shadow` option), else undefined. */
  readonly shadow: ShadowState | undefined;

  private constructor(baseline: Baseline, options: GuestOptions) {
    super();
    this.#baseline = baseline;
    this.shadow = options.shadow && new ShadowState(allocatorOf(baseline.instance.exports, options.shadow));
    this.#slots = new Slots(baseline.table, baseline.set, baseline.manifest.slots, (slot) => baseline.restore(slot));
    this.#patches = new Patches(this.#owner, options.policy ?? {});
    const emit = (type: 'loaded' | 'rejected', init: ConstructorParameters<typeof GuestEvent>[1]): void => this.emit(type, init);
    this.#loader = new Loader(baseline, this.#slots, this.#patches, { policy: options.policy ?? {}, hostImports: Guest.#hostImports(options, this.shadow), owner: this.#owner, emit });
    this.#warmUp();
  }

  /** The host's imports, with the shadow state's when the guest offers it (twice is a usage error). */
  static #hostImports(options: GuestOptions, shadow: ShadowState | undefined): Imports {
    if (!shadow) return options.hostImports ?? {};
    const own = shadow.imports;
    for (const module of Object.keys(own)) {
      if (options.hostImports?.[module]) throw new HotpatchError('E_USAGE', `hostImports already has a "${module}" module: give shadow state either as the shadow option or in hostImports, not both`);
    }
    return { ...options.hostImports, ...own };
  }

  /**
   * V8 compiles JavaScript lazily, so the first apply and revert of a process would compile this
   * whole path while the guest waits: ~350 µs on a 1 MB baseline, 40× a warm apply. Here, before
   * anyone can listen, the path is rehearsed (see `warm`).
   */
  #warmUp(): void {
    this.warm(WARM_UP_ROUNDS);
  }

  /**
   * Rehearses apply and revert `rounds` times, so that code V8 compiles lazily (this guest's
   * path, the events its listeners hear) is compiled before a real apply needs it: a runtime calls
   * it right before the guest's first apply can come. Nothing changes and nothing is heard: a
   * private patch puts in slot 0 what slot 0 holds and takes it out again, the events are built and
   * dispatched to a private target, and the generation, `lastCommit` and `status()` stay as they
   * were. Nothing can call the guest meanwhile: it runs on the guest's thread.
   * @throws HotpatchError E_CLOSED
   */
  warm(rounds = 1): void {
    this.#open();
    if (this.manifest.slots === 0) return;
    const manifest = { format: FORMAT_VERSION, id: '\0warm-up', sequence: Number.MAX_SAFE_INTEGER, baseline: this.manifest.id, cumulative: false, description: '', targets: [] };
    const slots = Int32Array.of(0);
    const patch = new Patch(manifest, emptyInstance(), [], { slots, refs: [this.#slots.current(0)], hooks: {}, owner: this.#owner });
    this.#slots.unrecorded(() =>
      this.quietly(() => {
        this.#patches.add(patch);
        try {
          // whileActive: slot 0's function may be running (a safepoint inside it), and gets itself.
          for (let i = 0; i < rounds; i++) {
            this.apply(patch, WARM_OPTIONS);
            this.revert(patch);
          }
        } finally {
          this.#patches.delete(patch.id);
        }
      }),
    );
  }

  /**
   * Compiles and instantiates a baseline, verifying its id against its bytes.
   * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM, E_NOT_A_BASELINE, E_MANIFEST_INVALID, E_BASELINE_TAMPERED, E_INSTANTIATE_FAILED;
   * with `shadow`: E_IMPORT_UNRESOLVED (no such allocator export), E_USAGE (hostImports has `hotpatch.shadow` too)
   */
  static async instantiate(source: Uint8Array | ArrayBuffer | WebAssembly.Module, imports: Imports = {}, options: GuestOptions = {}): Promise<Guest> {
    return new Guest(await instantiateBaseline(source, imports, options.verifyBaseline !== false), options);
  }

  /**
   * Wraps an instance some other code made (a toolchain's own JS glue) from a baseline module.
   * Glue that hands back only the exports object (wasm-bindgen's `init`) can pass that instead.
   * @throws HotpatchError E_NOT_A_BASELINE, E_MANIFEST_INVALID; with `shadow`: E_IMPORT_UNRESOLVED, E_USAGE
   */
  static adopt(instance: WebAssembly.Instance | WebAssembly.Exports, module: WebAssembly.Module, options: GuestOptions = {}): Guest {
    const inst = instance instanceof WebAssembly.Instance ? instance : ({ exports: instance } as WebAssembly.Instance);
    return new Guest(new Baseline(inst, module, manifestOf(module), options.baselineBytes), options);
  }

  /** The baseline instance. */
  get instance(): WebAssembly.Instance {
    return this.#baseline.instance;
  }

  /** The baseline module. */
  get module(): WebAssembly.Module {
    return this.#baseline.module;
  }

  /** The baseline's manifest: its id, functions, signatures and slots. */
  get manifest(): BaselineManifest {
    return this.#baseline.manifest;
  }

  /** The instance's exports (for calling the guest). */
  get exports(): WebAssembly.Exports {
    return this.#baseline.instance.exports;
  }

  /** Milliseconds the last apply or revert (a rollback included) spent writing table slots: the pause the guest saw. */
  get lastCommit(): number {
    return this.#slots.lastCommit;
  }

  /** This guest through the contract every guest kind keeps (`HotpatchGuest`): what PatchStore, the control endpoint and a fleet agent take. */
  get async(): AsyncGuest {
    this.#async ??= new AsyncGuest(this);
    return this.#async;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Ends the guest's patch life for good: later loads, applies and reverts throw E_CLOSED. What is applied stays. */
  close(): void {
    this.#closed = true;
  }

  /** A loaded patch by id. */
  patch(id: string): Patch | undefined {
    return this.#patches.get(id);
  }

  /**
   * Validates, compiles and instantiates a patch without any effect on the guest. Every problem
   * found is reported at once.
   * @throws HotpatchError E_CLOSED; E_PATCH_REJECTED (with `problems`: E_NOT_WASM, E_INVALID_WASM, E_MANIFEST_*,
   * E_BASELINE_MISMATCH, E_UNKNOWN_FUNCTION, E_NOT_PATCHABLE, E_DUPLICATE_TARGET, E_MISSING_EXPORT,
   * E_SIGNATURE_MISMATCH, E_IMPORT_*, E_PATCH_HAS_START, E_PATCH_WRITES_BASELINE, E_BAD_HOOK,
   * E_ALREADY_LOADED, E_ALREADY_APPLIED, E_DOWNGRADE, E_INSTANTIATE_FAILED, E_PATCH_TOO_LARGE, E_UNSIGNED, …)
   */
  async load(bytes: Uint8Array | ArrayBuffer, options: LoadOptions = NO_OPTIONS): Promise<Patch> {
    this.#open();
    return this.#loaded(await this.#loader.load(bytes, options));
  }

  /**
   * `load`, synchronously: for a worker serving a request at a safepoint, inside a Wasm call that
   * cannot await. Pass the module compiled ahead (a `WebAssembly.Module` crosses threads) to skip
   * compiling here; browsers refuse synchronous compiles of large modules on the main thread.
   * @throws HotpatchError E_CLOSED, E_PATCH_REJECTED, as `load`
   */
  loadSync(bytes: Uint8Array | ArrayBuffer, options: LoadOptions & { readonly module?: WebAssembly.Module } = NO_OPTIONS): Patch {
    this.#open();
    return this.#loaded(this.#loader.loadSync(bytes, options));
  }

  /**
   * A loaded patch is applied next, maybe long after the guest was made: by then V8 has flushed the
   * bytecode of code that has not run for a few major GCs (measured: 10 GCs between load and the
   * first apply made it 106–188 µs instead of 24–45), so the apply path is rehearsed again here
   * (10 rounds left a first apply after 10 GCs at 7–9 µs; 1 or 3 rounds left 9–56 µs).
   */
  #loaded(patch: Patch): Patch {
    if (!this.#closed) this.warm(LOAD_WARM_ROUNDS);
    return patch;
  }

  /**
   * Forward attach: switches every target of a loaded patch to the patch, all at once, after its
   * pre-apply hook agrees. A cumulative patch also returns every function it does not replace to
   * the original and marks earlier patches replaced. On a quiescent baseline it refuses while a
   * target function is running in this thread. With `probe` or `watch`, a failing health check
   * rolls the patch back (state `rolled-back`). Every refusal comes before the switch.
   * @throws HotpatchError E_CLOSED, E_UNKNOWN_PATCH, E_WRONG_GUEST, E_ALREADY_APPLIED, E_DOWNGRADE, E_ACTIVE, E_USAGE (probe),
   * E_UNSUPPORTED_FEATURE (watch on v128), E_VETOED, E_HOOK_TRAPPED, E_ROLLED_BACK
   */
  apply(patch: Patch | string, options: ApplyOptions = NO_OPTIONS): Patch {
    const start = now();
    const p = this.#resolve(patch);
    if (p.state === 'applied') throw new HotpatchError('E_ALREADY_APPLIED', `patch "${p.id}" is already applied`);
    const downgrade = this.#patches.downgrade(p.id, p.sequence, options.force);
    if (downgrade) throw new HotpatchError('E_DOWNGRADE', `patch "${p.id}": ${downgrade.message}`);
    const inner = patchInternals(p)!;
    if (this.#baseline.active && !options.whileActive) this.#refuseActive(p, inner);
    const probe = options.probe === undefined ? undefined : resolveProbe(options.probe, this.exports);
    const wrappers = options.watch ? this.#watchWrappers(p, inner, options.watch) : undefined;
    const refusal = preApply(p, inner.hooks.preApply, this.#baseline);
    if (refusal) {
      // A hook that traps is broken, not merely unwilling: the patch is marked rolled back.
      if (refusal.code === 'E_HOOK_TRAPPED') {
        const cause = refusal.cause as Error | undefined;
        this.#rollBack(p, { reason: `its pre-apply hook trapped: ${cause?.message ?? String(cause)}`, ...(cause?.stack ? { evidence: cause.stack } : {}) });
      }
      throw refusal;
    }
    const commit = p.cumulative ? this.#slots.replaceAll(p, inner, wrappers) : this.#slots.apply(p, inner, wrappers);
    if (p.cumulative) for (const q of this.#patches.values()) if (q !== p && q.state === 'applied') transition(q, 'replaced', { replacedBy: p.id });
    transition(p, 'applied');
    if (inner.hooks.postApply) this.#reportHook(p, inner.hooks.postApply, 'post-apply');
    this.emit('applied', { patch: p.id, duration: now() - start, commit });
    if (probe) {
      const failure = runProbe(probe);
      if (failure) {
        this.#rollBack(p, failure);
        throw new HotpatchError('E_ROLLED_BACK', `patch "${p.id}" rolled back: ${failure.reason}`, { cause: failure.cause });
      }
    }
    return p;
  }

  /**
   * Reverse attach: removes an applied patch (not only the newest). Each of its functions goes back
   * to whatever is below it in that function's stack: an earlier patch, or the original.
   * @throws HotpatchError E_CLOSED, E_UNKNOWN_PATCH, E_WRONG_GUEST, E_NOT_APPLIED
   */
  revert(patch: Patch | string): Patch {
    const start = now();
    const p = this.#resolve(patch);
    if (p.state !== 'applied') throw new HotpatchError('E_NOT_APPLIED', `patch "${p.id}" is not applied (it is ${p.state})`);
    this.#revert(p, start);
    return p;
  }

  /** Reverts an applied patch: hooks around the commit, then the event (also a rollback's first half). */
  #revert(p: Patch, start: number): number {
    const inner = patchInternals(p)!;
    // A failing pre-revert hook must not keep a bad patch in: report it and revert anyway.
    const { preRevert, postRevert } = inner.hooks;
    if (preRevert) this.#reportHook(p, preRevert, 'pre-revert');
    const commit = this.#slots.revert(p, inner);
    transition(p, 'reverted');
    if (postRevert) this.#reportHook(p, postRevert, 'post-revert');
    this.emit('reverted', { patch: p.id, duration: now() - start, commit });
    return commit;
  }

  /**
   * Forgets a patch that is not applied, so its id can be loaded again.
   * @throws HotpatchError E_CLOSED, E_UNKNOWN_PATCH, E_WRONG_GUEST, E_ALREADY_APPLIED
   */
  unload(patch: Patch | string): void {
    const p = this.#resolve(patch);
    if (p.state === 'applied') throw new HotpatchError('E_ALREADY_APPLIED', `patch "${p.id}" is applied: revert it first`);
    this.#patches.delete(p.id);
  }

  /**
   * Applies JavaScript functions as a patch, synchronously: test stubs, spies, fault injection.
   * Each is wrapped in a tiny module of its target's exact signature (one cached per signature),
   * so the guest calls it like any patch and the usual stacking and revert rules hold. i64 values
   * are BigInts; a function with several results returns an array.
   * @throws HotpatchError E_CLOSED, E_USAGE, E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE, E_DUPLICATE_TARGET, E_SIGNATURE_MISMATCH, E_ALREADY_LOADED
   */
  applyFunctions(replacements: Readonly<Record<string, Function>>, options: { id?: string; description?: string } = {}): Patch {
    const start = now();
    this.#open();
    const id = options.id ?? `host-${++this.#hostPatches}`;
    const existing = this.#patches.get(id);
    if (existing && existing.state !== 'reverted') throw new HotpatchError('E_ALREADY_LOADED', `a patch with id "${id}" is loaded`);
    const patch = functionPatch(this.#loader, this.manifest.id, this.#owner, id, replacements, options.description ?? 'JavaScript replacement');
    this.#slots.prime(patchInternals(patch)!.slots);
    this.#patches.add(patch);
    this.emit('loaded', { patch: id, duration: now() - start });
    // Stubs go in even while their target runs (from inside an import callback, mid-call).
    return this.apply(patch, { force: true, whileActive: true });
  }

  /**
   * A function's original implementation, callable from JS: patches are bypassed on entry, and
   * the original's own calls (recursion included) still reach them.
   * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE, E_IMPORT_UNRESOLVED
   */
  original(name: string): Function {
    return this.#baseline.original(this.#loader.patchable(name, 'original'));
  }

  /**
   * What a function runs now: the replacement of the patch on top of its stack (its watch wrapper
   * while watched), or its original. With `below`, what runs under that patch (what a wrapper such
   * as a spy should call).
   * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE
   */
  implementation(name: string, options: { below?: Patch } = {}): Function {
    const fn = this.#loader.patchable(name, 'implementation');
    const owner = options.below ? this.#slots.under(fn.slot, options.below) : this.#slots.top(fn.slot);
    return owner ? this.#slots.effective(owner, fn.slot) : this.#baseline.original(fn);
  }

  /**
   * Like `implementation`, as a getter that re-resolves only when the slots changed: for wrappers
   * (spies, faults) that call what is below them on every call.
   * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE
   */
  implementationGetter(name: string, options: { below?: Patch } = {}): () => Function {
    this.#loader.patchable(name, 'implementation');
    let seen = -1;
    let cached: Function | undefined;
    return () => {
      if (seen !== this.#slots.generation) {
        cached = this.implementation(name, options);
        seen = this.#slots.generation;
      }
      return cached!;
    };
  }

  /**
   * Installs the function a busy guest calls at its safepoints (every `interval` polls; see
   * prepare's `safepoints`). The worker runtime serves pending patch work there.
   * @throws HotpatchError E_NOT_A_BASELINE when the baseline was prepared without safepoints
   */
  setSafepointHandler(handler: () => void): void {
    const sp = this.manifest.safepoints;
    if (!sp) throw new HotpatchError('E_NOT_A_BASELINE', 'this baseline has no safepoints: prepare it with the safepoints option');
    this.#slots.setSafepoint(sp.slot, hostFunction('() -> ()', handler));
  }

  /** The patch level: every patch and its state, and which patch owns each patched function. */
  status(): GuestStatus {
    const functions = [...this.#slots.snapshot()].map(([slot, stack]) => {
      const fn = this.#baseline.bySlot(slot);
      return { function: fn.name, index: fn.index, slot, patch: stack[stack.length - 1]!.id, stack: stack.map((q) => q.id) };
    });
    const { id, dispatch, slots } = this.manifest;
    return { baseline: id, dispatch, slots, patches: this.#patches.status(), functions };
  }

  #open(): void {
    if (this.#closed) throw new HotpatchError('E_CLOSED', 'this guest is closed');
  }

  #resolve(patch: Patch | string): Patch {
    this.#open();
    return this.#patches.resolve(patch);
  }

  #refuseActive(p: Patch, inner: PatchInternals): void {
    const running = [...inner.slots].filter((slot) => this.#baseline.active!(slot) > 0);
    if (running.length === 0) return;
    const names = running.map((s) => `"${this.#baseline.bySlot(s).name}"`).join(', ');
    throw new HotpatchError('E_ACTIVE', `patch "${p.id}": ${names} ${running.length === 1 ? 'is' : 'are'} running in this thread; nothing changed (apply at a quiet moment, or pass whileActive)`);
  }

  #watchWrappers(p: Patch, inner: PatchInternals, watch: WatchOptions): Function[] {
    const signatures = Array.from(inner.slots, (slot) => this.#baseline.bySlot(slot).signature);
    return watchWrappers(
      p,
      inner.refs,
      signatures,
      watch,
      (failure) => this.#rollBack(p, failure),
      () => this.#slots.unwatch(p),
    );
  }

  /** Takes a patch out because a health check failed, and says so in its state. */
  #rollBack(p: Patch, failure: Failure): void {
    let commit: number | undefined;
    if (p.state === 'applied') commit = this.#revert(p, now());
    transition(p, 'rolled-back', { rollback: { reason: failure.reason, ...(failure.evidence ? { evidence: failure.evidence } : {}), at: new Date() } });
    this.emit('rolled-back', { patch: p.id, duration: 0, ...(commit === undefined ? {} : { commit }) });
  }

  #reportHook(p: Patch, hook: (() => unknown) | undefined, name: string): void {
    const error = reportingHook(p, hook, name);
    if (error) this.emit('hook-failed', { patch: p.id, duration: 0, error });
  }
}

/** Events typed by name, as the DOM types `HTMLElement`'s: no caller casts an `Event`. */
export interface Guest {
  addEventListener<K extends keyof GuestEventMap>(type: K, listener: GuestListener<K>, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof GuestEventMap>(type: K, listener: GuestListener<K>, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
