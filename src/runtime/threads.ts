import { type CommitOptions, type CommitResult, GuestEvent, type GuestEventMap, type GuestStatus, type HotpatchGuest, type LoadOptions, type LoadResult, type PatchPolicy } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import type { BaselineManifest } from '../format/manifest.js';
import { Transition, type TransitionOptions, type TransitionResult } from './transition.js';
import { NO_POLICY, verifyPatch } from './verified.js';
import { loadVerified, WorkerGuest, type WorkerGuestOptions } from './worker-guest.js';

/** Options of {@link ThreadedGuest.start}. */
// No `shadow`: each thread would keep its own store of fields in the one shared memory.
export interface ThreadedGuestOptions extends Omit<WorkerGuestOptions, 'memory' | 'run' | 'shadow'> {
  /** How many threads (workers), each with its own instance and table. */
  readonly threads: number;
  /** The memory the threads share: made here, given to every thread as the import `module.name`. */
  readonly memory: { readonly module: string; readonly name: string; readonly initial: number; readonly maximum: number };
  /** What each thread runs once ready; `args(thread)` gives its arguments (default: its index). */
  readonly run?: { readonly export: string; readonly args?: (thread: number) => readonly unknown[] };
}

/** Every thread's patch level, and whether they agree. */
export interface ThreadsStatus {
  readonly threads: readonly GuestStatus[];
  /** Whether every thread runs the same patches in the same stacks (false mid-transition, or after a forced one). */
  readonly consistent: boolean;
}

/**
 * A guest running as several threads — one worker and one instance (so one table) each, sharing
 * one memory — as emscripten pthreads and Rust wasm threads do. It keeps the contract every guest
 * kind keeps (`HotpatchGuest`): `load` loads in every thread (compiled once), `apply` and `revert`
 * run a transition through the threads to its end, and a failed one is switched back, so it
 * changes nothing. `applyTransition` / `revertTransition` give the transition itself, to watch,
 * force or cancel.
 */
export class ThreadedGuest extends EventTarget implements HotpatchGuest {
  readonly threads: readonly WorkerGuest[];
  readonly memory: WebAssembly.Memory;
  readonly #timeout: number;
  readonly #policy: PatchPolicy;

  private constructor(threads: WorkerGuest[], memory: WebAssembly.Memory, options: ThreadedGuestOptions) {
    super();
    this.threads = threads;
    this.memory = memory;
    this.#timeout = options.timeout ?? 10_000;
    this.#policy = options.policy ?? NO_POLICY;
    // Health checks run in each thread: a rollback or a failed hook is reported once per thread.
    for (const t of threads) for (const type of ['rolled-back', 'hook-failed'] as const) t.addEventListener(type, (e) => this.dispatchEvent(copy(e)));
  }

