/**
 * Test-harness helpers: replace, spy on and fault-inject functions inside a running guest —
 * internal ones included — and restore them. Every helper installs an ordinary patch (made of JS
 * functions, see `Guest.applyFunctions`), so it stacks with real patches like any other: restoring
 * a stub never removes a patch applied before or after it. Synchronous, so it works between
 * calls and from inside an import callback while the guest is mid-call.
 */
import type { Guest, Patch } from '../engine/index.js';

type Fn = (...args: any[]) => any;

/** A replacement in place; restore it with `restore()`, `using`, or `withPatch`. */
export interface Stub<F extends Fn = Fn> extends Disposable {
  /** The patch that carries the replacement (it shows in `guest.status()`). */
  readonly patch: Patch;
  /** The function's original implementation (patches bypassed on entry). */
  readonly original: F;
  /** Whether the replacement is still in place. */
  readonly active: boolean;
  /** Takes the replacement out (idempotent); whatever is below it runs again. */
  restore(): void;
}

class Installed<F extends Fn> implements Stub<F> {
  readonly patch: Patch;
  readonly original: F;
  readonly #guest: Guest;

  constructor(guest: Guest, patch: Patch, original: F) {
    this.#guest = guest;
    this.patch = patch;
    this.original = original;
  }

  get active(): boolean {
    return this.patch.state === 'applied';
  }

  restore(): void {
    if (this.patch.state === 'applied') this.#guest.revert(this.patch);
    if (this.#guest.patch(this.patch.id) === this.patch) this.#guest.unload(this.patch);
  }

  [Symbol.dispose](): void {
    this.restore();
  }
}

let stubs = 0;
const nextId = (kind: string, name: string): string => `${kind}:${name}#${++stubs}`;

/**
 * Replaces a guest function with a JavaScript function of the same signature (i64 as BigInt;
 * several results as an array). The replacement can call `stub.original(...)` for partial mocks.
 * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE
 */
export function replace<F extends Fn = Fn>(guest: Guest, name: string, impl: F): Stub<F> {
  const original = guest.original(name) as F;
  const patch = guest.applyFunctions({ [name]: impl }, { id: nextId('stub', name), description: `test stub for ${name}` });
  return new Installed(guest, patch, original);
}

/** One recorded call of a spied function. */
export interface Call {
  readonly args: readonly unknown[];
  /** The result, when the call returned. */
  readonly result?: unknown;
  /** What it threw (a trap is a `WebAssembly.RuntimeError`), when it did. */
  readonly error?: unknown;
}

/** Frida-style hooks around every call; `onLeave` may return a value to use instead of the result. */
export interface SpyHooks {
  onEnter?(args: readonly unknown[]): void;
  onLeave?(result: unknown, args: readonly unknown[]): unknown;
}

/** A spy: records calls while the function keeps running what it ran before. */
export interface Spy<F extends Fn = Fn> extends Stub<F> {
  readonly calls: readonly Call[];
  readonly callCount: number;
  /** Forgets recorded calls. */
  reset(): void;
}

/**
 * Records every call of a guest function — arguments, results, traps — while it keeps running
 * whatever is below the spy now (a real patch, or the original), looked up on each call.
 * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE
 */
export function spy<F extends Fn = Fn>(guest: Guest, name: string, hooks: SpyHooks = {}): Spy<F> {
  const calls: Call[] = [];
  let below: () => Function = () => guest.original(name);
  const wrapper = (...args: unknown[]): unknown => {
    hooks.onEnter?.(args);
    let result: unknown;
    try {
      result = (below() as Fn)(...args);
    } catch (error) {
      calls.push({ args, error });
      throw error;
    }
    calls.push({ args, result });
    const replaced = hooks.onLeave?.(result, args);
    return replaced === undefined ? result : replaced;
  };
  const original = guest.original(name) as F;
  const patch = guest.applyFunctions({ [name]: wrapper }, { id: nextId('spy', name), description: `spy on ${name}` });
  below = guest.implementationGetter(name, { below: patch });
  const installed = new Installed(guest, patch, original);
  return Object.defineProperties(installed, {
    calls: { value: calls },
    callCount: { get: () => calls.length },
    reset: { value: () => void calls.splice(0) },
  }) as unknown as Spy<F>;
}

/** What a fault does, and when. */
export interface FaultOptions {
  /** Trap (throw a `WebAssembly.RuntimeError`, with this message if a string). */
  readonly trap?: boolean | string;
  /** Return this instead (ignored when `trap` is set). */
  readonly returns?: unknown;
  /** Inject for this many calls (matching `when`), then run the function normally. Default: every call. */
  readonly times?: number;
  /** Inject only for calls whose arguments satisfy this. */
  readonly when?: (...args: any[]) => boolean;
}

/** A fault in place; `injected` counts the calls it changed. */
export interface Fault extends Stub {
  readonly injected: number;
}

/**
 * Makes a guest function trap, or return a given value, for the next N calls or while a predicate
 * holds; other calls run whatever is below the fault.
 * @throws HotpatchError E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE, E_USAGE
 */
export function fail(guest: Guest, name: string, options: FaultOptions): Fault {
  if (!options.trap && !('returns' in options)) throw new TypeError('fail() needs `trap` or `returns`');
  let remaining = options.times ?? Number.POSITIVE_INFINITY;
  let injected = 0;
  let below: () => Function = () => guest.original(name);
  const wrapper = (...args: unknown[]): unknown => {
    if (remaining > 0 && (options.when?.(...args) ?? true)) {
      remaining--;
      injected++;
      if (options.trap) throw new WebAssembly.RuntimeError(typeof options.trap === 'string' ? options.trap : `injected fault in ${name}`);
      return options.returns;
    }
    return (below() as Fn)(...args);
  };
  const original = guest.original(name) as Fn;
  const patch = guest.applyFunctions({ [name]: wrapper }, { id: nextId('fault', name), description: `fault injected into ${name}` });
  below = guest.implementationGetter(name, { below: patch });
  const installed = new Installed(guest, patch, original);
  return Object.defineProperty(installed, 'injected', { get: () => injected }) as unknown as Fault;
}

/**
 * Runs `body` with functions replaced (one patch, all at once), and restores them afterwards —
 * also when `body` throws or its promise rejects.
 */
export async function withPatch<T>(guest: Guest, replacements: Readonly<Record<string, Fn>>, body: () => T | Promise<T>): Promise<T> {
  const patch = guest.applyFunctions(replacements, { id: nextId('with', Object.keys(replacements).join('+')), description: 'withPatch' });
  const installed = new Installed(guest, patch, (() => undefined) as Fn);
  try {
    return await body();
  } finally {
    installed.restore();
  }
}

export {
  countCallsInWorker,
  failInWorker,
  replaceInWorker,
  type WorkerCounter,
  type WorkerFault,
  type WorkerStub,
} from './worker.js';
