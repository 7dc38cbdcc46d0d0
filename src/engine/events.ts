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

  constructor(
    type: GuestEventType,
    init: { patch?: string | undefined; duration: number; commit?: number; error?: HotpatchError },
  ) {
    super(type);
    this.patch = init.patch;
    this.duration = init.duration;
    this.commit = init.commit;
    this.error = init.error;
  }
}
