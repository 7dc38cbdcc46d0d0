/**
 * The one contract every kind of guest keeps — in-thread (`Guest`, through `guest.async`), in a
 * worker (`WorkerGuest`), across threads (`ThreadedGuest`) — with the same verbs, the same answers
 * and the same errors. `PatchStore`, the control endpoint, the conformance suite and a fleet agent
 * depend on this file alone, never on a guest class.
 *
 * Rules every implementation keeps (the conformance suite checks them):
 * - The host's policy (trusted keys and signatures, `maxPatchSize`, `allowForcedDowngrade`) holds
 *   the same in every kind: a `force` the policy does not allow is refused with E_DOWNGRADE.
 * - A rejected or refused call changes nothing the guest runs.
 * - `CommitResult.commit` is the time the guest spent writing its table for this very call, the
 *   same figure as the `commit` of the `applied` / `reverted` event it emitted.
 */
import type { BaselineManifest, Dispatch } from '../format/manifest.js';
import type { GuestEvent } from './events.js';
import type { PatchState } from './patch.js';

/** Options of `load` that cross threads. */
export interface LoadOptions {
  /** Load a patch older than an applied cumulative patch (when the host's policy allows forcing). */
  readonly force?: boolean;
}

/** Options of `apply` that cross threads: a probe is the name of a guest export taking no arguments. */
export interface CommitOptions {
  /** Allow a patch older than an applied cumulative patch (when the host's policy allows forcing). */
  readonly force?: boolean;
  /** Quiescent baselines: apply even while a target function is running (its activations finish in old code). */
  readonly whileActive?: boolean;
  /** A guest export taking no arguments, run right after the switch: a trap, `false` or `0` rolls the patch back (E_ROLLED_BACK). */
  readonly probe?: string;
  /**
   * Watch the patched functions after the switch: `traps` traps in the patch's own code (default 1)
   * within `calls` calls or `window` ms (default: until revert) roll it back, at the trap, and the
   * guest emits `rolled-back`.
   */
  readonly watch?: WatchOptions;
}

/** How long and how strictly a freshly applied patch is watched for traps in its code. */
export interface WatchOptions {
  readonly traps?: number;
  readonly calls?: number;
  readonly window?: number;
}

/**
 * Shadow state for the guest's patches (the `hotpatch.shadow` import module, see `ShadowState`),
 * named by the guest's own exports that allocate its fields. Names, not functions, so the option
 * crosses threads: a worker guest's fields live in its own thread, beside its memory.
 */
export interface ShadowOptions {
  /** The export that allocates (default `malloc`). */
  readonly malloc?: string;
  /** The export that frees (default `free`, if exported; without one, freed fields are reused). */
  readonly free?: string;
  /** The exported memory (default `memory`). */
  readonly memory?: string;
}

/** The answer to `load`: the patch as loaded (state `loaded`, no effect yet). */
export interface LoadResult {
  readonly id: string;
  readonly sequence: number;
  readonly cumulative: boolean;
  readonly description: string;
  /** Names of the baseline functions it replaces. */
  readonly targets: readonly string[];
  /** Milliseconds from the call to its answer, as the caller saw it. */
  readonly duration: number;
}

/** The answer to `apply` and `revert`. */
export interface CommitResult {
  readonly id: string;
  /** The patch's state after the call: `applied` after apply, `reverted` after revert. */
  readonly state: PatchState;
  /**
   * Milliseconds the guest spent writing table slots for this call: the pause it saw. A guest of
   * several threads reports its slowest thread.
   */
  readonly commit: number;
  /** Milliseconds from the call to its answer, as the caller saw it. */
  readonly duration: number;
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

/**
 * What a guest dispatches, by event name. `applied` / `reverted` carry `commit`; `rejected`
 * carries `error`; `rolled-back` comes when a health check (probe, watch, a trapping pre-apply
 * hook) took a patch out; `hook-failed` when a post-apply, pre- or post-revert hook trapped (the
 * operation itself went through).
 */
export interface GuestEventMap {
  loaded: GuestEvent;
  rejected: GuestEvent;
  applied: GuestEvent;
  reverted: GuestEvent;
  'hook-failed': GuestEvent;
  'rolled-back': GuestEvent;
}

/** A listener of one guest event, typed by its name. */
export type GuestListener<K extends keyof GuestEventMap> = (event: GuestEventMap[K]) => void;

/**
 * A running guest that takes patches, whatever thread it runs in. Every method answers
 * asynchronously; calls are served in the order they were made.
 */
export interface HotpatchGuest {
  /** The baseline's manifest: its id, functions, signatures and slots. */
  readonly manifest: BaselineManifest;

  /**
   * Checks (policy, manifest, signatures, imports), compiles and instantiates a patch, with no
   * effect on what the guest runs.
   * @throws HotpatchError E_PATCH_REJECTED (with every problem), E_CLOSED, E_TIMEOUT
   */
  load(bytes: Uint8Array, options?: LoadOptions): Promise<LoadResult>;

  /**
   * Forward attach: every target of a loaded patch switches to it at once.
   * @throws HotpatchError E_UNKNOWN_PATCH, E_ALREADY_APPLIED, E_DOWNGRADE, E_ACTIVE, E_VETOED,
   * E_HOOK_TRAPPED, E_ROLLED_BACK, E_UNSUPPORTED_FEATURE, E_QUIESCENCE_TIMEOUT, E_CLOSED, E_TIMEOUT
   */
  apply(id: string, options?: CommitOptions): Promise<CommitResult>;

  /**
   * Reverse attach: each function of the patch goes back to what is below it in its stack.
   * @throws HotpatchError E_UNKNOWN_PATCH, E_NOT_APPLIED, E_CLOSED, E_TIMEOUT
   */
  revert(id: string): Promise<CommitResult>;

  /**
   * Forgets a patch that is not applied, so its id can be loaded again.
   * @throws HotpatchError E_UNKNOWN_PATCH, E_ALREADY_APPLIED, E_CLOSED, E_TIMEOUT
   */
  unload(id: string): Promise<void>;

  /**
   * The patch level: every patch and its state, and which patch owns each patched function.
   * @throws HotpatchError E_CLOSED, E_TIMEOUT
   */
  status(): Promise<GuestStatus>;

  /**
   * Calls a guest export and answers its result (i64 as BigInt).
   * @throws HotpatchError E_CLOSED, E_TIMEOUT; a trap rejects with the guest's error
   */
  call(name: string, ...args: unknown[]): Promise<unknown>;

  /** Listens to one kind of guest event. */
  addEventListener<K extends keyof GuestEventMap>(type: K, listener: GuestListener<K>, options?: boolean | AddEventListenerOptions): void;

  /** Stops listening. */
  removeEventListener<K extends keyof GuestEventMap>(type: K, listener: GuestListener<K>, options?: boolean | EventListenerOptions): void;

  /** Ends the guest for good: later calls reject with E_CLOSED. Closing twice is harmless. */
  close(): Promise<void>;
}
