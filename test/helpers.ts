import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { watToWasm } from '../src/build/wat.js';

export const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).pathname;

/** Compiles a WAT fixture from test/fixtures. */
export async function watFixture(name: string): Promise<Uint8Array> {
  return watToWasm(readFileSync(fixture(name), 'utf8'), name);
}

/** Reads a binary fixture. */
export function wasmFixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(fixture(name)));
}

/** A short digest of bytes, to compare memories. */
export function digest(bytes: ArrayBufferLike | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return createHash('sha256').update(view).digest('hex').slice(0, 16);
}

/** Calls `fn`, returning its result or the error's class and message: traps compare equal when they are the same trap. */
export function outcome(fn: () => unknown): unknown {
  try {
    const value = fn();
    return { value };
  } catch (error) {
    return { trap: `${(error as Error).constructor.name}: ${(error as Error).message}` };
  }
}
