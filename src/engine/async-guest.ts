import { HotpatchError } from '../errors.js';
import type { BaselineManifest } from '../format/manifest.js';
import type { CommitOptions, CommitResult, GuestEventMap, GuestListener, GuestStatus, HotpatchGuest, LoadOptions, LoadResult } from './contract.js';
import type { Guest } from './guest.js';

const now = (): number => globalThis.performance.now();

/**
 * An in-thread `Guest` seen through the contract every guest kind keeps: the same verbs and
 * answers as a worker guest. The `Guest` keeps its synchronous API (test stubs are applied from
 * inside import callbacks); this view only awaits nothing and reshapes the answers.
 */
export class AsyncGuest implements HotpatchGuest {
  readonly #guest: Guest;

  /** @internal Made by `Guest.async`. */
  constructor(guest: Guest) {
    this.#guest = guest;
  }

  /** The baseline's manifest. */
  get manifest(): BaselineManifest {
    return this.#guest.manifest;
  }

  /** @see HotpatchGuest.load */
  async load(bytes: Uint8Array, options: LoadOptions = {}): Promise<LoadResult> {
    const start = now();
    const p = await this.#guest.load(bytes, options);
    return { id: p.id, sequence: p.sequence, cumulative: p.cumulative, description: p.description, targets: p.targets, duration: now() - start };
  }

  /** @see HotpatchGuest.apply */
  async apply(id: string, options: CommitOptions = {}): Promise<CommitResult> {
    const start = now();
    const p = this.#guest.apply(id, options);
    return { id: p.id, state: p.state, commit: this.#guest.lastCommit, duration: now() - start };
  }

  /** @see HotpatchGuest.revert */
  async revert(id: string): Promise<CommitResult> {
    const start = now();
    const p = this.#guest.revert(id);
    return { id: p.id, state: p.state, commit: this.#guest.lastCommit, duration: now() - start };
  }

  /** @see HotpatchGuest.unload */
  async unload(id: string): Promise<void> {
    this.#guest.unload(id);
  }

  /** @see HotpatchGuest.status */
  async status(): Promise<GuestStatus> {
    this.#open();
    return this.#guest.status();
  }

  /**
   * @see HotpatchGuest.call
   * @throws HotpatchError E_UNKNOWN_FUNCTION when the guest exports no function of that name, E_CLOSED
   */
  async call(name: string, ...args: unknown[]): Promise<unknown> {
    this.#open();
    const fn = this.#guest.exports[name];
    if (typeof fn !== 'function') throw new HotpatchError('E_UNKNOWN_FUNCTION', `the guest exports no function "${name}"`);
    return (fn as (...a: unknown[]) => unknown)(...args);
  }

  /** @see HotpatchGuest.addEventListener */
  addEventListener<K extends keyof GuestEventMap>(type: K, listener: GuestListener<K>, options?: boolean | AddEventListenerOptions): void {
    this.#guest.addEventListener(type, listener, options);
  }

  /** @see HotpatchGuest.removeEventListener */
  removeEventListener<K extends keyof GuestEventMap>(type: K, listener: GuestListener<K>, options?: boolean | EventListenerOptions): void {
    this.#guest.removeEventListener(type, listener, options);
  }

  // A closed guest of another kind cannot answer at all: the in-thread one refuses alike.
  #open(): void {
    if (this.#guest.closed) throw new HotpatchError('E_CLOSED', 'this guest is closed');
  }

  /** @see HotpatchGuest.close */
  async close(): Promise<void> {
    this.#guest.close();
  }
}
