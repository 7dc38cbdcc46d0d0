/**
 * The worker side of `WorkerGuest`: instantiates the baseline, serves it to the host, and runs
 * the export the host asked for (which may never return: it is patched at its safepoints).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Guest, HotpatchError, type ShadowOptions } from '../engine/index.js';
import { Control, GuestState, INTERRUPT_KEY, type Notice, type ThreadPolicy, type WorkerChannel } from './protocol.js';
import { serveGuest, waitServing } from './serve.js';

/** What `WorkerGuest.start` puts in `workerData`. */
export interface WorkerInit {
  readonly hotpatch: WorkerChannel;
  readonly baseline: Uint8Array;
  /** Module URL whose default export is the guest's import object, or a function making it. */
  readonly imports?: string;
  readonly run?: { readonly export: string; readonly args?: readonly unknown[] };
  /** A shared memory the host made (threads share it), imported as `module.name`. */
  readonly memory?: { readonly module: string; readonly name: string; readonly memory: WebAssembly.Memory };
  /** Shadow state for patches, by the guest's allocator exports. */
  readonly shadow?: ShadowOptions;
  /** What the guest itself enforces of the host's policy (the host checked keys and sizes). */
  readonly policy: ThreadPolicy;
}

/** What an imports module's factory receives: how to keep a guest that blocks in an import patchable. */
export interface ImportsContext {
  /** Blocks up to `ms`, serving any patch request that arrives meanwhile. */
  waitServing(ms: number): void;
  /** The guest, once instantiated (imports run after instantiation). */
  guest(): Guest;
}

const init = workerData as WorkerInit;
const notify = (notice: Notice): void => parentPort!.postMessage(notice);
const ctrl = new Int32Array(init.hotpatch.control);

try {
  let guest: Guest | undefined;
  let server: ReturnType<typeof serveGuest> | undefined;
  const context: ImportsContext = {
    waitServing: (ms) => waitServing(server!, init.hotpatch.control, ms),
    guest: () => guest!,
  };
  let imports: Record<string, Record<string, unknown>> = {};
  if (init.imports) {
    const made = (await import(init.imports)).default as unknown;
    imports = (typeof made === 'function' ? await (made as (c: ImportsContext) => unknown)(context) : made) as typeof imports;
  }
  if (init.memory) imports = { ...imports, [init.memory.module]: { ...imports[init.memory.module], [init.memory.name]: init.memory.memory } };
  guest = await Guest.instantiate(init.baseline, imports as never, { policy: init.policy, ...(init.shadow ? { shadow: init.shadow } : {}) });
  // A watched patch may roll back at any later call, not in answer to a request: tell the host.
  server = serveGuest(guest, init.hotpatch.control, init.hotpatch.port, { onEvent: (event) => notify({ notice: 'event', event }) });
  // What the host's interrupts call (see interrupts.ts); harmless when it sends none.
  (globalThis as Record<symbol, unknown>)[Symbol.for(INTERRUPT_KEY)] = server.interrupt;
  Atomics.store(ctrl, Control.state, GuestState.idle);
  notify({ notice: 'ready', baseline: guest.manifest.id, safepoints: guest.manifest.safepoints !== undefined, manifest: guest.manifest });
  if (init.run) {
    // Let the host see "ready" before a call that may never return.
    await new Promise((resolve) => setImmediate(resolve));
    Atomics.store(ctrl, Control.state, GuestState.running);
    Atomics.notify(ctrl, Control.state);
    try {
      const fn = guest.exports[init.run.export] as (...args: unknown[]) => unknown;
      const result = fn(...(init.run.args ?? []));
      Atomics.store(ctrl, Control.state, GuestState.idle);
      notify({ notice: 'returned', result });
    } catch (error) {
      Atomics.store(ctrl, Control.state, GuestState.trapped);
      notify({ notice: 'trapped', message: (error as Error)?.message ?? String(error) });
    }
  }
} catch (error) {
  Atomics.store(ctrl, Control.state, GuestState.exited);
  notify({ notice: 'error', message: (error as Error)?.message ?? String(error), ...(error instanceof HotpatchError ? { code: error.code } : {}) });
}
