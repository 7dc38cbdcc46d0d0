import { chmodSync, existsSync } from 'node:fs';
import { HotpatchError } from '../errors.js';
import { defineCommand } from 'citty';
import { generateKeys } from '../build/sign.js';
import { keyId } from '../format/signature.js';
import { emit, guard, paint, writeOutput } from './_io.js';
import { createPublicKey } from 'node:crypto';

export default defineCommand({
  meta: { name: 'keygen', description: 'Make an Ed25519 key pair for signing patches (PEM).\nExample: wasm-hotpatch keygen -o release  # writes release.key (private, 0600) and release.pub' },
  args: {
    output: { type: 'string', alias: 'o', description: 'file name stem: <stem>.key and <stem>.pub', required: true },
    force: { type: 'boolean', description: 'overwrite existing key files' },
    json: { type: 'boolean', description: 'print the result as JSON' },
  },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const existing = [`${args.output}.key`, `${args.output}.pub`].filter((f) => existsSync(f));
      if (existing.length > 0 && !args.force) {
        throw new HotpatchError('E_EXISTS', `${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}: refusing to overwrite a key (patches signed with it would no longer verify on new hosts); pass --force to replace it`);
      }
      const { privateKey, publicKey } = generateKeys();
      writeOutput(`${args.output}.key`, privateKey);
      chmodSync(`${args.output}.key`, 0o600);
      writeOutput(`${args.output}.pub`, publicKey);
      const id = await keyId(new Uint8Array(createPublicKey(publicKey).export({ type: 'spki', format: 'der' })));
      emit(Boolean(args.json), { keyId: id, privateKey: `${args.output}.key`, publicKey: `${args.output}.pub` }, () =>
        `${paint.ok('key')} ${id}: private ${args.output}.key (keep it secret), public ${args.output}.pub (give it to hosts)`,
      );
    });
  },
});
