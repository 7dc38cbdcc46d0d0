import { HotpatchError } from '../errors.js';
import { fromUtf8 } from '../format/bytes.js';
import { readInput } from './_io.js';

/** Shared arguments of the commands that talk to a running host. */
export const endpointArgs = {
  to: { type: 'string', description: 'the endpoint: a socket path (unix:<path>) or http://127.0.0.1:<port>', required: true },
  'token-file': { type: 'string', description: 'file with the bearer token (or set HOTPATCH_TOKEN)' },
  json: { type: 'boolean', description: 'print the result as JSON' },
} as const;

/** The bearer token: from --token-file, else HOTPATCH_TOKEN. */
export function tokenFrom(args: { 'token-file'?: string }): string | undefined {
  if (args['token-file']) return fromUtf8(readInput(args['token-file'])).trim();
  const env = process.env.HOTPATCH_TOKEN;
  if (env !== undefined && env.trim() === '') throw new HotpatchError('E_USAGE', 'HOTPATCH_TOKEN is empty');
  return env;
}
