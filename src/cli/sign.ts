import { signPatch } from '../build/sign.js';
import { emit, paint, readInput, writeOutput } from './_io.js';
import { readKey } from './_keys.js';
import { defineCommand } from './_command.js';

export default defineCommand({
  name: 'sign',
  summary: 'Sign a patch with a private key',
  description: 'Sign a patch with an Ed25519 private key: the signature covers every other byte.',
  examples: ['wasm-hotpatch sign fix.patch.wasm --key release.key'],
  args: {
    input: { type: 'positional', description: 'the patch', required: true },
    key: { type: 'string', value: 'file', description: 'private key (PEM)', required: true },
    output: { type: 'string', alias: 'o', value: 'file', description: 'where to write the signed patch (default: in place)' },
  },
  async run(args) {
    const signed = await signPatch(readInput(args.input), readKey(args.key, 'private', '--key'));
    const out = args.output ?? args.input;
    writeOutput(out, signed.bytes);
    emit(args.json, { output: out, keyId: signed.keyId }, () => `${paint.ok('signed')} ${out} with key ${signed.keyId}`);
  },
});
