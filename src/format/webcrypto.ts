import { HotpatchError } from '../errors.js';

/**
 * WebCrypto's `crypto.subtle`, which the engine hashes baselines and verifies signatures with.
 * Browsers withhold it outside a secure context (a page served over plain http from anything but
 * localhost), where a bare access fails with an untyped TypeError far from the cause.
 * @throws HotpatchError E_NO_WEBCRYPTO when the platform has no `crypto.subtle`
 */
export function subtleCrypto(purpose: string): SubtleCrypto {
  const subtle = (globalThis.crypto as Crypto | undefined)?.subtle;
  if (subtle === undefined) {
    throw new HotpatchError(
      'E_NO_WEBCRYPTO',
      `WebCrypto (crypto.subtle) is not available, and it is needed ${purpose}: browsers provide it only in secure contexts, so serve the page over https or from localhost`,
    );
  }
  return subtle;
}
