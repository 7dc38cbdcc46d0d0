// Messages between the playground page and the worker that runs the guest.

/** What the page asks of the worker. */
export type Command =
  | { readonly type: 'start'; readonly baseline: ArrayBuffer; readonly trustedKeys: readonly string[] }
  | { readonly type: 'apply'; readonly name: string; readonly bytes: ArrayBuffer }
  | { readonly type: 'revert' };

/** The guest's own counters (simulated requests, exploit attempts, escalations that worked). */
export interface Counters {
  /** `performance.now()` in the worker when the counters were read. */
  readonly at: number;
  readonly served: number;
  readonly attempts: number;
  readonly escalations: number;
  /** Whether every balance adds up to the deposits and withdrawals handled. */
  readonly bankOk: boolean;
}

/** An error as it crosses to the page: a HotpatchError's data. */
export interface ErrorData {
  readonly code: string;
  readonly message: string;
  readonly problems: readonly { readonly code: string; readonly message: string }[];
}

/** A guest event as the engine dispatched it: its figures are the engine's, not re-timed. */
export interface EventData {
  readonly type: string;
  readonly patch: string | undefined;
  /** Milliseconds the whole operation took. */
  readonly duration: number;
  /** Milliseconds spent writing table slots (apply, revert): the pause the guest saw. */
  readonly commit: number | undefined;
  readonly error: ErrorData | undefined;
  /** The file or button whose command caused it (a patch refused before its id was read has no id). */
  readonly source: string | undefined;
  /** The counters when the event happened: requests after it ran on the new code. */
  readonly counters: Counters;
}

/** The worker's clock: browsers coarsen \`performance.now()\`, and engine figures are read from it. */
export interface Timer {
  /** The smallest step seen between two readings, in milliseconds. */
  readonly resolution: number;
  readonly crossOriginIsolated: boolean;
}

/** What the worker tells the page. */
export type Report =
  | { readonly type: 'ready'; readonly baseline: string; readonly keyIds: readonly string[]; readonly patched: readonly string[]; readonly timer: Timer }
  | { readonly type: 'counters'; readonly counters: Counters; readonly patched: readonly string[] }
  | { readonly type: 'event'; readonly event: EventData; readonly patched: readonly string[] }
  | { readonly type: 'refused'; readonly what: string; readonly error: ErrorData }
  | { readonly type: 'failed'; readonly error: ErrorData };
