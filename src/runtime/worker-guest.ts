import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { CommitOptions, CommitResult, GuestEventMap, GuestStatus, HotpatchGuest, LoadOptions, LoadResult, PatchPolicy, ShadowOptions } from '../engine/index.js';
import { GuestEventTarget } from '../engine/events.js';
import type { BaselineManifest } from '../format/manifest.js';
import { HotpatchError } from '../errors.js';
import { Channel, eventsOf, Refused, type Served } from './channel.js';
import { GuestThread } from './guest-thread.js';
import { type Interrupter, interruptible } from './interrupts.js';
import { Control, FastOp, GuestState, type EventRecord, type Notice, type Request, type ServedAt, type Unnumbered } from './protocol.js';
import { NO_POLICY, type VerifiedPatch, verifiedUnder, verifyPatch } from './verified.js';
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
  /**
   * What patches this host accepts: keys, signatures and size are checked here, before anything is
   * sent; `allowForcedDowngrade` is enforced by the guest itself, in its thread.
   */
  readonly policy?: PatchPolicy;
  /**
   * Offer shadow state (`hotpatch.shadow`) to patches, as an in-thread `Guest`'s `shadow` option:
   * the store lives in the worker, beside the guest's memory, its fields allocated by these exports.
   */
  readonly shadow?: ShadowOptions;
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

/** How a worker guest served a request: where, and how long it took on each side. */
export interface ServedIn {
  /** Whether the busy guest served it at a safepoint or an interrupt, or an idle one from its event loop. */
  readonly servedAt: ServedAt;
  /** Milliseconds the guest's thread spent on the request, from picking it up to answering. */
  readonly handled: number;
  /** Milliseconds from sending the request to reading the answer, in the host. */
  readonly latency: number;
}

/** An event about the export the guest was asked to run, or its worker: `detail` is what the worker said. */
export type NoticeEvent = Event & { readonly detail: Notice };

/** What a worker guest dispatches: the guest's own events (as `Guest` does), and its worker's. */
export interface WorkerGuestEventMap extends GuestEventMap {
  returned: NoticeEvent;
  trapped: NoticeEvent;
  error: NoticeEvent;
  exit: Event;
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

// Running from TypeScript sources (tsx, vitest): start the worker from sources too.
const fromSources = import.meta.url.endsWith('.ts');
const workerScript = new URL(fromSources ? './worker.ts' : './worker.js', import.meta.url);

/**
 * Loads a patch already checked against the guest's policy and compiled (a guest of several threads
 * compiles once for all); one checked under another policy is checked again. Not exported from the package.
 */
// Set by WorkerGuest's static block, which alone can reach its private #load.
export let loadVerified: (guest: WorkerGuest, patch: VerifiedPatch, options: LoadOptions) => Promise<LoadResult>;

/**
 * Rehearsed apply / revert rounds sent by `#warm`: enough for both threads' JIT to have compiled
 * the fast path (measured, fresh processes: 8 rounds left the first apply at 110–170 µs, 16 and 32
 * at 35–70 µs at safepoints; by interrupts, 32 did best).
 */
const WARM_ROUNDS = 32;
/** Rounds at later loads: enough to compile again what V8 flushed meanwhile, for a fraction of the round trips. */
const REWARM_ROUNDS = 4;
const NO_COMMIT_OPTIONS: CommitOptions = Object.freeze({});

/**
 * A guest running in a worker thread, driven from the host through the contract every guest kind
 * keeps (`HotpatchGuest`): the same verbs, answers, errors and events as the in-thread `Guest`,
 * plus where each request was served. The guest keeps running while it is patched: a busy guest
 * answers at its safepoints or interrupt checks, an idle one from its event loop. When its worker
 * exits or it is closed, every pending and later request rejects at once (E_GUEST_EXITED, E_CLOSED).
 */
export class WorkerGuest extends GuestEventTarget implements HotpatchGuest {
  /** The guest's thread; its `terminate()` is reliable (see `guest-thread.ts`), but prefer `close()`. */
  readonly worker: GuestThread;
  readonly baseline: string;
  /** The baseline's manifest: its functions, signatures and slots. */
  readonly manifest: BaselineManifest;
  readonly #channel: Channel;
  readonly #port: MessagePort;
  readonly #policy: PatchPolicy;
  readonly #interrupter: Interrupter | undefined;
  readonly #handles = new Map<string, number>();
  /** Rounds the next load rehearses (see `#warm`). */
  #warmRounds = WARM_ROUNDS;
  /** True only while `#rehearse` calls `apply` or `revert`. */
  #rehearsing = false;
  #ended: Notice | undefined;
  #lastServed: ServedIn | undefined;

