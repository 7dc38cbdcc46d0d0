import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { HotpatchError } from '../errors.js';
import { prepare } from '../prepare/prepare.js';
import { parseProfile, prepareProfile } from '../prepare/profile.js';
import { defineCommand } from './_command.js';
import { emit, paint, readInput, writeOutput } from './_io.js';

export default defineCommand({
  name: 'prepare',
  description: 'Make a Wasm module hotpatch-ready (a baseline). The output must be a new file: the input is the build `diff` compares against later.',
  examples: [
    'wasm-hotpatch prepare app.wasm -o app.baseline.wasm --exclude "^_"',
    'wasm-hotpatch prepare app.wasm -o app.counting.wasm --profile',
    'wasm-hotpatch prepare app.wasm -o app.baseline.wasm --exclude-hot app.profile.json --hot-count 32',
  ],
  args: {
    input: { type: 'positional', description: 'the module to prepare', required: true },
    output: { type: 'string', alias: 'o', value: 'file', description: 'where to write the baseline (not the input)', required: true },
    only: { type: 'string', value: 'regex', description: 'only functions whose name or export name matches become patchable' },
    exclude: { type: 'string', value: 'regex', description: 'functions whose name or export name matches stay unpatchable' },
    dispatch: { type: 'string', value: 'design', description: 'entry (default: a flag check at entry) or indirect (every call through the table)' },
    safepoints: { type: 'string', value: 'kinds', description: 'insert safepoints: loops, entries or loops,entries' },
    interval: { type: 'string', value: 'n', description: 'poll every N passes (a power of two; default 1024)' },
    consistency: { type: 'string', value: 'mode', description: 'next-call (default) or quiescent (apply waits until the targets are idle)' },
    profile: { type: 'boolean', description: 'write a counting build instead of a baseline: every function counts its calls (read them with readProfile)' },
    'exclude-hot': { type: 'string', value: 'profile.json', description: 'leave the functions taking the most calls in this profile without the entry check' },
    'hot-count': { type: 'string', value: 'n', description: 'how many of the hottest functions --exclude-hot leaves out (default 32)' },
  },
  async run(args) {
    const started = performance.now();
    const input = readInput(args.input);
    refuseOverwrite(args.input, args.output);
    if (args.profile) return countingBuild(args, input, started);
    if (args['hot-count'] !== undefined && args['exclude-hot'] === undefined) throw new HotpatchError('E_USAGE', '--hot-count needs --exclude-hot <profile.json>');
    const hotCount = args['hot-count'] === undefined ? 32 : Number(args['hot-count']);
    if (!Number.isSafeInteger(hotCount) || hotCount < 0) throw new HotpatchError('E_USAGE', `--hot-count must be a whole number, not ${args['hot-count']}`);
    const baseline = await prepare(input, {
      ...(args['exclude-hot'] ? { excludeHot: { profile: parseProfile(new TextDecoder().decode(readInput(args['exclude-hot']))), count: hotCount } } : {}),
      ...(args.only ? { only: args.only } : {}),
      ...(args.exclude ? { exclude: args.exclude } : {}),
      ...(args.dispatch ? { dispatch: args.dispatch as 'entry' } : {}),
      ...(args.safepoints || args.interval ? { safepoints: safepointsArg(args.safepoints ?? 'loops', args.interval) } : {}),
      ...(args.consistency ? { consistency: args.consistency as 'next-call' } : {}),
    });
    writeOutput(args.output, baseline.bytes);
    const m = baseline.manifest;
    const summary = {
      output: args.output,
      id: m.id,
      dispatch: m.dispatch,
      consistency: m.consistency ?? 'next-call',
      safepoints: m.safepoints ?? null,
      functions: m.functions.length,
      patchable: m.slots,
      notPatchable: m.functions.filter((f) => f.slot === undefined).map((f) => ({ name: f.name, reason: f.reason })),
      excludedHot: baseline.excludedHot ?? [],
      bytes: { input: input.length, output: baseline.bytes.length },
      milliseconds: Math.round(performance.now() - started),
    };
    emit(args.json, summary, () =>
      [
        `${paint.ok('prepared')} ${args.input} → ${args.output} ${paint.dim(`(${summary.milliseconds} ms)`)}`,
        `  baseline id  ${m.id}`,
        `  dispatch     ${m.dispatch}${m.consistency === 'quiescent' ? ', quiescent' : ''}`,
        ...(m.safepoints ? [`  safepoints   ${[m.safepoints.loops && 'loops', m.safepoints.entries && 'entries'].filter(Boolean).join(', ')} every ${m.safepoints.interval}`] : []),
        `  patchable    ${m.slots} of ${m.functions.length} functions${summary.notPatchable.length ? paint.dim(` (${summary.notPatchable.length} not: ${[...new Set(summary.notPatchable.map((f) => (f.reason?.startsWith('excluded as hot') ? 'excluded as hot' : f.reason)))].join('; ')})`) : ''}`,
        ...(baseline.excludedHot
          ? [
              `  hot          ${baseline.excludedHot.length} left without the entry check, ${(100 * baseline.excludedHot.reduce((s, h) => s + h.share, 0)).toFixed(1)}% of the profile's calls${paint.dim(
                baseline.excludedHot.length
                  ? ` (${baseline.excludedHot
                      .slice(0, 5)
                      .map((h) => h.name)
                      .join(', ')}${baseline.excludedHot.length > 5 ? ', …' : ''})`
                  : '',
              )}`,
            ]
          : []),
        `  size         ${input.length} → ${baseline.bytes.length} bytes`,
      ].join('\n'),
    );
  },
});

