import { defineCommand } from 'citty';
import { controlRequest } from '../runtime/index.js';
import { endpointArgs, tokenFrom } from './_endpoint.js';
import { emit, guard, paint, readInput } from './_io.js';

const token = (args: { 'token-file'?: string }) => {
  const t = tokenFrom(args);
  return t === undefined ? {} : { token: t };
};

export const apply = defineCommand({
  meta: { name: 'apply', description: 'Load and apply a patch in a running host.\nExample: wasm-hotpatch apply fix.patch.wasm --to unix:/tmp/app.sock' },
  args: { patch: { type: 'positional', description: 'the patch', required: true }, ...endpointArgs },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const loaded = (await controlRequest(args.to, 'POST', '/patches', { body: readInput(args.patch), ...token(args) })) as { id: string };
      const applied = (await controlRequest(args.to, 'POST', `/patches/${encodeURIComponent(loaded.id)}/apply`, token(args))) as { id: string; commitMilliseconds: number };
      emit(Boolean(args.json), applied, () => `${paint.ok('applied')} "${applied.id}" (slots written in ${(applied.commitMilliseconds * 1000).toFixed(1)} µs)`);
    });
  },
});

export const revert = defineCommand({
  meta: { name: 'revert', description: 'Revert a patch in a running host.\nExample: wasm-hotpatch revert fix-1 --to unix:/tmp/app.sock' },
  args: { id: { type: 'positional', description: 'the patch id', required: true }, ...endpointArgs },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const reverted = (await controlRequest(args.to, 'POST', `/patches/${encodeURIComponent(args.id)}/revert`, token(args))) as { id: string };
      emit(Boolean(args.json), reverted, () => `${paint.ok('reverted')} "${reverted.id}"`);
    });
  },
});

export const status = defineCommand({
  meta: { name: 'status', description: 'Show the patch level of a running host.\nExample: wasm-hotpatch status --to unix:/tmp/app.sock --json' },
  args: { ...endpointArgs },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const s = (await controlRequest(args.to, 'GET', '/status', token(args))) as { baseline: string; patches: { id: string; state: string; sequence: number }[]; functions: { function: string; patch: string }[] };
      emit(Boolean(args.json), s, () =>
        [
          `${paint.bold('baseline')} ${s.baseline}`,
          ...s.patches.map((p) => `  ${p.id.padEnd(24)} sequence ${p.sequence}  ${p.state}`),
          ...s.functions.map((f) => `  ${f.function} ← ${f.patch}`),
        ].join('\n'),
      );
    });
  },
});
