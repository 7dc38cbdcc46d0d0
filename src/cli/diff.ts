import { diffBuilds } from '../build/diff.js';
import { HotpatchError } from '../errors.js';
import { defineCommand } from './_command.js';
import { EXIT, emit, paint, readInput, writeOutput } from './_io.js';

export default defineCommand({
  name: 'diff',
  summary: 'A patch from two builds, or why it needs a new baseline',
  description: 'Build a patch from two builds of the same program, or say exactly why the change needs a new baseline (exit 3).',
  examples: ['wasm-hotpatch diff app.wasm app-fixed.wasm --baseline app.baseline.wasm -o fix.patch.wasm --id fix-1'],
  args: {
    old: { type: 'positional', description: 'the build the baseline was prepared from', required: true },
    new: { type: 'positional', description: 'the fixed build (same toolchain and flags)', required: true },
    baseline: { type: 'string', value: 'file', description: 'the baseline prepared from the old build', required: true },
    output: { type: 'string', alias: 'o', value: 'file', description: 'where to write the patch', required: true },
    id: { type: 'string', value: 'id', description: 'patch id (default: the output file name)' },
    sequence: { type: 'string', value: 'n', description: 'sequence number (default 1)' },
    cumulative: { type: 'boolean', description: 'the patch replaces every earlier patch of the baseline' },
    description: { type: 'string', value: 'text', description: 'human description (default: the changed functions)' },
    'carry-line-numbers': { type: 'boolean', description: 'carry functions and data that differ only in line numbers (default: leave them out and list them)' },
    'allow-layout-change': { type: 'boolean', description: 'carry functions whose struct field offsets changed (LAYOUT_CHANGED); only if no object of the old layout can exist' },
  },
  async run(args) {
    const sequence = args.sequence === undefined ? 1 : Number(args.sequence);
    if (!Number.isSafeInteger(sequence) || sequence < 0) throw new HotpatchError('E_USAGE', `--sequence must be a whole number, not ${args.sequence}`);
    const id = args.id ?? args.output.replace(/^.*\//, '').replace(/(\.patch)?\.wasm$/, '');
    const result = await diffBuilds(readInput(args.old), readInput(args.new), {
      baseline: readInput(args.baseline),
      id,
      sequence,
      ...(args.cumulative ? { cumulative: true } : {}),
      ...(args.description ? { description: args.description } : {}),
      ...(args['carry-line-numbers'] ? { carryLineNumbers: true } : {}),
      ...(args['allow-layout-change'] ? { allowLayoutChange: true } : {}),
    });
    const mode = `${result.mode.statics === 'exact' ? 'exact (relocations: statics compared by symbol)' : 'heuristic (no relocations: constants told apart by where their value goes)'}, ${result.mode.names ? 'functions matched by name' : 'no name section: functions matched by structure and position'}`;
    const leftOut = result.leftOut.map((l) => `    ${paint.dim(l.item)}: ${l.message}`);
    if (!result.hotpatchable) {
      emit(args.json, { hotpatchable: false, reasons: result.reasons, mode: result.mode, leftOut: result.leftOut }, () =>
        [
          `${paint.bad('needs a new baseline')}: ${result.reasons.length} change${result.reasons.length === 1 ? '' : 's'} a patch cannot carry`,
          ...result.reasons.map((r) => `  ${r.code} ${paint.bold(r.item)}: ${r.message}`),
          `  mode     ${mode}`,
        ].join('\n'),
      );
      return EXIT.notHotpatchable;
    }
    writeOutput(args.output, result.patch.bytes);
    emit(
      args.json,
      {
        hotpatchable: true,
        output: args.output,
        changed: result.changed,
        added: result.added,
        throughCallers: result.throughCallers,
        hooks: result.hooks,
        shadow: result.shadow,
        exactStatics: result.exactStatics,
        mode: result.mode,
        leftOut: result.leftOut,
        warnings: result.warnings,
        manifest: result.patch.manifest,
      },
      () =>
        [
          `${paint.ok('patch')} "${id}" → ${args.output}`,
          `  changed  ${result.changed.join(', ')}`,
          ...(result.added.length ? [`  added    ${result.added.join(', ')}`] : []),
          ...result.throughCallers.map(
            (t) => `  through  ${t.function} (${t.changed ? 'changed' : 'calls a changed one'}; not patchable: ${t.reason}) carried as a helper; its callers ${t.callers.join(', ')} replaced`,
          ),
          ...(result.hooks.length ? [`  hooks    ${result.hooks.join(', ')}`] : []),
          ...(result.shadow.length ? [`  shadow   ${result.shadow.join(', ')} (offer the guest shadow state: its shadow option)`] : []),
          ...(result.leftOut.length
            ? [
                `  left out ${result.leftOut.length} item${result.leftOut.length === 1 ? '' : 's'} (functions, data) that differ only in line numbers${args['carry-line-numbers'] ? ' (carried, as asked)' : ''}:`,
                ...leftOut,
              ]
            : []),
          ...result.warnings.map((w) => `  ${paint.bad('confirmed')} ${w.code} ${w.item}: ${w.message}`),
          `  statics  ${result.exactStatics ? 'checked exactly (relocations present)' : paint.dim('checked by address constants (link with -Wl,--emit-relocs for an exact check)')}`,
          `  mode     ${mode}`,
        ].join('\n'),
    );
    return EXIT.ok;
  },
});
