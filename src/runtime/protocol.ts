/**
 * The wire between a host and a worker-hosted guest: a small control block in a
 * SharedArrayBuffer for the signals (a busy guest reads it at its safepoints), and a MessagePort
 * for the payloads (patch modules cross as compiled `WebAssembly.Module`s).
 */
import type { MessagePort } from 'node:worker_threads';
import type { CommitOptions, GuestEventType, GuestStatus, PatchPolicy } from '../engine/index.js';
import type { HotpatchErrorCode, Problem } from '../errors.js';

/** Int32 slots of the control block. */
export const Control = {
  /** Sequence number of the newest request (host writes). */
  request: 0,
  /** Sequence number of the newest answered request (worker writes, then notifies). */
  ack: 1,
  /** 1 while a request waits to be picked up (host sets, worker clears). */
  pending: 2,
  /** What the guest is doing (worker writes): see `GuestState`. */
  state: 3,
  /** Fast requests (apply / revert of a loaded patch), carried in the block itself: see `FastOp`. */
  op: 4,
  /** The fast request's patch handle (given by the guest at load). */
  handle: 5,
  /** 1 to force (anti-downgrade override). */
  force: 6,
  /** The fast request's outcome: 0 done; 1 failed, and the error follows on the port. */
  status: 7,
  /** Quiescent baselines: how long (ms) the guest may wait for its targets to stop running. */
  quiesce: 8,
  /** 1 to apply even while a target runs. */
  whileActive: 9,
  /** Where the fast request was served: see `ServedAt`. */
  servedAt: 10,
  /** 1 when the guest emitted events besides the fast request's own: they follow on the port, in a `Reply`. */
  events: 11,
  /** 1 when the fast request is a rehearsal: the guest runs the same path on its engine's private patch (`Guest.warm`), changing nothing. */
  rehearse: 16,
  size: 18,
  /** Float64 index (in a Float64Array over the same buffer) of the fast request's commit time, ms (Int32 slots 12–13). */
  commitF64: 6,
  /** Float64 index of the time the guest spent on the fast request, ms (Int32 slots 14–15). */
  handledF64: 7,
} as const;

/** Fast request kinds (`Control.op`); 0 means the request is on the port. */
export const FastOp = { none: 0, apply: 1, revert: 2 } as const;

/** Where a request was served: at a safepoint, at a V8 interrupt check, or from the idle event loop. */
export const SERVED_AT = ['safepoint', 'interrupt', 'event-loop'] as const;
export type ServedAt = (typeof SERVED_AT)[number];

/** The global (`Symbol.for`) through which the host's interrupts reach the worker's server (see `interrupts.ts`). */
export const INTERRUPT_KEY = 'wasm-hotpatch.interrupt';

/**
 * Control block `state` values: `busy` while an idle (or trapped) guest serves a request from its
 * event loop, so a request stuck there (a hook that never returns) is not reported idle.
 */
export const GuestState = { starting: 0, running: 1, idle: 2, trapped: 3, exited: 4, busy: 5 } as const;

/** `Guest.apply`'s options that can cross threads: a probe is the name of a guest export. */
export type RemoteApplyOptions = CommitOptions;

/** The part of a host's policy the worker's own guest enforces (keys and sizes are checked by the host, before sending). */
export type ThreadPolicy = Pick<PatchPolicy, 'allowForcedDowngrade'>;

/** An event the worker's guest emitted, as it crosses to the host. */
export interface EventRecord {
  readonly type: GuestEventType;
  readonly patch?: string;
  readonly duration: number;
  readonly commit?: number;
  readonly error?: WireError;
}

/** A `HotpatchError` as it crosses threads; `thrown` names the error class when the guest's own code threw (a trap: `RuntimeError`). */
export interface WireError {
  readonly code: HotpatchErrorCode;
  readonly message: string;
  readonly problems: readonly Problem[];
  readonly thrown?: string;
}

/** A request from the host. */
export type Request =
  /** `module` was compiled by the host from exactly `bytes`, after its policy accepted them. */
  | { seq: number; op: 'load'; bytes: Uint8Array; module: WebAssembly.Module; force?: boolean }
  | { seq: number; op: 'apply'; id: string; options: RemoteApplyOptions }
  | { seq: number; op: 'revert'; id: string }
  | { seq: number; op: 'unload'; id: string }
  | { seq: number; op: 'status' }
  | { seq: number; op: 'call'; name: string; args: unknown[] }
  | { seq: number; op: 'callPatch'; id: string; name: string; args: unknown[] }
  /** No request: wakes an idle guest's event loop to serve a fast request left in the control block. */
  | { seq: number; op: 'poke' };

/** A request before the host numbers it. */
export type Unnumbered<R> = R extends { seq: number } ? Omit<R, 'seq'> : never;

/** The worker's answer, with where it was served, how long the table writes took, and the events the guest emitted meanwhile. */
export type Reply =
  | { seq: number; ok: true; result: unknown; servedAt: ServedAt; commit?: number; duration: number; events: readonly EventRecord[] }
  | { seq: number; ok: false; error: WireError; servedAt: ServedAt; duration: number; events: readonly EventRecord[] };

/** What the worker tells the host on its own: ready, and how a long-running call ended. */
export type Notice =
  | { notice: 'ready'; baseline: string; safepoints: boolean; manifest: import('../format/manifest.js').BaselineManifest }
  | { notice: 'returned'; result: unknown }
  | { notice: 'trapped'; message: string }
  /** An event the guest emitted outside any request (a watched patch rolled back at a trap). */
  | { notice: 'event'; event: EventRecord }
  /** The worker failed; `code` when it was a `HotpatchError` (the guest would not start: the same code as in-thread). */
  | { notice: 'error'; message: string; code?: HotpatchErrorCode };

/** What the host hands the worker in `workerData.hotpatch`. */
export interface WorkerChannel {
  readonly control: SharedArrayBuffer;
  readonly port: MessagePort;
}

export type { GuestStatus };
