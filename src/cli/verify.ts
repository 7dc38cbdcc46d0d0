import { defineCommand } from 'citty';
import { fromUtf8 } from '../format/bytes.js';
import { trustKey, verifySignature } from '../format/signature.js';
import { emit, guard, paint, readInput } from './_io.js';

export default defineCommand({
  meta: { name: 'verify', description: 'Check a patch\'s signature against trusted public keys.\nExample: wasm-hotpatch verify fix.patch.wasm --trust release.pub' },
  args: {
    input: { type: 'positional', description: 'the patch', required: true },
    trust: { type: 'string', description: 'trusted public key(s) (PEM), comma-separated', required: true },
    json: { type: 'boolean', description: 'print the result as JSON' },
  },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const keys = await Promise.all(args.trust.split(',').map((path) => trustKey(fromUtf8(readInput(path.trim())))));
      const id = await verifySignature(readInput(args.input), keys);
      emit(Boolean(args.json), { verified: true, keyId: id }, () => `${paint.ok('verified')} ${args.input}: signed by trusted key ${id}`);
    });
  },
});
