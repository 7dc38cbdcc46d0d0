import { verifySignature } from '../format/signature.js';
import { emit, paint, readInput } from './_io.js';
import { trustedKeys } from './_keys.js';
import { defineCommand } from './_command.js';

export default defineCommand({
  name: 'verify',
  summary: "Check a patch's signature against trusted keys",
  description: "Check a patch's signature against trusted public keys.",
  examples: ['wasm-hotpatch verify fix.patch.wasm --trust release.pub'],
  args: {
    input: { type: 'positional', description: 'the patch', required: true },
    trust: { type: 'string', value: 'files', description: 'trusted public key(s) (PEM), comma-separated', required: true },
  },
  async run(args) {
    const keys = await trustedKeys(args.trust);
    const id = await verifySignature(readInput(args.input), keys);
    emit(args.json, { verified: true, keyId: id }, () => `${paint.ok('verified')} ${args.input}: signed by trusted key ${id}`);
  },
});
