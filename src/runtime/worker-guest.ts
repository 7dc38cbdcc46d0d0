import { receiveMessageOnPort, MessageChannel, type MessagePort } from 'node:worker_threads';
import { checkTrust, GuestEvent, type GuestStatus, type PatchPolicy } from '../engine/index.js';
import type { BaselineManifest } from '../format/manifest.js';
import { HotpatchError } from '../errors.js';
import { GuestThread } from './guest-thread.js';
import { type Interrupter, interruptible } from './interrupts.js';
import { Control, FastOp, GuestState, SERVED_AT, type Notice, type RemoteApplyOptions, type Reply, type Request, type ServedAt, type Unnumbered } from './protocol.js';
import type { WorkerInit } from './worker.js';

/** Options of {@link WorkerGuest.start}. */
export interface WorkerGuestOptions {
  /** A module (URL or path) whose default export is the guest's import object, or a function that makes it in the worker. */
  readonly imports?: string | URL;
  /** An export to call once the guest is ready; it may never return (a service loop). */
  readonly run?: { readonly export: string; readonly args?: readonly unknown[] };
  /** How long a request may wait for the guest, in ms (default 10 000). */
  readonly timeout?: number;
  /** How long to spin for an answer before waiting without blocking, in µs (default 200). */
  readonly spin?: number;
  /** A shared memory to give the guest as the import `module.name` (threads of one program share it). */
  readonly memory?: { readonly module: string; readonly name: string; readonly memory: WebAssembly.Memory };
  /** What patches this host accepts (trusted keys, size): checked here, before anything is sent. */
  readonly policy?: PatchPolicy;
  /** Passed to the Worker as its `execArgv`. */
  readonly execArgv?: readonly string[];
  /**
   * Reach the guest while it is busy through V8's own interrupt checks (Node's inspector), so a
   * baseline needs no safepoints and no code is added to be reachable. A baseline with safepoints
   * is asked at its safepoints first, and interrupted only if it has not answered within a couple
   * of milliseconds (it may be in code that does not poll: an original, an import). A `call` into
   * a busy guest may run inside the interrupt: keep such calls short (one that never returns
   * holds back later requests). Default: true where Node has an inspector.
   * @see ./interrupts.ts for when the checks come
   */
  readonly interrupts?: boolean;
}

/** The answer to one request: what it returned, how long the host waited, and how the guest served it. */
export interface Answer<T = unknown> {
  readonly result: T;
  /** Milliseconds from sending the request to reading the answer, in the host. */
  readonly latency: number;
  /** Milliseconds the guest spent writing its table (apply / revert). */
  readonly commit?: number;
  /** Whether the busy guest served it at a safepoint or an interrupt, or an idle one from its event loop. */
  readonly servedAt: ServedAt;
  /** Milliseconds the guest's thread spent on the request, from picking it up to answering. */
  readonly handled: number;
}

/** A patch loaded into a worker guest, as the host sees it. */
export interface RemotePatch {
  readonly id: string;
  readonly sequence: number;
  readonly cumulative: boolean;
  readonly targets: readonly string[];
}

/** Interrupts as asked: on when asked for (or an error saying why not), else on where they work. */
function reachable(wanted: boolean | undefined): ReturnType<typeof interruptible> | undefined {
  if (wanted === false) return undefined;
  try {
    return interruptible();
  } catch (error) {
    if (wanted) throw error;
    return undefined;
  }
}

/** How often an unanswered request interrupts the guest again, in ms. */
const INTERRUPT_RETRY_MS = 2;

// Running from TypeScript sources (tsx, vitest): start the worker from sources too.
const fromSources = import.meta.url.endsWith('.ts');
const workerScript = new URL(fromSources ? './worker.ts' : './worker.js', import.meta.url);

/**
 * A guest running in a worker thread, driven from the host with the in-thread `Guest`'s API:
 * `load`, `apply`, `revert`, `status`, events. Each call resolves when the guest has acknowledged
 * it, with the measured latency. The guest keeps running while it is patched: a busy guest
 * answers at its safepoints (prepare with `safepoints`), an idle one from its event loop.
 */
