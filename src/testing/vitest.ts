/**
 * vitest helpers: the same stubs, spies and faults as `wasm-hotpatch/testing`, restored when the
 * current test finishes (pass or fail), through vitest's `onTestFinished`.
 */
import { onTestFinished } from 'vitest';
import type { Guest } from '../engine/index.js';
import { type Fault, type FaultOptions, fail, replace, type Spy, type SpyHooks, spy, type Stub } from './index.js';

/** Restores a stub, spy or fault when the current test finishes. */
export function restoreAfterTest<T extends { restore(): void }>(handle: T): T {
  onTestFinished(() => handle.restore());
  return handle;
}

/** `replace`, restored when the current test finishes. */
export function replaceInTest<F extends (...args: any[]) => any>(guest: Guest, name: string, impl: F): Stub<F> {
  return restoreAfterTest(replace(guest, name, impl));
}

/** `spy`, restored when the current test finishes. */
export function spyInTest<F extends (...args: any[]) => any>(guest: Guest, name: string, hooks?: SpyHooks): Spy<F> {
  return restoreAfterTest(spy<F>(guest, name, hooks));
}

/** `fail`, restored when the current test finishes. */
export function failInTest(guest: Guest, name: string, options: FaultOptions): Fault {
  return restoreAfterTest(fail(guest, name, options));
}
