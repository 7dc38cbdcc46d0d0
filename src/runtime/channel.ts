/**
 * The host's end of the wire to one worker guest: requests go out one at a time, in order, on the
 * control block and the port; each resolves when the guest acknowledges it. A channel ends once:
 * when the worker exits or the host closes it, every pending and later request rejects at once
 * with that reason (not at its timeout, and whether or not anything else keeps the process alive).
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { HotpatchError } from '../errors.js';
import type { Interrupter } from './interrupts.js';
import { Control, FastOp, GuestState, SERVED_AT, type Reply, type Request, type ServedAt, type Unnumbered, type WireError } from './protocol.js';

/** How often an unanswered request interrupts the guest again, in ms. */
const INTERRUPT_RETRY_MS = 2;

// Atomics.waitAsync is in Node 20 but not yet in TypeScript's ES2023 lib.
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

/** A successful answer, as the channel read it. */
export interface Served {
  readonly result: unknown;
  /** Milliseconds from sending the request to reading the answer, in the host. */
  readonly latency: number;
  /** Milliseconds the guest spent writing its table (apply / revert). */
  readonly commit?: number;
  readonly servedAt: ServedAt;
  /** Milliseconds the guest's thread spent on the request. */
  readonly handled: number;
  /** Events the guest emitted while serving it, in order. */
  readonly events: Reply['events'];
}

/** The events a guest emitted while serving a request that failed, by the error the request rejected with. */
export const eventsOf = new WeakMap<object, Reply['events']>();

/** What the host rejects with: the guest's refusal, or what its own code threw (a trap: a `WebAssembly.RuntimeError`, no code). */
function rejection(error: WireError, events: Reply['events']): Error {
  if (error.thrown === undefined) return new Refused(error, events);
  const thrown = error.thrown === 'RuntimeError' ? new WebAssembly.RuntimeError(error.message) : Object.assign(new Error(error.message), { name: error.thrown });
  eventsOf.set(thrown, events);
  return thrown;
}

/** A request the guest refused: its error, and the events it emitted meanwhile. */
export class Refused extends HotpatchError {
  readonly events: Reply['events'];

  constructor(error: WireError, events: Reply['events']) {
    super(error.code, error.message, { problems: error.problems });
    this.events = events;
  }
}

/** How the channel reaches its guest. */
export interface ChannelOptions {
  readonly timeout: number;
  readonly spin: number;
  readonly interrupter: Interrupter | undefined;
  /** Whether every request interrupts a running guest at once (it has no safepoints to wait for). */
  readonly interruptFirst: boolean;
}

/** One worker guest's request queue over its control block and port. */
export class Channel {
  readonly #ctrl: Int32Array;
  readonly #port: MessagePort;
  readonly #options: ChannelOptions;
  #seq = 0;
  /** When the request being served was sent. */
  #sentAt = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #ended: HotpatchError | undefined;
  readonly #end: Promise<never>;
  #rejectEnd!: (error: HotpatchError) => void;

  constructor(ctrl: Int32Array, port: MessagePort, options: ChannelOptions) {
    this.#ctrl = ctrl;
    this.#port = port;
    this.#options = options;
    this.#end = new Promise<never>((_, reject) => (this.#rejectEnd = reject));
    this.#end.catch(() => {});
  }

  /** The guest's state as its worker last wrote it. */
  get state(): number {
    return Atomics.load(this.#ctrl, Control.state);
  }

  /** Why the channel ended, if it did. */
  get ended(): HotpatchError | undefined {
    return this.#ended;
  }

  /** Ends the channel: every pending and later request rejects with `error` (the first reason wins). */
  end(error: HotpatchError): void {
    if (this.#ended) return;
    this.#ended = error;
    this.#rejectEnd(error);
  }

  /**
   * Sends a request on the port and resolves with the guest's answer, in turn after earlier ones.
   * @throws HotpatchError the guest's refusal (a `Refused`), E_TIMEOUT, E_IO, or the channel's end (E_CLOSED, E_GUEST_EXITED)
   */
  request(request: Unnumbered<Request>): Promise<Served> {
    return this.#turn(async () => {
      const seq = this.#post(request);
      // A call runs guest code, inside the interrupt when the guest has no safepoints: one
      // interrupt is enough, and more would only queue up behind it.
      await this.#awaitAck(seq, request.op, undefined, request.op !== 'call' && request.op !== 'callPatch');
      const latency = performance.now() - this.#sentAt;
      const reply = this.#reply(seq, request.op);
      if (!reply.ok) throw rejection(reply.error, reply.events);
      return { result: reply.result, latency, servedAt: reply.servedAt, handled: reply.duration, events: reply.events, ...(reply.commit === undefined ? {} : { commit: reply.commit }) };
    });
  }

