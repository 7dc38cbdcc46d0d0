import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { HotpatchError } from '../errors.js';
import { decodePatchManifest, encodePatchManifest, findCustomSections, PATCH_SECTION, withoutRanges } from '../format/manifest.js';
import { attachSignature, keyId, signedBytes } from '../format/signature.js';

/** A new Ed25519 key pair, in standard PEM (PKCS#8 private, SPKI public). */
export function generateKeys(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * Signs a patch with an Ed25519 private key (PEM): records the signer's key id in the manifest,
 * then appends a signature over every other byte. Re-signing replaces an earlier signature.
 * @throws HotpatchError E_MANIFEST_MISSING, E_MANIFEST_INVALID, E_BAD_SIGNATURE (not an Ed25519 key)
 */
export async function signPatch(bytes: Uint8Array, privateKeyPem: string): Promise<{ bytes: Uint8Array; keyId: string }> {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(privateKeyPem);
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`a ${privateKey.asymmetricKeyType} key`);
  } catch (cause) {
    throw new HotpatchError('E_BAD_SIGNATURE', `not an Ed25519 private key: ${(cause as Error).message}`, { cause });
  }
  const spki = new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
  const id = await keyId(spki);
  const manifest = decodePatchManifest(bytes);
  const unsigned = signedBytes(bytes);
  const bare = withoutRanges(unsigned, findCustomSections(unsigned, PATCH_SECTION));
  const section = encodePatchManifest({ ...manifest, signer: id });
  const message = new Uint8Array(bare.length + section.length);
  message.set(bare);
  message.set(section, bare.length);
  const signature = new Uint8Array(sign(null, message, privateKey));
  return { bytes: attachSignature(message, { keyId: id, signature }), keyId: id };
}
