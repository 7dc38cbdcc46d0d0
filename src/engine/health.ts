import { HotpatchError } from '../errors.js';
import { patchOfTrap } from '../format/manifest.js';
import type { WatchOptions } from './contract.js';
import { hostFunction } from './_host.js';
import type { Patch } from './patch.js';

const now = (): number => globalThis.performance.now();

/** Why a health check failed: what the patch's rollback records. */
export interface Failure {
  readonly reason: string;
  readonly evidence?: string;
  readonly cause?: unknown;
}

/**
 * A probe as a function to call after the switch: the given one, or a guest export by name.
 * Resolved before the switch, so a probe that names nothing refuses the apply with nothing changed.
 * @throws HotpatchError E_USAGE when the guest exports no function of that name
 */
export function resolveProbe(probe: (() => unknown) | string, exports: WebAssembly.Exports): () => unknown {
  if (typeof probe === 'function') return probe;
  const fn = exports[probe];
  if (typeof fn !== 'function') throw new HotpatchError('E_USAGE', `probe "${probe}" is not a function the guest exports; nothing changed`);
  return fn as () => unknown;
}

/** Runs a probe: a throw (a trap), `false` or `0` is a failure. */
export function runProbe(probe: () => unknown): Failure | undefined {
  let verdict: unknown;
  try {
    verdict = probe();
  } catch (error) {
    return { reason: `the probe failed: ${(error as Error)?.message ?? String(error)}`, ...((error as Error)?.stack ? { evidence: (error as Error).stack! } : {}), cause: error };
  }
  return verdict === false || verdict === 0 ? { reason: `the probe answered ${String(verdict)}` } : undefined;
}

/**
 * Watch wrappers of a patch's replacements, built before the switch (a signature a JS wrapper
 * cannot carry, v128, refuses the apply with nothing changed). Each counts calls and traps whose
 * innermost frame is this patch's code (its module is named `hotpatch:<id>`): at the trap limit
 * `onFailure` rolls the patch back before the trap goes on; past `calls` or `window`, `onExpire`
 * ends the watch.
 * @throws HotpatchError E_UNSUPPORTED_FEATURE
 */
export function watchWrappers(p: Patch, refs: readonly Function[], signatures: readonly string[], watch: WatchOptions, onFailure: (failure: Failure) => void, onExpire: () => void): Function[] {
  const limit = watch.traps ?? 1;
  const maxCalls = watch.calls ?? Number.POSITIVE_INFINITY;
  const deadline = watch.window === undefined ? Number.POSITIVE_INFINITY : now() + watch.window;
  let calls = 0;
  let traps = 0;
  let watching = true;
  return refs.map((ref, i) => {
    const raw = ref as (...args: unknown[]) => unknown;
    return hostFunction(signatures[i]!, (...args: unknown[]) => {
      if (watching && (++calls > maxCalls || now() > deadline)) {
        watching = false;
        onExpire();
      }
      try {
        return raw(...args);
      } catch (error) {
        if (watching && p.state === 'applied' && patchOfTrap(error) === p.id && ++traps >= limit) {
          watching = false;
          const message = (error as Error)?.message ?? String(error);
          onFailure({ reason: `${traps} trap${traps === 1 ? '' : 's'} in its code: ${message}`, ...((error as Error)?.stack ? { evidence: (error as Error).stack! } : {}) });
        }
        throw error;
      }
    });
  });
}
