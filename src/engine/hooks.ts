import { HotpatchError } from '../errors.js';
import type { Baseline } from './baseline.js';
import type { Patch } from './patch.js';

/**
 * Runs a patch's pre-apply hook, livepatch's `pre_patch` callback: its answer decides whether the
 * patch goes in. A hook is patch code running in the guest with the baseline's memory and globals;
 * the engine cannot take back what it wrote, so a refusal says "nothing was switched" and what the
 * hook may have left behind (see src/README.md, "Hooks"). Answers the refusal, or undefined to go on.
 */
export function preApply(p: Patch, hook: (() => unknown) | undefined, baseline: Baseline): HotpatchError | undefined {
  if (!hook) return undefined;
  const before = baseline.memorySizes();
  let result: unknown;
  try {
    result = hook();
  } catch (cause) {
    const message = (cause as Error)?.message ?? String(cause);
    return new HotpatchError('E_HOOK_TRAPPED', `patch "${p.id}": pre-apply hook failed (${message}); ${leftBehind(before, baseline)}`, { cause });
  }
  if (typeof result === 'number' && result !== 0) {
    return new HotpatchError('E_VETOED', `patch "${p.id}": pre-apply hook refused with ${result}; ${leftBehind(before, baseline)}`);
  }
  return undefined;
}

/** What a refused apply changed: no slot, and whatever the hook itself wrote. */
function leftBehind(before: readonly number[], baseline: Baseline): string {
  const after = baseline.memorySizes();
  const grown = before.flatMap((size, i) => (after[i] !== size ? [`grew memory "${baseline.manifest.memories[i]!.export}" from ${size / 65536} to ${after[i]! / 65536} pages`] : []));
  return `no function was switched; the hook ran in the guest and what it wrote to memory or globals stays${grown.length > 0 ? ` (it ${grown.join(', ')})` : ''}`;
}

/**
 * Runs a hook whose failure does not stop the operation (post-apply, pre- and post-revert): a
 * revert must not keep a bad patch in. Answers the failure to report, or undefined.
 */
export function reportingHook(p: Patch, hook: (() => unknown) | undefined, name: string): HotpatchError | undefined {
  if (!hook) return undefined;
  try {
    hook();
    return undefined;
  } catch (cause) {
    return new HotpatchError('E_HOOK_TRAPPED', `patch "${p.id}": ${name} hook failed (${(cause as Error)?.message ?? String(cause)})`, { cause });
  }
}
