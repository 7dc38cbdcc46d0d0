import type { GuestStatus } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import type { EndpointGuest } from './_recorded.js';
import type { PatchStore } from './store.js';
import { type RemotePatch, WorkerGuest, type WorkerGuestOptions } from './worker-guest.js';

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

/**
 * A worker guest that cannot take its host down: every request is answered within `timeout` ms,
 * and a guest that does not answer (a patch's hook or function that loops) is stopped
 * (`worker.terminate()` ends any loop) and started again at the store's recorded level. While
 * that happens, requests are refused with E_GUEST_STUCK naming what the guest was stuck in.
 */
export class SupervisedGuest implements EndpointGuest {
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
    try {
      guest.#generation = (await options.store?.restore(worker))?.generation;
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

  /** Runs one request against the current worker, bounded by the timeout; a timeout restarts the guest. */
  async #request<T>(what: string, send: (worker: WorkerGuest) => Promise<T>): Promise<T> {
    if (this.#closed) throw new HotpatchError('E_IO', 'the guest is closed');
    if (this.#stuck) throw this.#stuckError();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(TIMED_OUT), this.#timeout)));
    try {
      return await Promise.race([send(this.#worker), timedOut]);
    } catch (error) {
      if (error !== TIMED_OUT && !(error instanceof HotpatchError && error.code === 'E_TIMEOUT')) throw error;
      if (!this.#stuck) {
        this.#stuck = { what, since: Date.now() };
        this.#restarting = this.#restart();
      }
      throw new HotpatchError('E_TIMEOUT', `the guest did not answer ${what} within ${this.#timeout} ms: it is stopped and restarted at its recorded level`);
    } finally {
      clearTimeout(timer);
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
        this.#generation = (await this.#options.store?.restore(worker))?.generation;
      } catch (error) {
        await worker.close();
        throw error;
      }
      this.#worker = worker;
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
  load(bytes: Uint8Array, options: { force?: boolean } = {}): Promise<RemotePatch> {
    return this.#request('load', (w) => w.load(bytes, options));
  }

  /**
   * Applies a loaded patch.
   * @throws HotpatchError as `WorkerGuest.apply`, E_TIMEOUT, E_GUEST_STUCK
   */
  apply(id: string, options: { force?: boolean } = {}): Promise<unknown> {
    return this.#request(`apply of "${id}"`, (w) => w.apply(id, options));
  }

  /**
   * Reverts an applied patch.
   * @throws HotpatchError as `WorkerGuest.revert`, E_TIMEOUT, E_GUEST_STUCK
   */
  revert(id: string): Promise<unknown> {
    return this.#request(`revert of "${id}"`, (w) => w.revert(id));
  }

  /**
   * Forgets a loaded patch.
   * @throws HotpatchError E_TIMEOUT, E_GUEST_STUCK
   */
  unload(id: string): Promise<void> {
    return this.#request(`unload of "${id}"`, (w) => w.unload(id));
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
