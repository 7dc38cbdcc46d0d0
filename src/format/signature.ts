import { HotpatchError } from '../errors.js';
import { fromUtf8 } from './bytes.js';
import { customSection, findCustomSections, withoutRanges } from './manifest.js';
import { subtleCrypto } from './webcrypto.js';

/** Custom section holding a patch's signature: `{ keyId, signature }` (base64), over every other byte. */
export const SIGNATURE_SECTION = 'hotpatch.signature';

/** A signature as stored. */
export interface StoredSignature {
  readonly keyId: string;
  readonly signature: Uint8Array;
}

const base64 = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes));
const unbase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/**
 * The key id of a public key: the first 16 hex digits of SHA-256 of its SPKI encoding.
 * @throws HotpatchError E_NO_WEBCRYPTO outside a secure context
 */
export async function keyId(spki: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await subtleCrypto('to compute a key id').digest('SHA-256', spki as Uint8Array<ArrayBuffer>));
  return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The bytes a signature covers: the module without its signature section(s). */
export function signedBytes(bytes: Uint8Array): Uint8Array {
  return withoutRanges(bytes, findCustomSections(bytes, SIGNATURE_SECTION));
}

/** Appends a signature section to unsigned bytes. */
export function attachSignature(unsigned: Uint8Array, signature: StoredSignature): Uint8Array {
  const section = customSection(SIGNATURE_SECTION, new TextEncoder().encode(JSON.stringify({ keyId: signature.keyId, signature: base64(signature.signature) })));
  const out = new Uint8Array(unsigned.length + section.length);
  out.set(unsigned);
  out.set(section, unsigned.length);
  return out;
}

/**
 * Reads a patch's signature, or undefined when it has none.
 * @throws HotpatchError E_BAD_SIGNATURE when the section is malformed or repeated
 */
export function readSignature(bytes: Uint8Array): StoredSignature | undefined {
  const sections = findCustomSections(bytes, SIGNATURE_SECTION);
  if (sections.length === 0) return undefined;
  if (sections.length > 1) throw new HotpatchError('E_BAD_SIGNATURE', `the patch has ${sections.length} signature sections`);
  try {
    const parsed = JSON.parse(fromUtf8(sections[0]!.payload)) as { keyId?: unknown; signature?: unknown };
    if (typeof parsed.keyId !== 'string' || typeof parsed.signature !== 'string') throw new Error('fields');
    return { keyId: parsed.keyId, signature: unbase64(parsed.signature) };
  } catch (cause) {
    throw new HotpatchError('E_BAD_SIGNATURE', 'the signature section is malformed', { cause });
  }
}

/** A trusted public key, ready to verify with (WebCrypto: runs in Node and browsers). */
export interface TrustedKey {
  readonly keyId: string;
  readonly key: CryptoKey;
}

/**
 * Imports an Ed25519 public key (SPKI DER bytes, or PEM text).
 * @throws HotpatchError E_BAD_SIGNATURE (not an Ed25519 public key), E_NO_WEBCRYPTO (outside a secure context)
 */
export async function trustKey(publicKey: Uint8Array | string): Promise<TrustedKey> {
  // Asked before the try: a platform without WebCrypto is not a bad key.
  const subtle = subtleCrypto('to import a trusted key');
  const spki = typeof publicKey === 'string' ? pemToDer(publicKey) : publicKey;
  try {
    const key = await subtle.importKey('spki', spki as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, false, ['verify']);
    return { keyId: await keyId(spki), key };
  } catch (cause) {
    throw new HotpatchError('E_BAD_SIGNATURE', 'not an Ed25519 public key (SPKI, DER or PEM)', { cause });
  }
}

function pemToDer(pem: string): Uint8Array {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
  return unbase64(body);
}

/**
 * Verifies a patch's signature against trusted keys.
 * @throws HotpatchError E_UNSIGNED, E_UNTRUSTED_KEY, E_BAD_SIGNATURE (a tampered byte anywhere), E_NO_WEBCRYPTO
 */
export async function verifySignature(bytes: Uint8Array, trusted: readonly TrustedKey[]): Promise<string> {
  const stored = readSignature(bytes);
  if (!stored) throw new HotpatchError('E_UNSIGNED', 'the patch is not signed, and this host requires signatures');
  const key = trusted.find((k) => k.keyId === stored.keyId);
  if (!key) throw new HotpatchError('E_UNTRUSTED_KEY', `the patch is signed by key ${stored.keyId}, which this host does not trust`);
  const ok = await subtleCrypto('to verify a patch signature').verify({ name: 'Ed25519' }, key.key, stored.signature as Uint8Array<ArrayBuffer>, signedBytes(bytes) as Uint8Array<ArrayBuffer>);
  if (!ok) throw new HotpatchError('E_BAD_SIGNATURE', `the signature by key ${stored.keyId} does not match the patch: it was changed after signing`);
  return stored.keyId;
}
