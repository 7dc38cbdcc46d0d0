import { type PatchPolicy, type TrustedKey, trustKey } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import { fromUtf8 } from '../format/bytes.js';
import { readInput } from './_io.js';

/**
 * Reads a PEM key file for an option that needs one kind of key, so a mix-up (a private key
 * given to --trust, a public key to --key) says which key the option needs instead of failing
 * to decode it.
 * @throws HotpatchError E_IO (unreadable), E_USAGE (the other kind of key)
 */
export function readKey(path: string, kind: 'public' | 'private', option: string): string {
  const pem = fromUtf8(readInput(path));
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1];
  if (kind === 'public' && label?.includes('PRIVATE KEY')) {
    throw new HotpatchError('E_USAGE', `${path} is a private key; ${option} needs the public key (.pub; keygen writes both)`);
  }
  if (kind === 'private' && label === 'PUBLIC KEY') {
    throw new HotpatchError('E_USAGE', `${path} is a public key; ${option} needs the private key (.key; keygen writes both)`);
  }
  return pem;
}

/**
 * The trusted public keys a comma-separated `--trust` list names.
 * @throws HotpatchError E_IO, E_USAGE (a private key), E_BAD_SIGNATURE (not an Ed25519 key)
 */
export async function trustedKeys(list: string | undefined): Promise<TrustedKey[]> {
  return list ? Promise.all(list.split(',').map((path) => trustKey(readKey(path.trim(), 'public', '--trust')))) : [];
}

/**
 * A host's patch policy from `--trust` and `--allow-unsigned`: signed patches from those keys, or,
 * asked for explicitly, unsigned ones (development only).
 * @throws HotpatchError E_USAGE (neither given), and as `trustedKeys`
 */
export async function hostPolicy(args: { trust?: string | undefined; 'allow-unsigned': boolean }, command: string): Promise<PatchPolicy> {
  const trusted = await trustedKeys(args.trust);
  if (trusted.length === 0 && !args['allow-unsigned']) {
    throw new HotpatchError('E_USAGE', `${command} requires signed patches: give --trust <public key>, or --allow-unsigned for development`);
  }
  return trusted.length > 0 ? { trustedKeys: trusted } : { requireSignature: false };
}
