import { type CommitOptions, type CommitResult, GuestEvent, type GuestEventMap, type GuestListener, type GuestStatus, type HotpatchGuest, type LoadOptions, type LoadResult } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import type { LevelGuest, PatchStore } from './store.js';
import { WorkerGuest, type WorkerGuestOptions } from './worker-guest.js';

/** Options of {@link SupervisedGuest.start}. */
export interface SupervisedGuestOptions extends Omit<WorkerGuestOptions, 'timeout'> {
  /** The store the guest is restored from, at start and after every restart. */
  readonly store?: PatchStore;
  /** Milliseconds a request may take before the guest is called stuck, stopped and restarted (default 5000). */
  readonly timeout?: number;
  /** Told about restarts and their outcome. */
  readonly log?: (line: string) => void;
}

/** What a supervised guest is doing, as `status()` adds it. */
export interface SupervisedState {
  /** The worker's own state (`running` its export, `idle`, `trapped`, …). */
  readonly state: string;
  /** Times the worker was stopped and started again because it did not answer. */
  readonly restarts: number;
  /** The generation of the level it was last restored to. */
  readonly restoredGeneration?: number;
}

/** The marker a timed-out race rejects with. */
const TIMED_OUT = Symbol('timed out');

/** A worker guest's load answer as the contract's `LoadResult` (either shape, as `commitResult`). */
function loadResult(answer: unknown, started: number): LoadResult {
  const p = answer as Omit<LoadResult, 'description' | 'duration'> & Partial<LoadResult>;
  return { id: p.id, sequence: p.sequence, cumulative: p.cumulative, description: p.description ?? '', targets: p.targets, duration: p.duration ?? performance.now() - started };
}

const EVENTS: readonly (keyof GuestEventMap)[] = ['loaded', 'rejected', 'applied', 'reverted', 'hook-failed', 'rolled-back'];

/**
 * A worker guest's answer as the contract's `CommitResult`. Read field by field so this holds
 * whether `WorkerGuest` answers with the contract's shape or with its own (`Answer`: `latency`).
 */
function commitResult(id: string, state: CommitResult['state'], answer: unknown): CommitResult {
  const a = answer as { state?: CommitResult['state']; commit?: number; duration?: number; latency?: number };
  return { id, state: a.state ?? state, commit: a.commit ?? 0, duration: a.duration ?? a.latency ?? 0 };
}

/**
 * A worker guest that cannot take its host down: every request is answered within `timeout` ms,
 * and a guest that does not answer (a patch's hook or function that loops) is stopped
 * (`worker.terminate()` ends any loop) and started again at the store's recorded level. While
 * that happens, requests are refused with E_GUEST_STUCK naming what the guest was stuck in.
 */
export class SupervisedGuest implements HotpatchGuest {
  readonly #events = new EventTarget();
  readonly #baseline: Uint8Array;
  readonly #options: SupervisedGuestOptions;
  readonly #timeout: number;
  #worker: WorkerGuest;
  #stuck: { readonly what: string; readonly since: number } | undefined;
  #restarting: Promise<void> | undefined;
  #restarts = 0;
  #generation: number | undefined;
  #closed = false;

  private constructor(baseline: Uint8Array, worker: WorkerGuest, options: SupervisedGuestOptions) {
    this.#baseline = baseline;
    this.#worker = worker;
    this.#options = options;
    this.#timeout = options.timeout ?? 5000;
  }

  /**
   * Starts the guest in a worker and restores it to the store's recorded level.
   * @throws HotpatchError E_INSTANTIATE_FAILED, and whatever the restore refuses (E_STORE_CORRUPT, E_DOWNGRADE, …)
   */
  static async start(baseline: Uint8Array, options: SupervisedGuestOptions = {}): Promise<SupervisedGuest> {
    const worker = await WorkerGuest.start(baseline, SupervisedGuest.#workerOptions(options));
    const guest = new SupervisedGuest(baseline, worker, options);
    guest.#forwardEvents(worker);
    try {
      guest.#generation = (await options.store?.restore(guest.#view(worker)))?.generation;
    } catch (error) {
      await worker.close();
      throw error;
    }
    return guest;
  }

  static #workerOptions(options: SupervisedGuestOptions): WorkerGuestOptions {
    const { store: _store, log: _log, timeout, ...rest } = options;
    // The worker's own wait outlasts ours: the supervisor decides when the guest is stuck.
    return { ...rest, timeout: (timeout ?? 5000) + 1000 };
  }

  /** The baseline's manifest. */
  get manifest(): WorkerGuest['manifest'] {
    return this.#worker.manifest;
  }

  /** The worker guest running now (a new one after each restart). */
  get worker(): WorkerGuest {
    return this.#worker;
  }

