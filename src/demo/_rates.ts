/** A reading of the guest's counters. */
export interface Counters {
  readonly served: number;
  readonly escalations: number;
}

/**
 * Requests and escalations per second within one phase: the window restarts at every switch, so
 * the first rate after applying the fix counts only requests served patched (issue 16: a window
 * straddling the switch showed escalations on the first "patched" line).
 */
export class PhaseRates {
  #from: Counters;
  #fromAt: number;
  #requests: number | undefined;
  #escalations: number | undefined;

  constructor(
    start: Counters,
    at: number,
    readonly windowMs = 250,
  ) {
    this.#from = start;
    this.#fromAt = at;
  }

  /** Starts a new phase at this reading: no rate until a window of it has passed. */
  restart(start: Counters, at: number): void {
    this.#from = start;
    this.#fromAt = at;
    this.#requests = undefined;
    this.#escalations = undefined;
  }

  /** Takes a reading; the rates move once a whole window has passed since the last move (or on `force`, if any time has). */
  update(now: Counters, at: number, force = false): void {
    const ms = at - this.#fromAt;
    // The first rate of a phase comes after half a window, so a new phase does not show "…" for long.
    const due = this.#requests === undefined ? this.windowMs / 2 : this.windowMs;
    if (ms < due && !(force && ms > 0)) return;
    this.#requests = ((now.served - this.#from.served) * 1000) / ms;
    this.#escalations = ((now.escalations - this.#from.escalations) * 1000) / ms;
    this.#from = now;
    this.#fromAt = at;
  }

  /** Requests per second over the last window of this phase, undefined before the first. */
  get requests(): number | undefined {
    return this.#requests;
  }

  /** Escalations per second over the last window of this phase, undefined before the first. */
  get escalations(): number | undefined {
    return this.#escalations;
  }
}
