import { HotpatchError, patchRejected } from '../errors.js';
import { decodePatchManifest } from '../format/manifest.js';
import { readSignature, type TrustedKey, verifySignature } from '../format/signature.js';

/** A host's rules for the patches it loads. */
export interface PatchPolicy {
  /** Keys whose signatures are trusted (`trustKey(pem)`); when given, a signed patch must verify against one. */
  readonly trustedKeys?: readonly TrustedKey[];
  /** Refuse unsigned patches (default: true when `trustedKeys` is given). */
  readonly requireSignature?: boolean;
  /** Refuse patches larger than this many bytes. */
  readonly maxPatchSize?: number;
  /** Whether `force` may override the anti-downgrade check (default true). */
  readonly allowForcedDowngrade?: boolean;
}

/** Whether the policy refuses unsigned patches. */
export function signaturesRequired(policy: PatchPolicy): boolean {
  return policy.requireSignature ?? policy.trustedKeys !== undefined;
}

/**
 * Refuses a patch over the policy's size limit.
 * @throws HotpatchError E_PATCH_REJECTED (E_PATCH_TOO_LARGE)
 */
export function checkSize(data: Uint8Array, policy: PatchPolicy): void {
  const max = policy.maxPatchSize;
  if (max !== undefined && data.length > max) throw patchRejected(undefined, [{ code: 'E_PATCH_TOO_LARGE', message: `${data.length} bytes is more than this host's limit of ${max}` }]);
}

/**
 * Size and signature, by a host's policy, before anything else looks at the bytes. Size and
 * the need for a signature are checked at once; only a signature to verify returns a promise,
 * so a host without keys keeps its load free of an extra turn of the event loop.
 * @throws HotpatchError E_PATCH_REJECTED (E_PATCH_TOO_LARGE, E_UNSIGNED, E_UNTRUSTED_KEY, E_BAD_SIGNATURE)
 */
export function checkTrust(data: Uint8Array, policy: PatchPolicy): Promise<void> | undefined {
  checkSize(data, policy);
  const keys = policy.trustedKeys ?? [];
  let signed: unknown;
  try {
    signed = readSignature(data);
  } catch {
    signed = 'malformed'; // verifySignature reports it
  }
  if (!signaturesRequired(policy) && (signed === undefined || keys.length === 0)) return undefined;
  return verifySigner(data, keys);
}

async function verifySigner(data: Uint8Array, keys: readonly TrustedKey[]): Promise<void> {
  try {
    const id = await verifySignature(data, keys);
    const manifest = decodePatchManifest(data);
    if (manifest.signer !== undefined && manifest.signer !== id) {
      throw new HotpatchError('E_BAD_SIGNATURE', `the manifest names signer ${manifest.signer} but key ${id} signed it`);
    }
  } catch (error) {
    if (!(error instanceof HotpatchError)) throw error;
    throw patchRejected(undefined, error.problems, error);
  }
}
