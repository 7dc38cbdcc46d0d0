import { defineCommand } from 'citty';
import { endpointRequest } from '../runtime/index.js';
import { endpointArgs, tokenFrom } from './_endpoint.js';
import type { ChangeAnswer } from '../runtime/index.js';
import { emit, EXIT, guard, paint, readInput } from './_io.js';

const token = (args: { 'token-file'?: string }) => {
  const t = tokenFrom(args);
  return t === undefined ? {} : { token: t };
};

/** The change is in but the host could not record it: say so, and exit non-zero so scripts notice. */
function notRecorded(answer: ChangeAnswer): number | undefined {
  if (answer.recorded !== false) return undefined;
  process.stderr.write(`${paint.bad('warning')} ${answer.code}: ${answer.message}\n`);
  return EXIT.error;
}

export const apply = defineCommand({
  meta: { name: 'apply', description: 'Load and apply a patch in a running host.\nExample: wasm-hotpatch apply fix.patch.wasm --to unix:/tmp/app.sock' },
  args: { patch: { type: 'positional', description: 'the patch', required: true }, ...endpointArgs },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const loaded = (await endpointRequest(args.to, 'POST', '/patches', { body: readInput(args.patch), ...token(args) })) as { id: string };
      const applied = (await endpointRequest(args.to, 'POST', `/patches/${encodeURIComponent(loaded.id)}/apply`, token(args))) as ChangeAnswer;
      emit(Boolean(args.json), applied, () => `${paint.ok('applied')} "${applied.id}" (slots written in ${((applied.commitMilliseconds ?? 0) * 1000).toFixed(1)} µs)`);
      return notRecorded(applied);
    });
  },
});

export const revert = defineCommand({
  meta: { name: 'revert', description: 'Revert a patch in a running host.\nExample: wasm-hotpatch revert fix-1 --to unix:/tmp/app.sock' },
  args: { id: { type: 'positional', description: 'the patch id', required: true }, ...endpointArgs },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const reverted = (await endpointRequest(args.to, 'POST', `/patches/${encodeURIComponent(args.id)}/revert`, token(args))) as ChangeAnswer;
      emit(Boolean(args.json), reverted, () => `${paint.ok('reverted')} "${reverted.id}"`);
      return notRecorded(reverted);
    });
  },
});

export const status = defineCommand({
  meta: { name: 'status', description: 'Show the patch level of a running host.\nExample: wasm-hotpatch status --to unix:/tmp/app.sock --json' },
  args: { ...endpointArgs },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const s = (await endpointRequest(args.to, 'GET', '/status', token(args))) as { baseline: string; patches: { id: string; state: string; sequence: number }[]; functions: { function: string; patch: string }[] };
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
