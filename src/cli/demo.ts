import { runDemo } from '../demo/live.js';
import { HotpatchError } from '../errors.js';
import { defineCommand } from './_command.js';
import { emit } from './_io.js';

export default defineCommand({
  name: 'demo',
  summary: 'The live demo: a busy guest patched while it runs',
  description:
    'Live demo: a guest serving requests in a worker, never returning (some requests are exploits), is patched, unpatched and patched again. In a terminal it redraws a live panel; piped, it prints plain lines; with --json, only the summary.',
  examples: ['wasm-hotpatch demo --seconds 5'],
  args: {
    seconds: { type: 'string', value: 'n', description: 'how long to run (default 9)' },
  },
  async run(args) {
    const seconds = args.seconds === undefined ? 9 : Number(args.seconds);
    if (!(seconds > 0 && seconds <= 600)) throw new HotpatchError('E_USAGE', `--seconds must be a number of seconds up to 600, not ${args.seconds}`);
    const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;
    const summary = await runDemo({ duration: seconds * 1000, ...(args.json ? { out: quiet } : {}) });
    if (args.json) emit(true, summary, () => '');
    const ok = summary.dropped === 0 && summary.exploitsSucceeded.patched === 0 && summary.bankTotalKept && summary.ranUntilStopped;
    return ok ? 0 : 2;
  },
});
