import { checkTrust, type PatchPolicy } from '../engine/index.js';
import { HotpatchError } from '../errors.js';

/** The policy of a host that gave none: one object, so guests started with the same options share it. */
export const NO_POLICY: PatchPolicy = Object.freeze({});

/**
 * Patch bytes a host's policy accepted, with the module compiled from exactly those bytes. Only
 * `verifyPatch` makes one, and a worker guest sends nothing else: a module other than the verified
 * bytes cannot reach a guest (a `{ module }` handed in beside the bytes could, before).
 */
export interface VerifiedPatch {
  readonly bytes: Uint8Array;
  readonly module: WebAssembly.Module;
  /** The policy the bytes passed. */
  readonly policy: PatchPolicy;
}

const made = new WeakSet<VerifiedPatch>();

/**
 * Copies the bytes (the caller may change its array while this awaits), checks the copy against
 * the policy, and compiles the copy.
 * @throws HotpatchError E_PATCH_REJECTED (E_PATCH_TOO_LARGE, E_UNSIGNED, E_UNTRUSTED_KEY, E_BAD_SIGNATURE, E_INVALID_WASM)
 */
export async function verifyPatch(bytes: Uint8Array, policy: PatchPolicy): Promise<VerifiedPatch> {
  const copy = new Uint8Array(bytes); // a copy even of a Buffer, whose slice() would share memory
  await checkTrust(copy, policy);
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(copy);
  } catch (cause) {
    throw new HotpatchError('E_PATCH_REJECTED', `patch rejected: does not compile: ${(cause as Error).message}`, {
      cause,
      problems: [{ code: 'E_INVALID_WASM', message: (cause as Error).message }],
    });
  }
  const patch: VerifiedPatch = Object.freeze({ bytes: copy, module, policy });
  made.add(patch);
  return patch;
}

/** Whether `patch` was made by `verifyPatch` under this very policy. */
export function verifiedUnder(patch: VerifiedPatch, policy: PatchPolicy): boolean {
  return made.has(patch) && patch.policy === policy;
}
