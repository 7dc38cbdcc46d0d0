import { BASELINE_SECTION, decodeBaselineManifest, decodePatchManifest, findCustomSections, PATCH_SECTION } from '../format/manifest.js';
import { functionType, parseModule, signatureText } from '../format/module.js';
import { emit, paint, readInput } from './_io.js';
import { defineCommand } from './_command.js';

export default defineCommand({
  name: 'inspect',
  summary: 'Show a baseline, a patch, or what prepare would do',
  description: 'Show what a file is: a baseline (id, functions, slots), a patch (manifest, targets), or a plain module (what prepare would do).',
  examples: ['wasm-hotpatch inspect app.baseline.wasm --json'],
  args: {
    input: { type: 'positional', description: 'a .wasm file', required: true },
  },
  async run(args) {
    const bytes = readInput(args.input);
    const json = args.json;
    if (findCustomSections(bytes, BASELINE_SECTION).length > 0) {
      const m = decodeBaselineManifest(bytes);
      emit(json, { kind: 'baseline', ...m }, () =>
        [
          `${paint.bold('baseline')} ${m.id}`,
          `  dispatch ${m.dispatch}, ${m.slots} patchable of ${m.functions.length} functions`,
          `  imports for patches: memory ${m.memories.map((x) => x.export).join(', ') || '-'}; tables ${m.tables.map((x) => x.export).join(', ') || '-'}; globals ${m.globals.length}`,
          ...m.functions.map((f) => `  ${f.slot === undefined ? paint.dim('   -') : String(f.slot).padStart(4)}  ${f.name} ${paint.dim(f.signature)}${f.reason ? paint.dim(`  (${f.reason})`) : ''}`),
        ].join('\n'),
      );
      return;
    }
    if (findCustomSections(bytes, PATCH_SECTION).length > 0) {
      const m = decodePatchManifest(bytes);
      emit(json, { kind: 'patch', ...m }, () =>
        [
          `${paint.bold('patch')} "${m.id}" sequence ${m.sequence}${m.cumulative ? ' (cumulative)' : ''}`,
          m.description ? `  ${m.description}` : '',
          `  for baseline ${m.baseline}`,
          ...m.targets.map((t) => `  ${t.function} ← ${t.export}`),
        ]
          .filter(Boolean)
          .join('\n'),
      );
      return;
    }
    const module = parseModule(bytes);
    const total = module.importedFunctions + module.functions.length;
    const functions = Array.from({ length: total }, (_, index) => {
      const exported = module.exports.find((e) => e.kind === 'func' && e.index === index)?.name;
      return {
        index,
        name: module.functionNames.get(index) ?? exported ?? `#${index}`,
        signature: signatureText(functionType(module, index)),
        patchable: index >= module.importedFunctions,
      };
    });
    emit(json, { kind: 'module', functions }, () =>
      [
        `${paint.bold('plain module')}: prepare would make ${module.functions.length} of ${total} functions patchable (${module.importedFunctions} are imported)`,
        ...functions.map((f) => `  ${f.patchable ? '   +' : paint.dim('   -')}  ${f.name} ${paint.dim(f.signature)}`),
      ].join('\n'),
    );
  },
});
