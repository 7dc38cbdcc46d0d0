import { chmodSync } from 'node:fs';
import { generateKeys } from '../build/sign.js';
import { keyId } from '../format/signature.js';
import { emit, paint, writeOutput } from './_io.js';
import { createPublicKey } from 'node:crypto';
import { defineCommand } from './_command.js';

export default defineCommand({
  name: 'keygen',
  summary: 'Make an Ed25519 key pair for signing patches',
  description: 'Make an Ed25519 key pair for signing patches (PEM): <stem>.key (private, 0600) and <stem>.pub (public, for hosts).',
  examples: ['wasm-hotpatch keygen -o release'],
  args: {
    output: { type: 'string', alias: 'o', value: 'stem', description: 'file name stem: <stem>.key and <stem>.pub', required: true },
  },
  async run(args) {
    const { privateKey, publicKey } = generateKeys();
    writeOutput(`${args.output}.key`, privateKey);
    chmodSync(`${args.output}.key`, 0o600);
    writeOutput(`${args.output}.pub`, publicKey);
    const id = await keyId(new Uint8Array(createPublicKey(publicKey).export({ type: 'spki', format: 'der' })));
    emit(args.json, { keyId: id, privateKey: `${args.output}.key`, publicKey: `${args.output}.pub` }, () =>
      `${paint.ok('key')} ${id}: private ${args.output}.key (keep it secret), public ${args.output}.pub (give it to hosts)`,
    );
  },
});
