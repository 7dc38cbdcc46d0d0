/**
 * Interrupts: reaching a worker that is busy in Wasm through V8's own interrupt checks, so a
 * baseline needs no safepoints of its own.
 *
 * V8 already checks for interrupts at function entries and loop headers of the code it runs
 * (that is how `worker.terminate()` stops an endless loop). Node's inspector uses those checks to
 * run protocol messages in a busy isolate, and `NodeWorker.sendMessageToWorker` reaches a worker
 * from its parent: so `Runtime.evaluate` of one call to the worker's serve function runs that
 * function inside the busy guest, on its own thread, at its next interrupt check. Nothing is
 * added to the guest's code: being reachable costs it only what an attached inspector session does.
 *
 * When the check comes: optimized (TurboFan) code checks at loop headers and at the entries of
 * functions that call; a loop still running in baseline (Liftoff) code, such as a service loop
 * that never returned since it started, checks only when its tier-up budget runs out, every few
 * hundred microseconds. Such a guest is reached later, not never.
 */
import { randomUUID } from 'node:crypto';
import { Session } from 'node:inspector';
import type { Worker } from 'node:worker_threads';
import { HotpatchError } from '../errors.js';
import { INTERRUPT_KEY } from './protocol.js';

const EXPRESSION = `globalThis[Symbol.for(${JSON.stringify(INTERRUPT_KEY)})]?.()`;

/** One worker reachable by interrupt. */
export interface Interrupter {
  /** Asks the worker to run its serve function at its next interrupt check; does not wait for it (the post itself takes ~10 µs). */
  interrupt(): void;
  /** Stops reaching this worker (its inspector session ends). */
  close(): void;
}

/** This thread's one inspector session, shared by every worker it interrupts. */
let session: Session | undefined;
let users = 0;
/** Workers being started, by the name given to them, waiting for their inspector session. */
const expected = new Map<string, (sessionId: string) => void>();

function connect(): Session {
  if (session) return session;
  const s = new Session();
  try {
    s.connect();
  } catch (cause) {
    // e.g. ERR_ACCESS_DENIED under Node's permission model
    throw new HotpatchError('E_USAGE', `interrupts need Node's inspector, which is not usable here: ${(cause as Error).message}`, { cause });
  }
  s.on('NodeWorker.attachedToWorker', ({ params }) => {
    // The title is "[worker <threadId>] <name>": ours carry a name only we give.
    const name = params.workerInfo.title.replace(/^\[worker \d+\] /, '');
    const waiting = expected.get(name);
    if (waiting) {
      expected.delete(name);
      waiting(params.sessionId);
    } else s.post('NodeWorker.detach', { sessionId: params.sessionId }); // not ours: leave it alone
  });
  s.post('NodeWorker.enable', { waitForDebuggerOnStart: false });
  session = s;
  return s;
}

/**
 * A unique worker name to start a worker with, and the interrupter for it once it has started.
 * Call before `new Worker(…, { name })`; await `attached` after.
 * @throws HotpatchError E_USAGE when this Node has no usable inspector
 */
export function interruptible(): { name: string; attached: (worker: Worker, timeout: number) => Promise<Interrupter> } {
  // Builds of Node without an inspector cannot interrupt a worker.
  if (process.features.inspector !== true)
    throw new HotpatchError('E_USAGE', 'interrupts need Node built with the inspector (process.features.inspector); prepare the baseline with safepoints instead');
  const s = connect();
  users++;
  const name = `wasm-hotpatch guest ${randomUUID()}`;
  const sessionId = new Promise<string>((resolve) => expected.set(name, resolve));
  let closed = false;
  const release = (): void => {
    if (closed) return;
    closed = true;
    expected.delete(name);
    if (--users === 0) {
      session = undefined;
      s.disconnect();
    }
  };
  return {
    name,
    attached: (worker, timeout) =>
      new Promise<Interrupter>((resolve, reject) => {
        worker.once('exit', release);
        const timer = setTimeout(() => {
          release();
          reject(new HotpatchError('E_TIMEOUT', `the inspector did not attach to the worker within ${timeout} ms`));
        }, timeout).unref();
        void sessionId.then((id) => {
          clearTimeout(timer);
          let seq = 0;
          resolve({
            interrupt: () => {
              if (closed) return;
              // The answer comes back as an event nobody listens to; the guest acknowledges
              // through the control block like any other request.
              s.post('NodeWorker.sendMessageToWorker', { sessionId: id, message: `{"id":${++seq},"method":"Runtime.evaluate","params":{"expression":${JSON.stringify(EXPRESSION)},"silent":true}}` });
            },
            close: () => {
              if (!closed) s.post('NodeWorker.detach', { sessionId: id });
              release();
            },
          });
        });
      }),
  };
}