  /** Re-dispatches the worker's guest events from this guest, which outlives its workers. */
  #forwardEvents(worker: WorkerGuest): void {
    for (const type of EVENTS) {
      worker.addEventListener(type, (e) => {
        const g = e as GuestEvent;
        this.#events.dispatchEvent(new GuestEvent(type, { patch: g.patch, duration: g.duration, ...(g.commit === undefined ? {} : { commit: g.commit }), ...(g.error ? { error: g.error } : {}) }));
      });
    }
  }

  /** One request to `worker`, bounded by the timeout (E_TIMEOUT). */
  async #bounded<T>(worker: WorkerGuest, what: string, send: (worker: WorkerGuest) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(TIMED_OUT), this.#timeout)));
    try {
      return await Promise.race([send(worker), timedOut]);
    } catch (error) {
      if (error === TIMED_OUT) throw new HotpatchError('E_TIMEOUT', `the guest did not answer ${what} within ${this.#timeout} ms`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A worker as the store sees a guest, each request bounded: what a restore runs against. */
  #view(worker: WorkerGuest): LevelGuest {
    return {
      manifest: worker.manifest,
      status: () => this.#bounded(worker, 'status', (w) => w.status()),
      load: async (bytes, options) => loadResult(await this.#bounded(worker, 'load', (w) => w.load(bytes, options)), 0),
      apply: async (id, options) => commitResult(id, 'applied', await this.#bounded(worker, `apply of "${id}"`, (w) => w.apply(id, options))),
    };
  }

  /** Runs one request against the current worker, bounded by the timeout; a timeout restarts the guest. */
  async #request<T>(what: string, send: (worker: WorkerGuest) => Promise<T>): Promise<T> {
    if (this.#closed) throw new HotpatchError('E_CLOSED', 'the guest is closed');
    if (this.#stuck) throw this.#stuckError();
    try {
      return await this.#bounded(this.#worker, what, send);
    } catch (error) {
      if (!(error instanceof HotpatchError && error.code === 'E_TIMEOUT')) throw error;
      if (!this.#stuck) {
        this.#stuck = { what, since: Date.now() };
        this.#restarting = this.#restart();
      }
      throw new HotpatchError('E_TIMEOUT', `the guest did not answer ${what} within ${this.#timeout} ms: it is stopped and restarted at its recorded level`);
    }
  }

  #stuckError(): HotpatchError {
    const s = this.#stuck!;
    return new HotpatchError('E_GUEST_STUCK', `the guest is stuck in ${s.what} (for ${((Date.now() - s.since) / 1000).toFixed(1)} s): it is being restarted at its recorded level`);
  }

  /** Stops the stuck worker and starts a new one at the recorded level; stays stuck if that fails. */
  async #restart(): Promise<void> {
    const log = this.#options.log ?? (() => {});
    const stuck = this.#stuck!;
    log(`guest stuck in ${stuck.what}: stopping its worker`);
    await this.#worker.close();
    if (this.#closed) return;
    try {
      const worker = await WorkerGuest.start(this.#baseline, SupervisedGuest.#workerOptions(this.#options));
      try {
        this.#generation = (await this.#options.store?.restore(this.#view(worker)))?.generation;
      } catch (error) {
        await worker.close();
        throw error;
      }
      this.#worker = worker;
      this.#forwardEvents(worker);
      this.#restarts++;
      this.#stuck = undefined;
      log(`guest restarted${this.#generation === undefined ? '' : ` at recorded generation ${this.#generation}`}`);
    } catch (error) {
      this.#stuck = { what: `a restart after ${stuck.what} (${(error as Error).message})`, since: stuck.since };
      log(`guest restart failed: ${(error as Error).message}`);
    }
  }

  /** Resolves once a restart in progress is over (immediately when none is). */
  async settled(): Promise<void> {
    await this.#restarting;
  }

  /**
   * The guest's patch level, with what the supervisor knows (`host`).
   * @throws HotpatchError E_GUEST_STUCK (naming what it is stuck in), E_TIMEOUT
   */
  async status(): Promise<GuestStatus & { host: SupervisedState }> {
    const status = await this.#request('status', (w) => w.status());
    return { ...status, host: { state: this.#worker.state, restarts: this.#restarts, ...(this.#generation === undefined ? {} : { restoredGeneration: this.#generation }) } };
  }

  /**
   * Loads a patch (verified in this thread first).
   * @throws HotpatchError as `WorkerGuest.load`, E_TIMEOUT, E_GUEST_STUCK
   */
  async load(bytes: Uint8Array, options: LoadOptions = {}): Promise<LoadResult> {
    const started = performance.now();
    return loadResult(await this.#request('load', (w) => w.load(bytes, options)), started);
  }

  /**
   * Applies a loaded patch.
   * @throws HotpatchError as `WorkerGuest.apply`, E_TIMEOUT, E_GUEST_STUCK
   */
  async apply(id: string, options: CommitOptions = {}): Promise<CommitResult> {
    return commitResult(id, 'applied', await this.#request(`apply of "${id}"`, (w) => w.apply(id, options)));
  }

  /**
   * Reverts an applied patch.
   * @throws HotpatchError as `WorkerGuest.revert`, E_TIMEOUT, E_GUEST_STUCK
   */
  async revert(id: string): Promise<CommitResult> {
    return commitResult(id, 'reverted', await this.#request(`revert of "${id}"`, (w) => w.revert(id)));
  }

  /**
   * Forgets a loaded patch.
   * @throws HotpatchError E_TIMEOUT, E_GUEST_STUCK
   */
  async unload(id: string): Promise<void> {
    await this.#request(`unload of "${id}"`, (w) => w.unload(id));
  }

  /**
   * Calls a guest export.
   * @throws HotpatchError E_TIMEOUT, E_GUEST_STUCK; a trap rejects with the guest's error
   */
  call(name: string, ...args: unknown[]): Promise<unknown> {
    return this.#request(`a call of ${name}`, (w) => w.call(name, ...args));
  }

  /** Listens to one kind of guest event, across restarts. */
  addEventListener<K extends keyof GuestEventMap>(type: K, listener: GuestListener<K>, options?: boolean | AddEventListenerOptions): void {
    this.#events.addEventListener(type, listener as EventListener, options);
  }

  /** Stops listening. */
  removeEventListener<K extends keyof GuestEventMap>(type: K, listener: GuestListener<K>, options?: boolean | EventListenerOptions): void {
    this.#events.removeEventListener(type, listener as EventListener, options);
  }

  /** Stops the worker, whatever it is doing. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#worker.close();
    await this.#restarting;
    await this.#worker.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
