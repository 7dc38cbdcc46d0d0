import { defineCommand } from 'citty';
import { prepare } from '../prepare/prepare.js';
import { emit, guard, paint, readInput, writeOutput } from './_io.js';

export default defineCommand({
  meta: {
    name: 'prepare',
    description: 'Make a Wasm module hotpatch-ready (a baseline).\nExample: wasm-hotpatch prepare app.wasm -o app.baseline.wasm --exclude "^_"',
  },
  args: {
    input: { type: 'positional', description: 'the module to prepare', required: true },
    output: { type: 'string', alias: 'o', description: 'where to write the baseline', required: true },
    only: { type: 'string', description: 'only functions whose name or export name matches this regex become patchable' },
    exclude: { type: 'string', description: 'functions whose name or export name matches this regex stay unpatchable' },
    dispatch: { type: 'string', description: 'entry (default: direct calls, a flag check at entry) or indirect (every call through the table)' },
    json: { type: 'boolean', description: 'print the manifest summary as JSON' },
  },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const started = performance.now();
      const input = readInput(args.input);
      const baseline = await prepare(input, {
        ...(args.only ? { only: args.only } : {}),
        ...(args.exclude ? { exclude: args.exclude } : {}),
        ...(args.dispatch ? { dispatch: args.dispatch as 'entry' } : {}),
      });
      writeOutput(args.output, baseline.bytes);
      const m = baseline.manifest;
      const summary = {
        output: args.output,
        id: m.id,
        dispatch: m.dispatch,
        functions: m.functions.length,
        patchable: m.slots,
        notPatchable: m.functions.filter((f) => f.slot === undefined).map((f) => ({ name: f.name, reason: f.reason })),
        bytes: { input: input.length, output: baseline.bytes.length },
        milliseconds: Math.round(performance.now() - started),
      };
      emit(Boolean(args.json), summary, () =>
        [
          `${paint.ok('prepared')} ${args.input} → ${args.output} ${paint.dim(`(${summary.milliseconds} ms)`)}`,
          `  baseline id  ${m.id}`,
          `  dispatch     ${m.dispatch}`,
          `  patchable    ${m.slots} of ${m.functions.length} functions${summary.notPatchable.length ? paint.dim(` (${summary.notPatchable.length} not: ${[...new Set(summary.notPatchable.map((f) => f.reason))].join('; ')})`) : ''}`,
          `  size         ${input.length} → ${baseline.bytes.length} bytes`,
        ].join('\n'),
      );
    });
  },
});