export class WorkerGuest extends EventTarget {
  /** The guest's thread; its `terminate()` is reliable (see `guest-thread.ts`), but prefer `close()`. */
  readonly worker: GuestThread;
  readonly baseline: string;
  /** The baseline's manifest: its functions, signatures and slots. */
  readonly manifest: BaselineManifest;
  readonly #ctrl: Int32Array;
  readonly #port: MessagePort;
  readonly #timeout: number;
  readonly #spin: number;
  readonly #policy: PatchPolicy;
  readonly #interrupter: Interrupter | undefined;
  /** Whether every request interrupts at once (no safepoints to wait for). */
  readonly #interruptFirst: boolean;
  #seq = 0;
  readonly #handles = new Map<string, number>();
  #queue: Promise<unknown> = Promise.resolve();
  #ended: Notice | undefined;
  #exited = false;

  private constructor(worker: GuestThread, manifest: BaselineManifest, ctrl: Int32Array, port: MessagePort, options: WorkerGuestOptions, interrupter: Interrupter | undefined) {
    super();
    this.worker = worker;
    this.baseline = manifest.id;
    this.manifest = manifest;
    this.#ctrl = ctrl;
    this.#port = port;
    this.#timeout = options.timeout ?? 10_000;
    this.#spin = options.spin ?? 200;
    this.#policy = options.policy ?? {};
    this.#interrupter = interrupter;
    this.#interruptFirst = interrupter !== undefined && !manifest.safepoints;
  }