  private constructor(worker: GuestThread, manifest: BaselineManifest, ctrl: Int32Array, port: MessagePort, options: WorkerGuestOptions, interrupter: Interrupter | undefined) {
    super();
    this.worker = worker;
    this.baseline = manifest.id;
    this.manifest = manifest;
    this.#port = port;
    this.#policy = options.policy ?? NO_POLICY;
    this.#interrupter = interrupter;
    this.#channel = new Channel(ctrl, port, { timeout: options.timeout ?? 10_000, spin: options.spin ?? 200, interrupter, interruptFirst: interrupter !== undefined && !manifest.safepoints });
  }

  static {
    loadVerified = (guest, patch, options) => guest.#load(patch, options, performance.now());
  }

  /**
   * Starts a worker running the baseline (bytes are verified against the baseline id there).
   * @throws HotpatchError E_INSTANTIATE_FAILED when the guest does not start, or the engine's own code
   * when it refused the baseline or options (E_BASELINE_TAMPERED, E_IMPORT_UNRESOLVED: no `shadow` allocator, …); E_USAGE when
   * `interrupts: true` and Node's inspector is not usable (without the option they are just off)
   */
  static async start(baseline: Uint8Array, options: WorkerGuestOptions = {}): Promise<WorkerGuest> {
    const control = new SharedArrayBuffer(Control.size * 4);
    const { port1, port2 } = new MessageChannel();
    const init: WorkerInit = {
      hotpatch: { control, port: port2 },
      baseline,
      // Keys stay in the host (they check the bytes before anything is sent); the downgrade rule
      // is about the guest's own patch stack, so the guest enforces it.
      policy: options.policy?.allowForcedDowngrade === undefined ? {} : { allowForcedDowngrade: options.policy.allowForcedDowngrade },
      ...(options.imports ? { imports: String(options.imports instanceof URL ? options.imports : new URL(options.imports, `file://${process.cwd()}/`)) } : {}),
      ...(options.run ? { run: options.run } : {}),
      ...(options.memory ? { memory: options.memory } : {}),
      ...(options.shadow ? { shadow: { ...options.shadow } } : {}),
    };
    const reach = reachable(options.interrupts);
    const settings = { workerData: init, transferList: [port2], ...(options.execArgv ? { execArgv: [...options.execArgv] } : {}), ...(reach ? { name: reach.name } : {}) };
    // From sources, register tsx in the worker first (a worker does not inherit the parent's loader).
    const worker = fromSources
      ? new GuestThread(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(workerScript.href)}); })`, { ...settings, eval: true })
      : new GuestThread(workerScript, settings);
    const attaching = reach?.attached(worker, options.timeout ?? 10_000);
    attaching?.catch(() => {}); // awaited below once the worker is ready
    const ready = await firstNotice(worker);
    if (ready.notice !== 'ready') {
      await worker.terminate();
      // The engine's own refusal keeps its code (the same as an in-thread guest's); anything else failed to instantiate.
      const code = ready.notice === 'error' ? (ready.code ?? 'E_INSTANTIATE_FAILED') : 'E_INSTANTIATE_FAILED';
      throw new HotpatchError(code, `the worker guest did not start: ${'message' in ready ? ready.message : ready.notice}`);
    }
    const interrupter = await attaching?.catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
    const ctrl = new Int32Array(control);
    const guest = new WorkerGuest(worker, ready.manifest, ctrl, port1, options, interrupter);
    worker.on('message', (notice: Notice) => guest.#notice(notice));
    worker.on('error', (error) => guest.#notice({ notice: 'error', message: error.message }));
    worker.on('exit', (code: number) => guest.#exit(code));
    if (worker.exitCode !== undefined) guest.#exit(worker.exitCode); // exited while the inspector attached
    // Resolve once the export runs, so what follows is served the way a running guest serves it.
    if (options.run) await untilRunning(ctrl, worker, options.timeout ?? 10_000);
    return guest;
  }

  #exit(code: number): void {
    if (this.#channel.ended?.code === 'E_GUEST_EXITED') return;
    this.#channel.end(new HotpatchError('E_GUEST_EXITED', `the guest's worker exited (code ${code})${this.#ended?.notice === 'error' ? `: ${this.#ended.message}` : ''}`));
    this.#port.close();
    this.dispatchEvent(new Event('exit'));
  }

  #notice(notice: Notice): void {
    if (notice.notice === 'event') {
      this.#dispatch([notice.event]);
      return;
    }
    if (notice.notice === 'trapped' || notice.notice === 'error' || notice.notice === 'returned') this.#ended = notice;
    this.dispatchEvent(Object.assign(new Event(notice.notice), { detail: notice }));
  }

  /** Dispatches the guest's own events, as the worker recorded them. */
  #dispatch(events: readonly EventRecord[]): void {
    for (const e of events) {
      const error = e.error && new HotpatchError(e.error.code, e.error.message, { problems: e.error.problems });
      this.emit(e.type, { patch: e.patch, duration: e.duration, ...(e.commit === undefined ? {} : { commit: e.commit }), ...(error ? { error } : {}) });
    }
  }

  /** What the guest is doing: running its export, idle, busy serving a request from its event loop, trapped, or exited (closed included). */
  get state(): 'starting' | 'running' | 'idle' | 'busy' | 'trapped' | 'exited' {
    if (this.#channel.ended) return 'exited';
    const state = this.#channel.state;
    return (Object.entries(GuestState).find(([, v]) => v === state)?.[0] ?? 'exited') as WorkerGuest['state'];
  }

  /**
   * How the guest served the last request that was answered: where (safepoint, interrupt, event
   * loop) and how long. Answers themselves keep the contract's shapes, the same for every guest kind.
   */
  get lastServed(): ServedIn | undefined {
    return this.#lastServed;
  }

  /** How the export the guest was asked to run ended, if it did. */
  get ended(): Notice | undefined {
    return this.#ended;
  }

  /** Sends a request; dispatches the events the guest emitted while serving it, whether it succeeded or not. */
  async #serve(request: Unnumbered<Request>): Promise<Served> {
    return this.#served(this.#channel.request(request));
  }

  /** `record`: false for a rehearsal, which must not show in `lastServed`. */
  async #served(answer: Promise<Served>, record = true): Promise<Served> {
    try {
      const served = await answer;
      if (record) this.#lastServed = { servedAt: served.servedAt, handled: served.handled, latency: served.latency };
      this.#dispatch(served.events);
      return served;
    } catch (error) {
      const events = error instanceof Refused ? error.events : eventsOf.get(error as object);
      if (events) this.#dispatch(events);
      throw error;
    }
  }

  /**
   * Checks the bytes against this host's policy, compiles them here, and has the guest validate
   * and instantiate them (no effect yet). The guest gets the module compiled from a copy of exactly
   * the bytes that passed.
   * @throws HotpatchError E_PATCH_REJECTED (with every problem), E_TIMEOUT, E_CLOSED, E_GUEST_EXITED
   */
  async load(bytes: Uint8Array, options: LoadOptions = {}): Promise<LoadResult> {
    const start = performance.now();
    let verified: VerifiedPatch;
    try {
      verified = await verifyPatch(bytes, this.#policy);
    } catch (error) {
      // As the in-thread guest does for a patch its policy refuses.
      if (error instanceof HotpatchError) this.emit('rejected', { duration: performance.now() - start, error });
      throw error;
    }
    return this.#load(verified, options, start);
  }

  async #load(patch: VerifiedPatch, options: LoadOptions, start: number): Promise<LoadResult> {
    if (!verifiedUnder(patch, this.#policy)) return this.load(patch.bytes, options);
    const served = await this.#serve({ op: 'load', bytes: patch.bytes, module: patch.module, ...(options.force ? { force: true } : {}) });
    const { handle, ...loaded } = served.result as LoadResult & { handle: number };
    this.#handles.set(loaded.id, handle);
    await this.#warm(loaded.id);
    return { ...loaded, duration: performance.now() - start };
  }

  /**
   * The first fast request a running guest serves is its slowest by far (measured: the host waited
   * 0.5–1.1 ms for the first acknowledgement, 0.1–0.3 ms for the second, 12–34 µs warm): V8 compiles
   * lazily, so the code of the round trip is cold on both threads, and so is the way in (the first
   * interrupt, the first safepoint turn). V8 also flushes the bytecode of code that has not run for
   * a few major GCs, so what an earlier load warmed may be cold again. So each time a patch is
   * loaded into a running guest (32 rounds the first time, 4 later), rehearsed applies and reverts
   * of it take that cost here: every line a real one runs, on both threads, except that the guest's
   * engine rehearses on a private patch (`Guest.warm`) and this host's events go to a private
   * target. Nothing changes, nothing is heard, and `lastServed` is not touched. A rehearsal that fails because the worker died or
   * stopped answering changes nothing: the next request meets the same fault and reports it.
   */
  async #warm(id: string): Promise<void> {
    if (this.#channel.state !== GuestState.running) return;
    const rounds = this.#warmRounds;
    this.#warmRounds = REWARM_ROUNDS;
    try {
      for (let i = 0; i < rounds; i++) {
        await this.#rehearse(() => this.apply(id));
        await this.#rehearse(() => this.revert(id));
      }
    } catch (error) {
      // A worker that died or stopped answering is reported by whatever the host asks next;
      // anything else is a bug of ours and must not pass silently.
      if (!(error instanceof HotpatchError) || !['E_GUEST_EXITED', 'E_CLOSED', 'E_TIMEOUT'].includes(error.code)) throw error;
    }
  }

  /**
   * Calls `apply` or `revert` as a rehearsal: the flag is read by the call's first, synchronous
   * lines, so no other call can see it.
   */
  #rehearse(call: () => Promise<CommitResult>): Promise<CommitResult> {
    this.#rehearsing = true;
    try {
      return call();
    } finally {
      this.#rehearsing = false;
    }
  }

  /**
   * Forward attach in the guest's thread; resolves when the guest acknowledged. On a quiescent
   * baseline a busy guest applies at the first safepoint where no target runs, waiting up to
   * `quiesceTimeout` ms (default 2000); `whileActive` skips the wait. `probe` (the name of a guest
   * export taking no arguments) and `watch` work as in `Guest.apply`, in the guest's thread: a
   * failing probe rejects with E_ROLLED_BACK, a rollback at a later trap comes as a `rolled-back`
   * event (the trap itself still ends the export it happened in).
   * @throws HotpatchError as `Guest.apply`, E_QUIESCENCE_TIMEOUT (nothing changed), E_TIMEOUT, E_CLOSED, E_GUEST_EXITED
   */
  async apply(id: string, options: CommitOptions & { readonly quiesceTimeout?: number } = {}): Promise<CommitResult> {
    const start = performance.now();
    const rehearse = this.#rehearsing;
    const { quiesceTimeout, ...remote } = options;
    // Health checks go by message: the control block carries only the switch. A rehearsal
    // always takes the fast path (it can never become a real apply on the port).
    if ((remote.probe === undefined && remote.watch === undefined && this.#fastPossible(id)) || rehearse) return this.#fast(FastOp.apply, id, start, options, rehearse);
    return this.#committed(id, await this.#serve({ op: 'apply', id, options: remote }), start);
  }

  /**
   * Reverse attach in the guest's thread; resolves when the guest acknowledged.
   * @throws HotpatchError as `Guest.revert`, E_TIMEOUT, E_CLOSED, E_GUEST_EXITED
   */
  async revert(id: string): Promise<CommitResult> {
    const start = performance.now();
    const rehearse = this.#rehearsing;
    if (this.#fastPossible(id) || rehearse) return this.#fast(FastOp.revert, id, start, NO_COMMIT_OPTIONS, rehearse);
    return this.#committed(id, await this.#serve({ op: 'revert', id }), start);
  }

  #committed(id: string, served: Served, start: number): CommitResult {
    return { id, state: served.result as CommitResult['state'], commit: served.commit ?? 0, duration: performance.now() - start };
  }

  /** A running guest reads fast requests at its safepoints; an idle one only hears the port. */
  #fastPossible(id: string): boolean {
    return this.#handles.has(id) && this.#channel.state === GuestState.running;
  }

  async #fast(op: number, id: string, start: number, options: CommitOptions & { quiesceTimeout?: number }, rehearse = false): Promise<CommitResult> {
    const served = await this.#served(this.#channel.fast(op, this.#handles.get(id)!, { ...options, force: options.force === true, rehearse }), !rehearse);
    const type = op === FastOp.apply ? 'applied' : 'reverted';
    // The guest's own event for the switch is not sent (nothing crosses on the fast path): made here from the same figures.
    const init = { patch: id, duration: served.handled, commit: served.commit! };
    if (rehearse) this.quietly(() => this.emit(type, init));
    else this.emit(type, init);
    return { id, state: type, commit: served.commit!, duration: performance.now() - start };
  }

  /**
   * Forgets a patch that is not applied.
   * @throws HotpatchError E_UNKNOWN_PATCH, E_ALREADY_APPLIED, E_TIMEOUT, E_CLOSED, E_GUEST_EXITED
   */
  async unload(id: string): Promise<void> {
    await this.#serve({ op: 'unload', id });
    this.#handles.delete(id);
  }

  /**
   * The guest's patch level, as `Guest.status()` reports it.
   * @throws HotpatchError E_TIMEOUT, E_CLOSED, E_GUEST_EXITED
   */
  async status(): Promise<GuestStatus> {
    return (await this.#serve({ op: 'status' })).result as GuestStatus;
  }

  /**
   * Calls an export in the guest's thread (at a safepoint or interrupt, if it is busy) and returns its result.
   * @throws HotpatchError E_UNKNOWN_FUNCTION, E_TIMEOUT, E_CLOSED, E_GUEST_EXITED; a trap rejects with the guest's error
   */
  async call(name: string, ...args: unknown[]): Promise<unknown> {
    return (await this.#serve({ op: 'call', name, args })).result;
  }

  /**
   * Calls an export of a loaded patch in the guest's thread (its own state: counters, flags).
   * @throws HotpatchError E_UNKNOWN_FUNCTION, E_TIMEOUT, E_CLOSED, E_GUEST_EXITED
   */
  async callPatch(id: string, name: string, ...args: unknown[]): Promise<unknown> {
    return (await this.#serve({ op: 'callPatch', id, name, args })).result;
  }

  /** Stops the worker: pending and later requests reject with E_CLOSED at once. Closing twice is harmless. */
  async close(): Promise<void> {
    this.#channel.end(new HotpatchError('E_CLOSED', 'this worker guest is closed'));
    this.#interrupter?.close();
    this.#port.close();
    await this.worker.terminate();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The worker's first word: `ready`, or why it could not start. */
async function firstNotice(worker: GuestThread): Promise<Notice> {
  const listeners: [string, Parameters<GuestThread['off']>[1]][] = [];
  try {
    return await new Promise<Notice>((resolve, reject) => {
      listeners.push(['message', resolve], ['error', reject], ['exit', (code: number) => reject(new Error(`worker exited with code ${code} before it was ready`))]);
      for (const [event, listener] of listeners) worker.once(event, listener);
    });
  } catch (cause) {
    throw new HotpatchError('E_INSTANTIATE_FAILED', `the worker guest did not start: ${(cause as Error).message}`, { cause });
  } finally {
    // Only ours: removeAllListeners would also drop Node's own, and messages would stall until exit.
    for (const [event, listener] of listeners) worker.off(event, listener);
  }
}

/** Waits until the guest's export runs (its state leaves idle), the worker exits, or `timeout` ms pass. */
async function untilRunning(ctrl: Int32Array, worker: GuestThread, timeout: number): Promise<void> {
  const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> | string } }).waitAsync;
  const waited = waitAsync(ctrl, Control.state, GuestState.idle, timeout);
  if (!waited.async) return;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  await Promise.race([waited.value, exited]);
}

/** Events typed by name, as the DOM types `HTMLElement`'s: no caller casts an `Event`. */
export interface WorkerGuest {
  addEventListener<K extends keyof WorkerGuestEventMap>(type: K, listener: (event: WorkerGuestEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof WorkerGuestEventMap>(type: K, listener: (event: WorkerGuestEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