  /**
   * Starts `threads` workers on one shared memory.
   * @throws HotpatchError E_INSTANTIATE_FAILED, E_USAGE
   */
  static async start(baseline: Uint8Array, options: ThreadedGuestOptions): Promise<ThreadedGuest> {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new HotpatchError('E_USAGE', `threads must be a whole number from 1, not ${options.threads}`);
    if ((options as { shadow?: unknown }).shadow !== undefined)
      throw new HotpatchError('E_USAGE', 'a ThreadedGuest offers no shadow state: its threads would each keep their own store of fields in the one shared memory');
    const { module, name, initial, maximum } = options.memory;
    const memory = new WebAssembly.Memory({ initial, maximum, shared: true });
    const { run, threads: count, memory: _memory, ...rest } = options;
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, t) =>
        WorkerGuest.start(baseline, {
          ...rest,
          policy: options.policy ?? NO_POLICY,
          memory: { module, name, memory },
          ...(run ? { run: { export: run.export, args: run.args?.(t) ?? [t] } } : {}),
        }),
      ),
    );
    const threads = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(threads.map((t) => t.close()));
      throw failed.reason;
    }
    return new ThreadedGuest(threads, memory, options);
  }

  /** The baseline's manifest (every thread runs the same baseline). */
  get manifest(): BaselineManifest {
    return this.threads[0]!.manifest;
  }

  /**
   * Checks the bytes against the policy and compiles them once, then loads them in every thread;
   * if any thread refuses, the threads that loaded them forget them again.
   * @throws HotpatchError E_PATCH_REJECTED, as `Guest.load`; E_TIMEOUT, E_CLOSED, E_GUEST_EXITED
   */
  async load(bytes: Uint8Array, options: LoadOptions = {}): Promise<LoadResult> {
    const start = performance.now();
    // A refusal names the patch when the guest got far enough to read its id: thread 0 says which.
    let refused: string | undefined;
    const named = (e: GuestEvent): void => {
      refused ??= e.patch;
    };
    this.threads[0]!.addEventListener('rejected', named);
    try {
      const verified = await verifyPatch(bytes, this.#policy);
      const loaded = await Promise.allSettled(this.threads.map((t) => loadVerified(t, verified, options)));
      const refused = loaded.find((l): l is PromiseRejectedResult => l.status === 'rejected');
      if (refused) {
        await Promise.all(loaded.map((l, t) => (l.status === 'fulfilled' ? this.threads[t]!.unload(l.value.id).catch(() => {}) : undefined)));
        throw refused.reason;
      }
      const { duration: _d, ...patch } = (loaded[0] as PromiseFulfilledResult<LoadResult>).value;
      const result = { ...patch, duration: performance.now() - start };
      this.dispatchEvent(new GuestEvent('loaded', { patch: result.id, duration: result.duration }));
      return result;
    } catch (error) {
      if (error instanceof HotpatchError) this.dispatchEvent(new GuestEvent('rejected', { patch: refused, duration: performance.now() - start, error }));
      throw error;
    } finally {
      this.threads[0]!.removeEventListener('rejected', named);
    }
  }

  /** Starts applying a loaded patch in every thread; `timeout` bounds the wait for all of them (default: the guest's timeout). */
  applyTransition(id: string, options: TransitionOptions & { timeout?: number } = {}): Transition {
    const { timeout, ...rest } = options;
    return this.#begin(new Transition(id, 'apply', this.threads, timeout ?? this.#timeout, rest));
  }

  /** Starts reverting a patch in every thread. */
  revertTransition(id: string, options: { timeout?: number } = {}): Transition {
    return this.#begin(new Transition(id, 'revert', this.threads, options.timeout ?? this.#timeout));
  }

  #begin(transition: Transition): Transition {
    void transition.done.then(
      (r) => this.dispatchEvent(new GuestEvent(r.direction === 'apply' ? 'applied' : 'reverted', { patch: r.id, duration: r.duration, commit: r.commit })),
      () => {},
    );
    return transition;
  }

  /**
   * Applies a loaded patch in every thread and waits for all of them. If a thread refuses or
   * cannot be reached in time, the threads that switched switch back: nothing changed.
   * @throws HotpatchError the threads' own error when every thread refused alike (E_DOWNGRADE,
   * E_ALREADY_APPLIED, …), else E_TRANSITION_FAILED or E_TRANSITION_TIMEOUT; E_CLOSED
   */
  async apply(id: string, options: CommitOptions & { quiesceTimeout?: number } = {}): Promise<CommitResult> {
    if (options.probe !== undefined || options.watch !== undefined) throw new HotpatchError('E_USAGE', 'probe and watch are per thread: apply them through each of `threads`');
    const { force, whileActive, quiesceTimeout } = options;
    return this.#complete(this.applyTransition(id, { ...(force ? { force } : {}), ...(whileActive ? { whileActive } : {}), ...(quiesceTimeout === undefined ? {} : { quiesceTimeout }) }), 'applied');
  }

  /**
   * Reverts a patch in every thread and waits for all of them; a failed revert is undone.
   * @throws HotpatchError as `apply` (E_NOT_APPLIED, E_UNKNOWN_PATCH when every thread says so)
   */
  async revert(id: string): Promise<CommitResult> {
    return this.#complete(this.revertTransition(id), 'reverted');
  }

  async #complete(transition: Transition, state: 'applied' | 'reverted'): Promise<CommitResult> {
    try {
      const result = await transition.done;
      return { id: transition.id, state, commit: result.commit, duration: result.duration };
    } catch (error) {
      await transition.cancel().catch(() => {});
      const refusals = transition.errors.filter((e): e is HotpatchError => e !== undefined);
      // Every thread refused for the same reason: that reason is the answer, as one guest would give it.
      if (refusals.length === this.threads.length && refusals.every((e) => e.code === refusals[0]!.code)) throw refusals[0]!;
      throw error;
    }
  }

  /** Cancels a transition: a reverse transition through the threads. */
  cancel(transition: Transition): Promise<TransitionResult> {
    return transition.cancel();
  }

  /**
   * Forgets a patch that is not applied, in every thread.
   * @throws HotpatchError E_UNKNOWN_PATCH, E_ALREADY_APPLIED, E_TIMEOUT, E_CLOSED, E_GUEST_EXITED
   */
  async unload(id: string): Promise<void> {
    const done = await Promise.allSettled(this.threads.map((t) => t.unload(id)));
    const failed = done.find((d): d is PromiseRejectedResult => d.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * The patch level, as thread 0 reports it (every thread's: `threadStatus()`).
   * @throws HotpatchError E_TIMEOUT, E_CLOSED, E_GUEST_EXITED
   */
  async status(): Promise<GuestStatus> {
    return this.threads[0]!.status();
  }

  /**
   * Every thread's patch level, and whether they agree.
   * @throws HotpatchError E_TIMEOUT, E_CLOSED, E_GUEST_EXITED
   */
  async threadStatus(): Promise<ThreadsStatus> {
    const threads = await Promise.all(this.threads.map((t) => t.status()));
    const shape = (s: GuestStatus): string => JSON.stringify([s.patches.map((p) => [p.id, p.state]), s.functions]);
    return { threads, consistent: threads.every((s) => shape(s) === shape(threads[0]!)) };
  }

  /**
   * Calls an export in thread 0.
   * @throws HotpatchError as `WorkerGuest.call`
   */
  call(name: string, ...args: unknown[]): Promise<unknown> {
    return this.threads[0]!.call(name, ...args);
  }

  /** Stops every thread: their pending and later requests reject with E_CLOSED. */
  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}

function copy(e: GuestEvent): GuestEvent {
  return new GuestEvent(e.type as keyof GuestEventMap, { patch: e.patch, duration: e.duration, ...(e.commit === undefined ? {} : { commit: e.commit }), ...(e.error ? { error: e.error } : {}) });
}

/** Events typed by name, as the DOM types `HTMLElement`'s: no caller casts an `Event`. */
export interface ThreadedGuest {
  addEventListener<K extends keyof GuestEventMap>(type: K, listener: (event: GuestEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof GuestEventMap>(type: K, listener: (event: GuestEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
