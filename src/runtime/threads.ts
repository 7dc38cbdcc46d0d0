import { HotpatchError } from '../errors.js';
import { type Answer, type RemotePatch, WorkerGuest, type WorkerGuestOptions } from './worker-guest.js';

/** Options of {@link ThreadedGuest.start}. */
export interface ThreadedGuestOptions extends Omit<WorkerGuestOptions, 'memory' | 'run'> {
  /** How many threads (workers), each with its own instance and table. */
  readonly threads: number;
  /** The memory the threads share: made here, given to every thread as the import `module.name`. */
  readonly memory: { readonly module: string; readonly name: string; readonly initial: number; readonly maximum: number };
  /** What each thread runs once ready; `args(thread)` gives its arguments (default: its index). */
  readonly run?: { readonly export: string; readonly args?: (thread: number) => readonly unknown[] };
}

/** Where one thread is in a transition. */
export type ThreadState = 'pending' | 'switched' | 'failed';

/** The result of a transition: every thread switched, or it was forced with some still pending. */
export interface TransitionResult {
  readonly id: string;
  readonly direction: 'apply' | 'revert';
  readonly complete: boolean;
  readonly forced: boolean;
  readonly threads: readonly ThreadState[];
  /** Milliseconds from start until the last thread switched (or the transition was forced). */
  readonly duration: number;
}

/**
 * A patch (or its removal) on its way through the threads of a guest, like livepatch's per-task
 * transition: each thread switches at its own next safepoint. `done` settles when every thread has
 * switched, or fails with `E_TRANSITION_TIMEOUT` naming the threads still pending; `force()` stops
 * waiting (stragglers switch when they next reach a safepoint), `cancel()` reverses it.
 */
export class Transition {
  readonly id: string;
  readonly direction: 'apply' | 'revert';
  readonly threads: ThreadState[];
  readonly done: Promise<TransitionResult>;
  readonly #started = performance.now();
  readonly #answers: Promise<Answer<string> | undefined>[];
  #forced = false;
  #cancelled = false;
  #resolveForced!: () => void;

  /** @internal Made by ThreadedGuest. */
  constructor(id: string, direction: 'apply' | 'revert', workers: readonly WorkerGuest[], timeout: number, options: { whileActive?: boolean; quiesceTimeout?: number } = {}) {
    this.id = id;
    this.direction = direction;
    this.threads = workers.map(() => 'pending');
    this.#answers = workers.map((w, t) =>
      (direction === 'apply' ? w.apply(id, options) : w.revert(id)).then(
        (answer) => {
          this.threads[t] = 'switched';
          // A thread that switches after a cancel is switched back.
          if (this.#cancelled && direction === 'apply') void w.revert(id).catch(() => {});
          return answer;
        },
        () => {
          this.threads[t] = 'failed';
          return undefined;
        },
      ),
    );
    const forced = new Promise<void>((resolve) => (this.#resolveForced = resolve));
    const all = Promise.all(this.#answers).then(() => undefined);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeout)));
    this.done = Promise.race([all, forced, timedOut]).then((outcome) => {
      clearTimeout(timer);
      const result = this.#result();
      if (outcome === 'timeout' && !this.#forced) {
        const pending = this.threads.flatMap((s, t) => (s === 'switched' ? [] : [`${t} (${s})`]));
        throw Object.assign(new HotpatchError('E_TRANSITION_TIMEOUT', `${direction} of "${id}" did not finish within ${timeout} ms: thread${pending.length === 1 ? '' : 's'} ${pending.join(', ')} not switched; force() or cancel()`), { result });
      }
      if (this.threads.includes('failed')) {
        throw Object.assign(new HotpatchError('E_TRANSITION_FAILED', `${direction} of "${id}" failed in thread${this.threads.filter((s) => s === 'failed').length === 1 ? '' : 's'} ${this.threads.flatMap((s, t) => (s === 'failed' ? [t] : [])).join(', ')}`), { result });
      }
      return result;
    });
    this.done.catch(() => {});
  }

  #result(): TransitionResult {
    return {
      id: this.id,
      direction: this.direction,
      complete: this.threads.every((s) => s === 'switched'),
      forced: this.#forced,
      threads: [...this.threads],
      duration: performance.now() - this.#started,
    };
  }

  /** Stops waiting: the transition counts as done; threads still pending switch at their next safepoint. */
  force(): void {
    this.#forced = true;
    this.#resolveForced();
  }

  /**
   * Reverse transition: threads that switched switch back; threads that switch later are switched
   * back as they do. Resolves when every switched thread has switched back.
   */
  async cancel(workers: readonly WorkerGuest[]): Promise<void> {
    this.#cancelled = true;
    this.force();
    const back = this.threads.map((s, t) => (s === 'switched' ? (this.direction === 'apply' ? workers[t]!.revert(this.id) : workers[t]!.apply(this.id)) : undefined));
    await Promise.all(back.map((p) => p?.catch(() => {})));
  }
}

/**
 * A guest running as several threads — one worker and one instance (so one table) each, sharing
 * one memory — as emscripten pthreads and Rust wasm threads do. Patches load in every thread;
 * applying or reverting one is a `Transition` through the threads.
 */
export class ThreadedGuest {
  readonly threads: readonly WorkerGuest[];
  readonly memory: WebAssembly.Memory;
  readonly #timeout: number;

  private constructor(threads: WorkerGuest[], memory: WebAssembly.Memory, timeout: number) {
    this.threads = threads;
    this.memory = memory;
    this.#timeout = timeout;
  }

  /**
   * Starts `threads` workers on one shared memory.
   * @throws HotpatchError E_INSTANTIATE_FAILED, E_USAGE
   */
  static async start(baseline: Uint8Array, options: ThreadedGuestOptions): Promise<ThreadedGuest> {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new HotpatchError('E_USAGE', `threads must be a whole number from 1, not ${options.threads}`);
    const { module, name, initial, maximum } = options.memory;
    const memory = new WebAssembly.Memory({ initial, maximum, shared: true });
    const { run, threads: count, memory: _memory, ...rest } = options;
    const threads = await Promise.all(
      Array.from({ length: count }, (_, t) =>
        WorkerGuest.start(baseline, {
          ...rest,
          memory: { module, name, memory },
          ...(run ? { run: { export: run.export, args: run.args?.(t) ?? [t] } } : {}),
        }),
      ),
    );
    return new ThreadedGuest(threads, memory, options.timeout ?? 10_000);
  }

  /**
   * Loads a patch into every thread (compiled once here).
   * @throws HotpatchError E_PATCH_REJECTED, as `Guest.load`
   */
  async load(bytes: Uint8Array): Promise<RemotePatch> {
    const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    const loaded = await Promise.all(this.threads.map((t) => t.load(bytes, { module })));
    const { latency: _latency, ...patch } = loaded[0]!;
    return patch;
  }

  /** Starts applying a loaded patch in every thread. */
  apply(id: string, options: { timeout?: number; whileActive?: boolean; quiesceTimeout?: number } = {}): Transition {
    const { timeout, ...rest } = options;
    return new Transition(id, 'apply', this.threads, timeout ?? this.#timeout, rest);
  }

  /** Starts reverting a patch in every thread. */
  revert(id: string, options: { timeout?: number } = {}): Transition {
    return new Transition(id, 'revert', this.threads, options.timeout ?? this.#timeout);
  }

  /** Cancels a transition: a reverse transition through the threads. */
  cancel(transition: Transition): Promise<void> {
    return transition.cancel(this.threads);
  }

  /** Which threads run which patches: each thread's `status()`. */
  async status() {
    return Promise.all(this.threads.map((t) => t.status()));
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}
