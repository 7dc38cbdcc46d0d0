import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { type Guest, type GuestEvent, type GuestEventType, HotpatchError, type Patch } from '../engine/index.js';
import { Control, type EventRecord, FastOp, GuestState, SERVED_AT, type Reply, type Request, type ServedAt, type WireError } from './protocol.js';

/** Every event a guest emits: forwarded to the host, inside the answer to the request that caused it or on its own. */
const EVENTS: readonly GuestEventType[] = ['loaded', 'rejected', 'applied', 'reverted', 'hook-failed', 'rolled-back'];

const record = (event: GuestEvent): EventRecord => ({
  type: event.type as GuestEventType,
  duration: event.duration,
  ...(event.patch === undefined ? {} : { patch: event.patch }),
  ...(event.commit === undefined ? {} : { commit: event.commit }),
  ...(event.error === undefined ? {} : { error: event.error.toJSON() }),
});

/** A guest served to its host: requests are answered at safepoints, interrupts and from the event loop. */
export interface Server {
  /** Serves whatever is pending now (a long-running import can call this to stay patchable). */
  poll(): void;
  /** The same, called by a V8 interrupt (see `interrupts.ts`): anywhere the guest's thread runs JS or Wasm. */
  interrupt(): void;
  close(): void;
}

/**
 * Serves a guest to the host that started this worker: load, apply, revert, unload, status and
 * call requests. A guest busy in Wasm answers at its next safepoint (the guest's own thread writes
 * its table, as it must: a `WebAssembly.Table` cannot cross threads); an idle guest, or one waiting
 * in an async import, answers from the event loop.
 */
export function serveGuest(guest: Guest, control: SharedArrayBuffer, port: MessagePort, options: { onEvent?: (event: EventRecord) => void } = {}): Server {
  const ctrl = new Int32Array(control);
  const f64 = new Float64Array(control);
  const handles: Patch[] = [];
  // A quiescent apply whose targets are running waits for a later safepoint: since when.
  let deferred: { seq: number; since: number } | undefined;
  // True while the engine changes the guest. A safepoint in a hook's callee or an interrupt
  // between any two instructions could otherwise start a second change inside the first; such a
  // request is served as soon as the first change is done.
  let changing = false;
  let missed = false;
  // Events of the request being served travel with its answer; a fast request's own
  // applied / reverted event is not recorded (the host makes it from the control block).
  let events: EventRecord[] | undefined;
  let fastEvent: GuestEventType | undefined;
  const onGuestEvent = (event: Event): void => {
    if (events === undefined) options.onEvent?.(record(event as GuestEvent));
    else if (event.type !== fastEvent) events.push(record(event as GuestEvent));
  };
  for (const type of EVENTS) guest.addEventListener(type, onGuestEvent);
  // The state the guest had before serving a request from its event loop (it is `busy` meanwhile).
  let busyFrom: number | undefined;
  const busy = (servedAt: ServedAt): void => {
    const state = Atomics.load(ctrl, Control.state);
    if (servedAt !== 'event-loop' || state === GuestState.running || state === GuestState.busy) return;
    busyFrom = state;
    Atomics.store(ctrl, Control.state, GuestState.busy);
  };
  const acknowledge = (seq: number): void => {
    if (busyFrom !== undefined) Atomics.store(ctrl, Control.state, busyFrom);
    busyFrom = undefined;
    Atomics.store(ctrl, Control.ack, seq);
    Atomics.notify(ctrl, Control.ack);
  };

  const change = <T>(fn: () => T): T => {
    changing = true;
    try {
      return fn();
    } finally {
      changing = false;
    }
  };
  // Fast requests allocate nothing on the way: no message to decode, none to send back.
  const fast = (servedAt: ServedAt): void => {
    const start = performance.now();
    const seq = Atomics.load(ctrl, Control.request);
    const op = Atomics.load(ctrl, Control.op);
    busy(servedAt);
    const outer = events;
    events = [];
    fastEvent = op === FastOp.apply ? 'applied' : 'reverted';
    // A rehearsal (the host warming this path at load) runs every line a real request runs, but
    // the engine rehearses on a private patch: nothing changes, no event is sent, nothing recorded.
    const rehearsal = Atomics.load(ctrl, Control.rehearse) === 1;
    try {
      const patch = handles[Atomics.load(ctrl, Control.handle)];
      if (!patch) throw new HotpatchError('E_UNKNOWN_PATCH', 'no patch with that handle in this guest');
      if (op === FastOp.apply) {
        try {
          const applyOptions = { force: Atomics.load(ctrl, Control.force) === 1, whileActive: Atomics.load(ctrl, Control.whileActive) === 1 };
          change(() => (rehearsal ? guest.warm() : guest.apply(patch, applyOptions)));
        } catch (error) {
          if (!(error instanceof HotpatchError) || error.code !== 'E_ACTIVE') throw error;
          if (deferred?.seq !== seq) deferred = { seq, since: start };
          const wait = Atomics.load(ctrl, Control.quiesce);
          if (start - deferred.since < wait) {
            Atomics.store(ctrl, Control.pending, 1); // ask again at the next safepoint
            events = outer;
            fastEvent = undefined;
            return;
          }
          throw new HotpatchError('E_QUIESCENCE_TIMEOUT', `${error.message}; still so after ${wait} ms of safepoints`, { cause: error });
        }
      } else change(() => (rehearsal ? guest.warm() : guest.revert(patch)));
      f64[Control.commitF64] = guest.lastCommit;
      Atomics.store(ctrl, Control.servedAt, SERVED_AT.indexOf(servedAt));
      Atomics.store(ctrl, Control.status, 0);
      Atomics.store(ctrl, Control.events, events.length > 0 ? 1 : 0);
      if (events.length > 0) port.postMessage({ seq, ok: true, result: undefined, servedAt, duration: performance.now() - start, events } satisfies Reply);
    } catch (error) {
      const err = error instanceof HotpatchError ? error : new HotpatchError('E_USAGE', (error as Error)?.message ?? String(error));
      Atomics.store(ctrl, Control.status, 1);
      port.postMessage({ seq, ok: false, error: err.toJSON(), servedAt, duration: performance.now() - start, events } satisfies Reply);
    } finally {
      events = outer;
      fastEvent = undefined;
    }
    Atomics.store(ctrl, Control.op, FastOp.none);
    deferred = undefined;
    f64[Control.handledF64] = performance.now() - start;
    acknowledge(seq);
  };
  const handle = (request: Request, servedAt: ServedAt): void => {
    const start = performance.now();
    busy(servedAt);
    const outer = events;
    const mine: EventRecord[] = [];
    events = mine;
    let reply: Reply;
    try {
      // Calls run guest code, which may itself reach safepoints that serve further requests.
      const result = request.op === 'call' || request.op === 'callPatch' ? run(guest, request, handles) : change(() => run(guest, request, handles));
      const commit = request.op === 'apply' || request.op === 'revert' ? guest.lastCommit : undefined;
      reply = { seq: request.seq, ok: true, result, servedAt, duration: performance.now() - start, events: mine, ...(commit === undefined ? {} : { commit }) };
    } catch (error) {
      reply = { seq: request.seq, ok: false, error: wire(error, request.op === 'call' || request.op === 'callPatch'), servedAt, duration: performance.now() - start, events: mine };
    } finally {
      events = outer;
    }
    port.postMessage(reply);
    acknowledge(request.seq);
  };
  const drain = (servedAt: ServedAt): void => {
    if (changing) {
      missed = true;
      return;
    }
    do {
      missed = false;
      Atomics.store(ctrl, Control.pending, 0);
      if (Atomics.load(ctrl, Control.op) !== FastOp.none) fast(servedAt);
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        if ((m.message as Request).op !== 'poke') handle(m.message as Request, servedAt);
      }
    } while (missed && Atomics.load(ctrl, Control.pending) !== 0);
  };
  const poll = (): void => {
    if (Atomics.load(ctrl, Control.pending) !== 0) drain('safepoint');
  };
  const interrupt = (): void => {
    if (Atomics.load(ctrl, Control.pending) !== 0) drain('interrupt');
  };
  if (guest.manifest.safepoints) guest.setSafepointHandler(poll);
  const onMessage = (request: Request): void => {
    Atomics.store(ctrl, Control.pending, 0);
    if (Atomics.load(ctrl, Control.op) !== FastOp.none) fast('event-loop');
    if (request.op !== 'poke') handle(request, 'event-loop');
    if (missed) drain('event-loop');
  };
  port.on('message', onMessage);
  return {
    poll,
    interrupt,
    close: () => {
      for (const type of EVENTS) guest.removeEventListener(type, onGuestEvent);
      port.off('message', onMessage);
      port.close();
    },
  };
}

