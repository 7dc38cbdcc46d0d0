import { HotpatchError } from '../errors.js';
import { fromUtf8 } from '../format/bytes.js';
import { readInput } from './_io.js';

/** Shared arguments of the commands that talk to a running host. */
export const endpointArgs = {
  to: { type: 'string', value: 'endpoint', description: 'the endpoint: unix:<socket path> or http://127.0.0.1:<port>', required: true },
  'token-file': { type: 'string', value: 'file', description: 'file with the bearer token (or set HOTPATCH_TOKEN)' },
} as const;

/**
 * The bearer token: from --token-file, else HOTPATCH_TOKEN.
 * @throws HotpatchError E_IO (unreadable file), E_USAGE (empty HOTPATCH_TOKEN)
 */
export function tokenFrom(args: { 'token-file'?: string | undefined }): string | undefined {
  if (args['token-file']) return fromUtf8(readInput(args['token-file'])).trim();
  const env = process.env.HOTPATCH_TOKEN;
  if (env !== undefined && env.trim() === '') throw new HotpatchError('E_USAGE', 'HOTPATCH_TOKEN is empty');
  return env;
}