  /**
   * Starts a worker running the baseline (bytes are verified against the baseline id there).
   * @throws HotpatchError E_INSTANTIATE_FAILED when the guest does not start; E_USAGE when
   * `interrupts: true` and Node's inspector is not usable (without the option they are just off)
   */
  static async start(baseline: Uint8Array, options: WorkerGuestOptions = {}): Promise<WorkerGuest> {
    const control = new SharedArrayBuffer(Control.size * 4);
    const { port1, port2 } = new MessageChannel();
    const init: WorkerInit = {
      hotpatch: { control, port: port2 },
      baseline,
      ...(options.imports ? { imports: String(options.imports instanceof URL ? options.imports : new URL(options.imports, `file://${process.cwd()}/`)) } : {}),
      ...(options.run ? { run: options.run } : {}),
      ...(options.memory ? { memory: options.memory } : {}),
    };
    const reach = reachable(options.interrupts);
    const settings = { workerData: init, transferList: [port2], ...(options.execArgv ? { execArgv: [...options.execArgv] } : {}), ...(reach ? { name: reach.name } : {}) };
    // The policy stays in the host: the worker receives only what passed it.
    // From sources, register tsx in the worker first (a worker does not inherit the parent's loader).
    const worker = fromSources
      ? new GuestThread(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(workerScript.href)}); })`, { ...settings, eval: true })
      : new GuestThread(workerScript, settings);
    const attaching = reach?.attached(worker, options.timeout ?? 10_000);
    attaching?.catch(() => {}); // awaited below once the worker is ready
    const listeners: [string, (...args: any[]) => void][] = [];
    const ready = await new Promise<Notice>((resolve, reject) => {
      listeners.push(['message', resolve], ['error', reject], ['exit', (code: number) => reject(new Error(`worker exited with code ${code} before it was ready`))]);
      for (const [event, listener] of listeners) worker.once(event, listener);
    }).catch((cause: unknown) => {
      throw new HotpatchError('E_INSTANTIATE_FAILED', `the worker guest did not start: ${(cause as Error).message}`, { cause });
    });
    // Only ours: removeAllListeners would also drop Node's own, and messages would stall until exit.
    for (const [event, listener] of listeners) worker.off(event, listener);
    if (ready.notice !== 'ready') {
      await worker.terminate();
      throw new HotpatchError('E_INSTANTIATE_FAILED', `the worker guest did not start: ${'message' in ready ? ready.message : ready.notice}`);
    }
    const interrupter = await attaching?.catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
    const ctrl = new Int32Array(control);
    const guest = new WorkerGuest(worker, ready.manifest, ctrl, port1, options, interrupter);
    worker.on('message', (notice: Notice) => guest.#notice(notice));
    worker.on('error', (error) => guest.#notice({ notice: 'error', message: error.message }));
    worker.on('exit', () => {
      guest.#exited = true;
      guest.dispatchEvent(new Event('exit'));
    });
    if (options.run) {
      // Resolve once the export runs, so what follows is served the way a running guest serves it.
      const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> | string } }).waitAsync;
      const waited = waitAsync(ctrl, Control.state, GuestState.idle, options.timeout ?? 10_000);
      if (waited.async) await waited.value;
    }
    return guest;
  }

  #notice(notice: Notice): void {
    if (notice.notice === 'rolled-back') {
      this.dispatchEvent(new GuestEvent('rolled-back', { patch: notice.patch, duration: 0 }));
      return;
    }
    if (notice.notice === 'trapped' || notice.notice === 'error' || notice.notice === 'returned') this.#ended = notice;
    this.dispatchEvent(Object.assign(new Event(notice.notice), { detail: notice }));
  }

  /** What the guest is doing: running its export, idle, trapped, or exited. */
  get state(): 'starting' | 'running' | 'idle' | 'trapped' | 'exited' {
    if (this.#exited) return 'exited';
    const names = Object.entries(GuestState).find(([, v]) => v === Atomics.load(this.#ctrl, Control.state));
    return (names?.[0] ?? 'exited') as WorkerGuest['state'];
  }

  /** How the export the guest was asked to run ended, if it did. */
  get ended(): Notice | undefined {
    return this.#ended;
  }

  async #request(request: Unnumbered<Request>, event?: 'loaded' | 'applied' | 'reverted'): Promise<Answer> {
    const turn = this.#queue.then(() => this.#send(request, event));
    this.#queue = turn.catch(() => {});
    return turn;
  }

  async #send(request: Unnumbered<Request>, event?: 'loaded' | 'applied' | 'reverted'): Promise<Answer> {
    const seq = ++this.#seq;
    const ctrl = this.#ctrl;
    const t0 = performance.now();
    this.#port.postMessage({ ...request, seq } as Request);
    Atomics.store(ctrl, Control.request, seq);
    Atomics.store(ctrl, Control.pending, 1);
    Atomics.notify(ctrl, Control.pending);
    if (this.#interruptFirst) this.#interruptIfBusy();
    // The guest usually answers within microseconds: spin briefly, then wait without blocking.
    // A call runs guest code, inside the interrupt when the guest has no safepoints: one interrupt
    // is enough, and more would only queue up behind it.
    await this.#awaitAck(seq, request.op, undefined, request.op !== 'call' && request.op !== 'callPatch');
    const message = receiveMessageOnPort(this.#port);
    const latency = performance.now() - t0;
    const reply = message?.message as Reply | undefined;
    if (!reply || reply.seq !== seq) throw new HotpatchError('E_IO', `lost the answer to ${request.op}`);
    if (!reply.ok) {
      const error = new HotpatchError(reply.error.code, reply.error.message, { problems: reply.error.problems });
      if (request.op === 'load') this.dispatchEvent(new GuestEvent('rejected', { duration: latency, error }));
      throw error;
    }
    const answer: Answer = { result: reply.result, latency, servedAt: reply.servedAt, handled: reply.duration, ...(reply.commit === undefined ? {} : { commit: reply.commit }) };
    if (event) {
      const id = typeof reply.result === 'string' ? reply.result : (reply.result as RemotePatch).id;
      this.dispatchEvent(new GuestEvent(event, { patch: id, duration: latency, ...(reply.commit === undefined ? {} : { commit: reply.commit }) }));
    }
    return answer;
  }

  /**
   * Compiles a patch here, sends the module, and has the guest validate and instantiate it (no effect yet).
   * @throws HotpatchError E_PATCH_REJECTED (with every problem), E_INVALID_WASM, E_TIMEOUT
   */
  async load(bytes: Uint8Array, options: { force?: boolean; module?: WebAssembly.Module } = {}): Promise<RemotePatch & { latency: number }> {
    await checkTrust(bytes, this.#policy);
    let module: WebAssembly.Module;
    try {
      module = options.module ?? (await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>));
    } catch (cause) {
      throw new HotpatchError('E_PATCH_REJECTED', `patch rejected: does not compile: ${(cause as Error).message}`, {
        cause,
        problems: [{ code: 'E_INVALID_WASM', message: (cause as Error).message }],
      });
    }
    const answer = await this.#request({ op: 'load', bytes, module, ...(options.force ? { force: true } : {}) }, 'loaded');
    const { handle, ...patch } = answer.result as RemotePatch & { handle: number };
    this.#handles.set(patch.id, handle);
    return { ...patch, latency: answer.latency };
  }

  /**
   * Forward attach in the guest's thread; resolves when the guest acknowledged. On a quiescent
   * baseline a busy guest applies at the first safepoint where no target runs, waiting up to
   * `quiesceTimeout` ms (default 2000); `whileActive` skips the wait. `probe` (the name of a guest
   * export taking no arguments) and `watch` work as in `Guest.apply`, in the guest's thread: a
   * failing probe rejects with E_ROLLED_BACK, a rollback at a later trap comes as a `rolled-back`
   * event (the trap itself still ends the export it happened in).
   * @throws HotpatchError as `Guest.apply`, E_QUIESCENCE_TIMEOUT (nothing changed), E_TIMEOUT
   */
  apply(id: string, options: RemoteApplyOptions & { readonly quiesceTimeout?: number } = {}): Promise<Answer<string>> {
    const { quiesceTimeout, ...remote } = options;
    // Health checks go by message: the control block carries only the switch.
    if (remote.probe === undefined && remote.watch === undefined && this.#fastPossible(id)) return this.#fast(FastOp.apply, id, options.force === true, options);
    return this.#request({ op: 'apply', id, options: remote }, 'applied') as Promise<Answer<string>>;
  }

  /** A running guest reads fast requests at its safepoints; an idle one only hears the port. */
  #fastPossible(id: string): boolean {
    return this.#handles.has(id) && Atomics.load(this.#ctrl, Control.state) === GuestState.running;
  }

  /** apply / revert through the control block alone: nothing to serialize on either side. */
  #fast(op: number, id: string, force: boolean, options: { whileActive?: boolean; quiesceTimeout?: number } = {}): Promise<Answer<string>> {
    const turn = this.#queue.then(async () => {
      const seq = ++this.#seq;
      const ctrl = this.#ctrl;
      const t0 = performance.now();
      Atomics.store(ctrl, Control.op, op);
      Atomics.store(ctrl, Control.handle, this.#handles.get(id)!);
      Atomics.store(ctrl, Control.force, force ? 1 : 0);
      Atomics.store(ctrl, Control.whileActive, options.whileActive ? 1 : 0);
      Atomics.store(ctrl, Control.quiesce, options.quiesceTimeout ?? 2000);
      Atomics.store(ctrl, Control.request, seq);
      Atomics.store(ctrl, Control.pending, 1);
      Atomics.notify(ctrl, Control.pending);
      if (this.#interruptFirst) this.#interruptIfBusy();
      await this.#awaitAck(seq, op === FastOp.apply ? 'apply' : 'revert', () => {
        // The export may have returned between our look at its state and the request: an idle
        // guest hears only its port, so knock there; its handler serves the control block first.
        this.#port.postMessage({ seq: 0, op: 'poke' } satisfies Request);
      });
      const latency = performance.now() - t0;
      if (Atomics.load(ctrl, Control.status) !== 0) {
        const reply = receiveMessageOnPort(this.#port)?.message as Reply | undefined;
        if (reply && !reply.ok) throw new HotpatchError(reply.error.code, reply.error.message, { problems: reply.error.problems });
        throw new HotpatchError('E_IO', `lost the answer to ${op === FastOp.apply ? 'apply' : 'revert'}`);
      }
      const f64 = new Float64Array(ctrl.buffer);
      const commit = f64[Control.commitF64]!;
      this.dispatchEvent(new GuestEvent(op === FastOp.apply ? 'applied' : 'reverted', { patch: id, duration: latency, commit }));
      return { result: id, latency, commit, servedAt: SERVED_AT[Atomics.load(ctrl, Control.servedAt)]!, handled: f64[Control.handledF64]! };
    });
    this.#queue = turn.catch(() => {});
    return turn;
  }

  /** Interrupts a guest running its export (an idle one is served from its event loop). */
  #interruptIfBusy(): void {
    if (Atomics.load(this.#ctrl, Control.state) === GuestState.running) this.#interrupter?.interrupt();
  }

  /**
   * Waits for the guest to acknowledge request `seq`: spins briefly, then waits without blocking,
   * interrupting a busy guest every few ms (`reinterrupt`), or at most once.
   */
  async #awaitAck(seq: number, what: string, onSlow?: () => void, reinterrupt = true): Promise<void> {
    const ctrl = this.#ctrl;
    const spinUntil = performance.now() + this.#spin / 1000;
    while (Atomics.load(ctrl, Control.ack) !== seq && performance.now() < spinUntil) {
      /* spin */
    }
    if (Atomics.load(ctrl, Control.ack) !== seq) {
      if (onSlow && Atomics.load(ctrl, Control.state) !== GuestState.running) onSlow();
      // Atomics.waitAsync is in Node 20 but not yet in TypeScript's ES2023 lib.
      const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> | string } }).waitAsync;
      // Interrupts are sent (again) every few ms: a guest with safepoints that has not answered may
      // be in code that does not poll, an interrupt may have come while the guest could not be
      // changed, and a quiescent apply waits for a moment when its targets are idle.
      const slice = this.#interrupter ? INTERRUPT_RETRY_MS : this.#timeout;
      let interrupted = this.#interruptFirst;
      for (const until = performance.now() + this.#timeout; Atomics.load(ctrl, Control.ack) !== seq && performance.now() < until; ) {
        // Wait for the ack to change from what it is: an earlier request may never have been answered.
        const waited = waitAsync(ctrl, Control.ack, Atomics.load(ctrl, Control.ack), Math.min(slice, until - performance.now()));
        if (waited.async) await waited.value;
        if (Atomics.load(ctrl, Control.ack) !== seq && (reinterrupt || !interrupted)) {
          this.#interruptIfBusy();
          interrupted = true;
        }
      }
    }
    if (Atomics.load(ctrl, Control.ack) !== seq) {
      const why = this.state === 'running' ? `the guest is busy and reached no safepoint${this.#interrupter ? ' and no interrupt check' : ' (prepare it with safepoints, or let it be interrupted)'}` : this.state === 'exited' ? 'the worker has exited' : `the guest is ${this.state}`;
      throw new HotpatchError('E_TIMEOUT', `no answer to ${what} within ${this.#timeout} ms: ${why}`);
    }
  }

  /**
   * Reverse attach in the guest's thread; resolves when the guest acknowledged.
   * @throws HotpatchError as `Guest.revert`, E_TIMEOUT
   */
  revert(id: string): Promise<Answer<string>> {
    if (this.#fastPossible(id)) return this.#fast(FastOp.revert, id, false);
    return this.#request({ op: 'revert', id }, 'reverted') as Promise<Answer<string>>;
  }

  /** Forgets a patch that is not applied. */
  async unload(id: string): Promise<void> {
    await this.#request({ op: 'unload', id });
  }

  /** The guest's patch level, as `Guest.status()` reports it. */
  async status(): Promise<GuestStatus> {
    return (await this.#request({ op: 'status' })).result as GuestStatus;
  }

  /** Calls an export in the guest's thread (at a safepoint, if it is busy) and returns its result. */
  async call(name: string, ...args: unknown[]): Promise<unknown> {
    return (await this.#request({ op: 'call', name, args })).result;
  }

  /** Calls an export of a loaded patch in the guest's thread (its own state: counters, flags). */
  async callPatch(id: string, name: string, ...args: unknown[]): Promise<unknown> {
    return (await this.#request({ op: 'callPatch', id, name, args })).result;
  }

  /** Stops the worker and releases its interrupter and port. */
  async close(): Promise<void> {
    this.#interrupter?.close();
    this.#port.close();
    await this.worker.terminate();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