/** An error as it crosses to the host: what the guest's own code threw (a trap) keeps its class name, not a code. */
function wire(error: unknown, guestCode: boolean): WireError {
  if (error instanceof HotpatchError) return error.toJSON();
  const message = (error as Error)?.message ?? String(error);
  if (guestCode) return { code: 'E_USAGE', message, problems: [], thrown: (error as Error)?.name ?? 'Error' };
  return new HotpatchError('E_USAGE', message).toJSON();
}

function run(guest: Guest, request: Request, handles: Patch[]): unknown {
  switch (request.op) {
    case 'load': {
      const p = guest.loadSync(request.bytes, { module: request.module, ...(request.force ? { force: true } : {}) });
      const handle = handles.push(p) - 1;
      return { id: p.id, sequence: p.sequence, cumulative: p.cumulative, description: p.description, targets: p.targets, handle };
    }
    case 'apply':
      return guest.apply(request.id, request.options).state;
    case 'revert':
      return guest.revert(request.id).state;
    case 'unload': {
      const p = guest.patch(request.id);
      guest.unload(request.id);
      const at = handles.indexOf(p!);
      if (at >= 0) delete handles[at];
      return request.id;
    }
    case 'status':
      return guest.status();
    case 'callPatch': {
      const p = guest.patch(request.id);
      const fn = p?.instance.exports[request.name];
      if (typeof fn !== 'function') throw new HotpatchError('E_UNKNOWN_FUNCTION', `patch "${request.id}" exports no function "${request.name}"`);
      return (fn as (...a: unknown[]) => unknown)(...request.args);
    }
    case 'poke':
      return undefined;
    case 'call': {
      const fn = guest.exports[request.name];
      if (typeof fn !== 'function') throw new HotpatchError('E_UNKNOWN_FUNCTION', `the guest exports no function "${request.name}"`);
      return (fn as (...a: unknown[]) => unknown)(...request.args);
    }
  }
}

/**
 * For imports that block (a guest waiting for work in a synchronous import): waits up to `ms` on
 * the control block and serves any request that arrives meanwhile, so a guest blocked outside
 * Wasm stays patchable. Returns when the time is up.
 */
export function waitServing(server: Server, control: SharedArrayBuffer, ms: number): void {
  const ctrl = new Int32Array(control);
  const until = performance.now() + ms;
  for (let left = ms; left > 0; left = until - performance.now()) {
    Atomics.wait(ctrl, Control.pending, 0, left);
    server.poll();
  }
}
