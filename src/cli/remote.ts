import { controlRequest } from '../runtime/index.js';
import { endpointArgs, tokenFrom } from './_endpoint.js';
import { defineCommand } from './_command.js';
import { emit, paint, readInput } from './_io.js';

const token = (args: { 'token-file'?: string | undefined }) => {
  const t = tokenFrom(args);
  return t === undefined ? {} : { token: t };
};

export const apply = defineCommand({
  name: 'apply',
  summary: 'Apply a patch in a running host',
  description: 'Load and apply a patch in a running host (see serve).',
  examples: ['wasm-hotpatch apply fix.patch.wasm --to unix:/tmp/app.sock'],
  args: { patch: { type: 'positional', description: 'the patch', required: true }, ...endpointArgs },
  async run(args) {
    const loaded = (await controlRequest(args.to, 'POST', '/patches', { body: readInput(args.patch), ...token(args) })) as { id: string };
    const applied = (await controlRequest(args.to, 'POST', `/patches/${encodeURIComponent(loaded.id)}/apply`, token(args))) as { id: string; commitMilliseconds: number };
    emit(args.json, applied, () => `${paint.ok('applied')} "${applied.id}" (slots written in ${(applied.commitMilliseconds * 1000).toFixed(1)} µs)`);
  },
});

export const revert = defineCommand({
  name: 'revert',
  summary: 'Revert a patch in a running host',
  description: 'Revert a patch in a running host (see serve).',
  examples: ['wasm-hotpatch revert fix-1 --to unix:/tmp/app.sock'],
  args: { id: { type: 'positional', description: 'the patch id', required: true }, ...endpointArgs },
  async run(args) {
    const reverted = (await controlRequest(args.to, 'POST', `/patches/${encodeURIComponent(args.id)}/revert`, token(args))) as { id: string };
    emit(args.json, reverted, () => `${paint.ok('reverted')} "${reverted.id}"`);
  },
});

export const status = defineCommand({
  name: 'status',
  summary: 'Show the patch level of a running host',
  description: 'Show the patch level of a running host (see serve).',
  examples: ['wasm-hotpatch status --to unix:/tmp/app.sock --json'],
  args: { ...endpointArgs },
  async run(args) {
    const s = (await controlRequest(args.to, 'GET', '/status', token(args))) as { baseline: string; patches: { id: string; state: string; sequence: number }[]; functions: { function: string; patch: string }[] };
    emit(args.json, s, () =>
      [
        `${paint.bold('baseline')} ${s.baseline}`,
        ...s.patches.map((p) => `  ${p.id.padEnd(24)} sequence ${p.sequence}  ${p.state}`),
        ...s.functions.map((f) => `  ${f.function} ← ${f.patch}`),
      ].join('\n'),
    );
  },
});
