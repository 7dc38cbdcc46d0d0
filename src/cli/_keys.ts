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
