/**
 * The worker thread a guest runs in: a `Worker` whose `terminate()` is never lost.
 *
 * Why: V8 drops a termination that arrives while the worker runs an inspector interrupt (see
 * `interrupts.ts`). `TerminateExecution` is consumed by the first stack check inside the
 * interrupt's `Runtime.evaluate`; that evaluate is not the bottom API call (the guest's export is
 * below it), so V8 only schedules the termination exception, and the interrupt handler returns to
 * the guest's Wasm, which never makes the API call that would promote it. The guest keeps running
 * and `terminate()`'s promise never settles: measured, 3 terminations in 20 right after a request
 * served by an interrupt. A termination requested at any other moment is not lost, so asking again
 * until the thread has exited is enough.
 */
import { Worker } from 'node:worker_threads';

/** How often a termination is asked again until the thread has exited, in ms. */
const TERMINATE_RETRY_MS = 20;

/** A `Worker` whose `terminate()` resolves only once the thread has exited, asking again every 20 ms until it has. */
export class GuestThread extends Worker {
  #exitCode: number | undefined;
  #terminating: Promise<number> | undefined;

  constructor(script: string | URL, options: ConstructorParameters<typeof Worker>[1]) {
    super(script, options);
    this.once('exit', (code: number) => (this.#exitCode = code));
  }

  /** The thread's exit code once it has exited, else undefined. */
  get exitCode(): number | undefined {
    return this.#exitCode;
  }

  /** Stops the thread, asking again until it has exited (a termination inside an interrupt is lost), and resolves with its exit code. */
  override terminate(): Promise<number> {
    if (this.#exitCode !== undefined) return Promise.resolve(this.#exitCode);
    if (this.#terminating) return this.#terminating;
    // Not events.once: it rejects on 'error', and a thread that failed still exits.
    const exited = new Promise<number>((resolve) => this.once('exit', resolve));
    const ask = (): void => void super.terminate();
    const again = setInterval(ask, TERMINATE_RETRY_MS);
    ask();
    this.#terminating = exited.finally(() => clearInterval(again));
    return this.#terminating;
  }
}
