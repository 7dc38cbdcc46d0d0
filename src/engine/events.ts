import type { HotpatchError } from '../errors.js';

import type { GuestEventMap } from './contract.js';

/** Event names a guest dispatches. */
export type GuestEventType = keyof GuestEventMap;

/** What happened to which patch, and how long it took. */
export class GuestEvent extends Event {
  /** The patch id, when the patch got far enough to have one. */
  readonly patch: string | undefined;
  /** Milliseconds the whole operation took. */
  readonly duration: number;
  /** Milliseconds spent writing table slots (apply and revert only): the pause the guest saw. */
  readonly commit: number | undefined;
  readonly error: HotpatchError | undefined;

  constructor(type: GuestEventType, init: { patch?: string | undefined; duration: number; commit?: number; error?: HotpatchError }) {
    super(type);
    this.patch = init.patch;
    this.duration = init.duration;
    this.commit = init.commit;
    this.error = init.error;
  }
}

/**
 * The event target of a guest: it builds a `GuestEvent` only for a type somebody has listened
 * for, because constructing an `Event` costs 1–5 µs warm and tens of µs cold in Node, more than
 * the commit it reports. A type once listened for is always dispatched, so a listener removed
 * later can never cause a missed event.
 */
export class GuestEventTarget extends EventTarget {
  readonly #heard = new Set<string>();

  override addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void {
    this.#heard.add(type);
    super.addEventListener(type, listener, options);
  }

  /** Dispatches `new GuestEvent(type, init)` if anyone has listened for `type`. */
  protected emit(type: GuestEventType, init: ConstructorParameters<typeof GuestEvent>[1]): void {
    if (this.#heard.has(type)) this.dispatchEvent(new GuestEvent(type, init));
  }
}
