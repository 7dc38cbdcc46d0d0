import { defineCommand } from 'citty';
import { diffBuilds } from '../build/diff.js';
import { HotpatchError } from '../errors.js';
import { EXIT, emit, guard, paint, readInput, writeOutput } from './_io.js';

export default defineCommand({
  meta: {
    name: 'diff',
    description:
      'Build a patch from two builds of the same program, or say exactly why the change needs a new baseline.\nExample: wasm-hotpatch diff app.wasm app-fixed.wasm --baseline app.baseline.wasm -o fix.patch.wasm --id fix-1',
  },
  args: {
    old: { type: 'positional', description: 'the build the baseline was prepared from', required: true },
    new: { type: 'positional', description: 'the fixed build (same toolchain and flags)', required: true },
    baseline: { type: 'string', description: 'the baseline prepared from the old build', required: true },
    output: { type: 'string', alias: 'o', description: 'where to write the patch', required: true },
    id: { type: 'string', description: 'patch id (default: the output file name)' },
    sequence: { type: 'string', description: 'sequence number (default 1)' },
    cumulative: { type: 'boolean', description: 'the patch replaces every earlier patch of the baseline' },
    description: { type: 'string', description: 'human description (default: the changed functions)' },
    json: { type: 'boolean', description: 'print the result as JSON' },
  },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const sequence = args.sequence === undefined ? 1 : Number(args.sequence);
      if (!Number.isSafeInteger(sequence) || sequence < 0) throw new HotpatchError('E_USAGE', `--sequence must be a whole number, not ${args.sequence}`);
      const id = args.id ?? args.output.replace(/^.*\//, '').replace(/(\.patch)?\.wasm$/, '');
      const result = await diffBuilds(readInput(args.old), readInput(args.new), {
        baseline: readInput(args.baseline),
        id,
        sequence,
        ...(args.cumulative ? { cumulative: true } : {}),
        ...(args.description ? { description: args.description } : {}),
      });
      if (!result.hotpatchable) {
        emit(Boolean(args.json), { hotpatchable: false, reasons: result.reasons }, () =>
          [`${paint.bad('needs a new baseline')}: ${result.reasons.length} change${result.reasons.length === 1 ? '' : 's'} a patch cannot carry`, ...result.reasons.map((r) => `  ${r.code} ${paint.bold(r.item)}: ${r.message}`)].join('\n'),
        );
        return EXIT.notHotpatchable;
      }
      writeOutput(args.output, result.patch.bytes);
      emit(
        Boolean(args.json),
        { hotpatchable: true, output: args.output, changed: result.changed, added: result.added, exactStatics: result.exactStatics, manifest: result.patch.manifest },
        () =>
          [
            `${paint.ok('patch')} "${id}" → ${args.output}`,
            `  changed  ${result.changed.join(', ')}`,
            ...(result.added.length ? [`  added    ${result.added.join(', ')}`] : []),
            `  statics  ${result.exactStatics ? 'checked exactly (relocations present)' : paint.dim('checked by address constants (link with -Wl,--emit-relocs for an exact check)')}`,
          ].join('\n'),
      );
      return EXIT.ok;
    });
  },
});
