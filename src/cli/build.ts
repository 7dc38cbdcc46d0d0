import { buildPatch } from '../build/build.js';
import { HotpatchError } from '../errors.js';
import { fromUtf8 } from '../format/bytes.js';
import { defineCommand } from './_command.js';
import { emit, paint, readInput, writeOutput } from './_io.js';

export default defineCommand({
  name: 'build',
  summary: 'Build and check a patch from WAT or Wasm and a manifest',
  description: 'Build a patch module from WAT (or Wasm) and a manifest, checked against its baseline.',
  examples: ['wasm-hotpatch build fix.wat --manifest fix.json --baseline app.baseline.wasm -o fix.patch.wasm'],
  args: {
    input: { type: 'positional', description: 'patch code: .wat text or a .wasm module', required: true },
    manifest: { type: 'string', value: 'file', description: 'patch manifest (JSON: id, sequence, description, cumulative, targets)', required: true },
    baseline: { type: 'string', value: 'file', description: 'the baseline the patch is for', required: true },
    output: { type: 'string', alias: 'o', value: 'file', description: 'where to write the patch', required: true },
    'allow-import': { type: 'string', value: 'list', description: 'comma-separated host imports (module.name) the patch may take' },
  },
  async run(args) {
    const code = readInput(args.input);
    let manifest: unknown;
    try {
      manifest = JSON.parse(fromUtf8(readInput(args.manifest)));
    } catch (cause) {
      if (cause instanceof HotpatchError) throw cause;
      throw new HotpatchError('E_MANIFEST_INVALID', `${args.manifest} is not valid JSON: ${(cause as Error).message}`, { cause });
    }
    const isWasm = code[0] === 0 && code[1] === 0x61;
    const built = await buildPatch({
      ...(isWasm ? { wasm: code } : { wat: fromUtf8(code) }),
      manifest: manifest as never,
      baseline: readInput(args.baseline),
      filename: args.input,
      ...(args['allow-import'] ? { hostImports: args['allow-import'].split(',').map((s) => s.trim()) } : {}),
    });
    writeOutput(args.output, built.bytes);
    emit(args.json, { output: args.output, manifest: built.manifest, bytes: built.bytes.length }, () =>
      [
        `${paint.ok('built')} patch "${built.manifest.id}" (sequence ${built.manifest.sequence}${built.manifest.cumulative ? ', cumulative' : ''}) → ${args.output}`,
        ...built.manifest.targets.map((t) => `  ${t.function} ← ${t.export}`),
        `  baseline ${built.manifest.baseline}`,
      ].join('\n'),
    );
  },
});
