import { defineCommand } from 'citty';
import { signPatch } from '../build/sign.js';
import { fromUtf8 } from '../format/bytes.js';
import { emit, guard, paint, readInput, writeOutput } from './_io.js';

export default defineCommand({
  meta: { name: 'sign', description: 'Sign a patch with an Ed25519 private key: the signature covers every other byte.\nExample: wasm-hotpatch sign fix.patch.wasm --key release.key' },
  args: {
    input: { type: 'positional', description: 'the patch', required: true },
    key: { type: 'string', description: 'private key (PEM)', required: true },
    output: { type: 'string', alias: 'o', description: 'where to write the signed patch (default: in place)' },
    json: { type: 'boolean', description: 'print the result as JSON' },
  },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const signed = await signPatch(readInput(args.input), fromUtf8(readInput(args.key)));
      const out = args.output ?? args.input;
      writeOutput(out, signed.bytes);
      emit(Boolean(args.json), { output: out, keyId: signed.keyId }, () => `${paint.ok('signed')} ${out} with key ${signed.keyId}`);
    });
  },
});
