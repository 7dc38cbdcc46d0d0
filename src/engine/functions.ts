import { HotpatchError } from '../errors.js';
import { FORMAT_VERSION } from '../format/manifest.js';
import { parseSignature } from '../format/functype.js';
import { emptyInstance, hostFunction } from './_host.js';
import type { Loader } from './loader.js';
import { Patch } from './patch.js';

/**
 * A patch made of JavaScript functions (test stubs, spies, fault injection): each wrapped in a
 * tiny module of its target's exact signature, so the guest calls it like any patch and the usual
 * stacking and revert rules hold. Built whole before anything is switched.
 * @throws HotpatchError E_USAGE, E_UNKNOWN_FUNCTION, E_AMBIGUOUS_FUNCTION, E_NOT_PATCHABLE, E_SIGNATURE_MISMATCH, E_DUPLICATE_TARGET, E_UNSUPPORTED_FEATURE
 */
export function functionPatch(loader: Loader, baseline: string, owner: object, id: string, replacements: Readonly<Record<string, Function>>, description: string): Patch {
  const targets = Object.entries(replacements).map(([name, impl]) => {
    if (typeof impl !== 'function') throw new HotpatchError('E_USAGE', `replacement for "${name}" is not a function`);
    return { name, fn: loader.patchable(name, 'replace'), impl };
  });
  for (const t of targets) {
    // The adapter has the target's exact Wasm signature; a JS function expecting more arguments
    // than the target passes is wrong (fewer is fine: JS ignores the rest).
    const params = parseSignature(t.fn.signature).params.length;
    if (t.impl.length > params) {
      throw new HotpatchError('E_SIGNATURE_MISMATCH', `replacement for "${t.name}" takes ${t.impl.length} parameters; "${t.fn.name}" has ${params}: ${t.fn.signature}`);
    }
  }
  const slots = Int32Array.from(targets, (t) => t.fn.slot);
  if (new Set(slots).size !== slots.length) throw new HotpatchError('E_DUPLICATE_TARGET', 'two replacements name the same function');
  const refs = targets.map((t) => hostFunction(t.fn.signature, t.impl));
  const manifest = {
    format: FORMAT_VERSION,
    id,
    sequence: 0,
    baseline,
    cumulative: false,
    description,
    targets: targets.map((t) => ({ function: t.name, export: t.name })),
  };
  return new Patch(manifest, emptyInstance(), targets.map((t) => t.fn.name), { slots, refs, hooks: {}, owner });
}
