import { HotpatchError } from '../errors.js';
import type { WorkerCommitResult, WorkerGuest } from './worker-guest.js';

/**
 * Where one thread is in a transition: not yet switched, switched, refused or unreachable
 * (`failed`), or switched and then switched back by `cancel()`.
 */
export type ThreadState = 'pending' | 'switched' | 'failed' | 'switched-back';

/** The result of a transition: every thread switched, or it was forced with some still pending. */
export interface TransitionResult {
  readonly id: string;
  readonly direction: 'apply' | 'revert';
  readonly complete: boolean;
  readonly forced: boolean;
  readonly threads: readonly ThreadState[];
  /** Milliseconds from start until the last thread switched (or the transition was forced). */
  readonly duration: number;
  /** The slowest switched thread's table writes, in ms: the longest pause a thread saw. */
  readonly commit: number;
}

/** Options of a transition. */
export interface TransitionOptions {
  readonly whileActive?: boolean;
  readonly quiesceTimeout?: number;
  readonly force?: boolean;
}

/**
 * A patch (or its removal) on its way through the threads of a guest, like livepatch's per-task
 * transition: each thread switches at its own next safepoint or interrupt check. `done` settles
 * when every thread has switched, or fails with `E_TRANSITION_TIMEOUT` naming the threads still
 * pending (or `E_TRANSITION_FAILED` naming those that refused); `force()` stops waiting
 * (stragglers switch when they can), `cancel()` reverses it.
 */
export class Transition {
  readonly id: string;
  readonly direction: 'apply' | 'revert';
  readonly threads: ThreadState[];
  /** Why each failed thread failed. */
  readonly errors: (HotpatchError | undefined)[];
  readonly done: Promise<TransitionResult>;
  readonly #workers: readonly WorkerGuest[];
  readonly #options: TransitionOptions;
  readonly #started = performance.now();
  readonly #commits: number[] = [];
  #forced = false;
  #cancelled = false;
  #resolveForced!: () => void;

  /** @internal Made by ThreadedGuest. */
  constructor(id: string, direction: 'apply' | 'revert', workers: readonly WorkerGuest[], timeout: number, options: TransitionOptions = {}) {
    this.id = id;
    this.direction = direction;
    this.#workers = workers;
    this.#options = options;
    this.threads = workers.map(() => 'pending');
    this.errors = workers.map(() => undefined);
    const answers = workers.map((w, t) => this.#forward(w).then((answer) => this.#switched(t, answer), (error: unknown) => this.#failed(t, error)));
    const forced = new Promise<void>((resolve) => (this.#resolveForced = resolve));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeout)));
    this.done = Promise.race([Promise.all(answers), forced, timedOut]).then((outcome) => {
      clearTimeout(timer);
      const result = this.result();
      if (outcome === 'timeout' && !this.#forced) {
        const pending = this.threads.flatMap((s, t) => (s === 'switched' ? [] : [`${t} (${s})`]));
        throw Object.assign(new HotpatchError('E_TRANSITION_TIMEOUT', `${direction} of "${id}" did not finish within ${timeout} ms: thread${plural(pending)} ${pending.join(', ')} not switched; force() or cancel()`), { result });
      }
      const failed = this.threads.flatMap((s, t) => (s === 'failed' ? [`${t} (${this.errors[t]?.code ?? 'failed'})`] : []));
      if (failed.length > 0) throw Object.assign(new HotpatchError('E_TRANSITION_FAILED', `${direction} of "${id}" failed in thread${plural(failed)} ${failed.join(', ')}`, { cause: this.errors.find(Boolean) }), { result });
      return result;
    });
    this.done.catch(() => {});
  }

  #forward(w: WorkerGuest): Promise<WorkerCommitResult> {
    return this.direction === 'apply' ? w.apply(this.id, this.#options) : w.revert(this.id);
  }

  #backward(w: WorkerGuest): Promise<WorkerCommitResult> {
    return this.direction === 'apply' ? w.revert(this.id) : w.apply(this.id, this.#options);
  }

  #switched(t: number, answer: WorkerCommitResult): void {
    this.threads[t] = 'switched';
    this.#commits[t] = answer.commit;
    // A thread that switches after a cancel is switched back.
    if (this.#cancelled) void this.#switchBack(t).catch(() => {});
  }

  #failed(t: number, error: unknown): void {
    this.threads[t] = 'failed';
    this.errors[t] = error instanceof HotpatchError ? error : new HotpatchError('E_IO', String(error), { cause: error });
  }

  async #switchBack(t: number): Promise<void> {
    await this.#backward(this.#workers[t]!);
    this.threads[t] = 'switched-back';
  }

  /** Where the transition is now. */
  result(): TransitionResult {
    return {
      id: this.id,
      direction: this.direction,
      complete: this.threads.every((s) => s === 'switched'),
      forced: this.#forced,
      threads: [...this.threads],
      duration: performance.now() - this.#started,
      commit: Math.max(0, ...this.#commits.filter((c) => c !== undefined)),
    };
  }

  /** Stops waiting: the transition counts as done; threads still pending switch when they can. */
  force(): void {
    this.#forced = true;
    this.#resolveForced();
  }

  /**
   * Reverse transition: threads that switched switch back (`switched-back`); threads that switch
   * later are switched back as they do. Resolves when every switched thread has switched back.
   * @throws HotpatchError E_TRANSITION_FAILED naming the threads that could not switch back (they stay `switched`)
   */
  async cancel(): Promise<TransitionResult> {
    this.#cancelled = true;
    this.force();
    const back = this.threads.map((s, t) => (s === 'switched' ? this.#switchBack(t) : undefined));
    const errors = await Promise.all(back.map((p) => p?.then(() => undefined, (error: unknown) => error)));
    const stuck = errors.flatMap((e, t) => (e === undefined ? [] : [t]));
    if (stuck.length > 0) throw new HotpatchError('E_TRANSITION_FAILED', `cancelling the ${this.direction} of "${this.id}": thread${plural(stuck)} ${stuck.join(', ')} could not switch back`, { cause: errors[stuck[0]!] });
    return this.result();
  }
}

const plural = (list: readonly unknown[]): string => (list.length === 1 ? '' : 's');