/** `--profile`: a counting build, not a baseline; the other selection options do not apply to it. */
async function countingBuild(args: { output: string; input: string; json: boolean; [k: string]: unknown }, input: Uint8Array, started: number): Promise<void> {
  const given = ['only', 'exclude', 'dispatch', 'safepoints', 'interval', 'consistency', 'exclude-hot', 'hot-count'].filter((k) => args[k] !== undefined);
  if (given.length > 0) throw new HotpatchError('E_USAGE', `--profile writes a counting build, not a baseline: drop ${given.map((k) => `--${k}`).join(', ')}`);
  const build = await prepareProfile(input);
  writeOutput(args.output, build.bytes);
  const summary = {
    output: args.output,
    counting: true,
    source: build.source,
    functions: build.functions.length,
    bytes: { input: input.length, output: build.bytes.length },
    milliseconds: Math.round(performance.now() - started),
  };
  emit(args.json, summary, () =>
    [
      `${paint.ok('counting build')} ${args.input} → ${args.output} ${paint.dim(`(${summary.milliseconds} ms)`)}`,
      `  counts       every call of ${build.functions.length} functions; read them with readProfile (export hotpatch.calls)`,
      `  size         ${input.length} → ${build.bytes.length} bytes`,
    ].join('\n'),
  );
}

/** The input is the build `diff` needs later: writing the baseline over it would lose it. */
function refuseOverwrite(input: string, output: string): void {
  const real = (path: string): string => {
    try {
      return realpathSync(path);
    } catch {
      return resolve(path);
    }
  };
  if (real(input) === real(output)) {
    throw new HotpatchError(
      'E_USAGE',
      `-o ${output} is the input: prepare writes a new file and keeps the original build (diff needs it); choose another output, e.g. -o ${output.replace(/(\.wasm)?$/, '.baseline.wasm')}`,
    );
  }
}

/** `--safepoints loops,entries --interval 256` → prepare's safepoint options; an unknown word is refused. */
function safepointsArg(kinds: string, interval: string | undefined) {
  const words = kinds
    .split(',')
    .map((w) => w.trim())
    .filter(Boolean);
  const unknown = words.filter((w) => w !== 'loops' && w !== 'entries');
  if (unknown.length > 0 || words.length === 0) {
    throw new HotpatchError('E_BAD_OPTIONS', `--safepoints takes loops, entries or loops,entries, not "${kinds}"`);
  }
  const n = interval === undefined ? undefined : Number(interval);
  return { loops: words.includes('loops'), entries: words.includes('entries'), ...(n === undefined ? {} : { interval: n }) };
}