  /**
   * apply / revert of a loaded patch through the control block alone: nothing to serialize on either side.
   * @throws HotpatchError as `request`
   */
  fast(op: number, handle: number, options: { force: boolean; whileActive?: boolean; quiesceTimeout?: number; rehearse?: boolean }): Promise<Served> {
    const what = op === FastOp.apply ? 'apply' : 'revert';
    return this.#turn(async () => {
      const ctrl = this.#ctrl;
      Atomics.store(ctrl, Control.op, op);
      Atomics.store(ctrl, Control.handle, handle);
      Atomics.store(ctrl, Control.force, options.force ? 1 : 0);
      Atomics.store(ctrl, Control.whileActive, options.whileActive ? 1 : 0);
      Atomics.store(ctrl, Control.quiesce, options.quiesceTimeout ?? 2000);
      Atomics.store(ctrl, Control.rehearse, options.rehearse ? 1 : 0);
      const seq = this.#signal();
      await this.#awaitAck(seq, what, () => {
        // The export may have returned between our look at its state and the request: an idle
        // guest hears only its port, so knock there; its handler serves the control block first.
        this.#port.postMessage({ seq: 0, op: 'poke' } satisfies Request);
      });
      const latency = performance.now() - this.#sentAt;
      const extra = Atomics.load(ctrl, Control.status) !== 0 || Atomics.load(ctrl, Control.events) !== 0 ? this.#reply(seq, what) : undefined;
      if (extra && !extra.ok) throw rejection(extra.error, extra.events);
      const f64 = new Float64Array(ctrl.buffer);
      return {
        result: undefined,
        latency,
        commit: f64[Control.commitF64]!,
        servedAt: SERVED_AT[Atomics.load(ctrl, Control.servedAt)]!,
        handled: f64[Control.handledF64]!,
        events: extra?.events ?? [],
      };
    });
  }

  #turn<T>(serve: () => Promise<T>): Promise<T> {
    const turn = this.#queue.then(() => {
      if (this.#ended) throw this.#ended;
      return serve();
    });
    this.#queue = turn.catch(() => {});
    return turn;
  }

  #post(request: Unnumbered<Request>): number {
    this.#port.postMessage({ ...request, seq: this.#seq + 1 } as Request);
    return this.#signal();
  }

  /** Numbers the request and raises the pending flag; a guest without safepoints is interrupted at once. */
  #signal(): number {
    const seq = ++this.#seq;
    this.#sentAt = performance.now();
    Atomics.store(this.#ctrl, Control.request, seq);
    Atomics.store(this.#ctrl, Control.pending, 1);
    Atomics.notify(this.#ctrl, Control.pending);
    if (this.#options.interruptFirst) this.#interruptIfBusy();
    return seq;
  }

  #reply(seq: number, what: string): Reply {
    const reply = receiveMessageOnPort(this.#port)?.message as Reply | undefined;
    if (!reply || reply.seq !== seq) throw new HotpatchError('E_IO', `lost the answer to ${what}`);
    return reply;
  }

  /** Interrupts a guest running its export (an idle one is served from its event loop). */
  #interruptIfBusy(): void {
    if (this.state === GuestState.running) this.#options.interrupter?.interrupt();
  }

  /**
   * Waits for the guest to acknowledge request `seq`: spins briefly, then waits without blocking,
   * interrupting a busy guest every few ms (`reinterrupt`), or at most once. Rejects at once when
   * the channel ends meanwhile.
   */
  async #awaitAck(seq: number, what: string, onSlow?: () => void, reinterrupt = true): Promise<void> {
    const ctrl = this.#ctrl;
    const { timeout, spin, interrupter, interruptFirst } = this.#options;
    const spinUntil = performance.now() + spin / 1000;
    while (Atomics.load(ctrl, Control.ack) !== seq && performance.now() < spinUntil) {
      /* spin: the guest usually answers within microseconds */
    }
    if (Atomics.load(ctrl, Control.ack) !== seq) {
      if (onSlow && this.state !== GuestState.running) onSlow();
      // Interrupts are sent (again) every few ms: a guest with safepoints that has not answered may
      // be in code that does not poll, an interrupt may have come while the guest could not be
      // changed, and a quiescent apply waits for a moment when its targets are idle.
      const slice = interrupter ? INTERRUPT_RETRY_MS : timeout;
      let interrupted = interruptFirst;
      for (const until = performance.now() + timeout; Atomics.load(ctrl, Control.ack) !== seq && performance.now() < until; ) {
        // Wait for the ack to change from what it is: an earlier request may never have been answered.
        const waited = waitAsync(ctrl, Control.ack, Atomics.load(ctrl, Control.ack), Math.min(slice, until - performance.now()));
        // waitAsync's timer does not keep the process alive, and a dead worker never notifies: the end does.
        if (waited.async) await Promise.race([waited.value, this.#end]);
        if (Atomics.load(ctrl, Control.ack) !== seq && (reinterrupt || !interrupted)) {
          this.#interruptIfBusy();
          interrupted = true;
        }
      }
    }
    if (this.#ended) throw this.#ended;
    if (Atomics.load(ctrl, Control.ack) !== seq) throw new HotpatchError('E_TIMEOUT', `no answer to ${what} within ${timeout} ms: ${this.#why()}`);
  }

  #why(): string {
    switch (this.state) {
      case GuestState.running:
        return `the guest is busy and reached no safepoint${this.#options.interrupter ? ' and no interrupt check' : ' (prepare it with safepoints, or let it be interrupted)'}`;
      case GuestState.busy:
        return 'the guest is busy serving an earlier request (a hook or call that has not returned)';
      default:
        return `the guest is ${Object.entries(GuestState).find(([, v]) => v === this.state)?.[0] ?? 'in an unknown state'}`;
    }
  }
}
