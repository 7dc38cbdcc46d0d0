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
  /** Where events go during a rehearsal (see `quietly`): a target of our own, with a listener that does nothing. */
  #sink: EventTarget | undefined;
  #quiet = false;

  override addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void {
    this.#heard.add(type);
    super.addEventListener(type, listener, options);
  }

  /** Dispatches `new GuestEvent(type, init)` if anyone has listened for `type`. */
  protected emit(type: GuestEventType, init: ConstructorParameters<typeof GuestEvent>[1]): void {
    if (!this.#heard.has(type)) return;
    const event = new GuestEvent(type, init);
    if (this.#quiet) this.#rehearsed(event);
    else this.dispatchEvent(event);
  }

  /**
   * Runs `fn` (a rehearsal of a change: see `Guest.warm`) with its events built as they would be,
   * and dispatched to a private target instead of this one: the code that makes and dispatches
   * them is compiled, and no listener hears of a change that did not happen.
   */
  protected quietly<T>(fn: () => T): T {
    const quiet = this.#quiet;
    this.#quiet = true;
    try {
      return fn();
    } finally {
      this.#quiet = quiet;
    }
  }

  #rehearsed(event: GuestEvent): void {
    this.#sink ??= new EventTarget();
    // One listener per type, as a heard type has here: dispatch walks a listener either way.
    this.#sink.addEventListener(event.type, ignore);
    this.#sink.dispatchEvent(event);
  }
}

const ignore = (): void => {};
