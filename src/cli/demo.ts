import { defineCommand } from 'citty';
import { runDemo } from '../demo/live.js';
import { emit, guard } from './_io.js';

export default defineCommand({
  meta: {
    name: 'demo',
    description: 'Live demo: a guest serving requests in a worker, never returning (some requests are exploits), is patched, unpatched and patched again.\nExample: wasm-hotpatch demo --seconds 5',
  },
  args: {
    seconds: { type: 'string', description: 'how long to run (default 9)' },
    json: { type: 'boolean', description: 'print only the summary, as JSON' },
  },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const seconds = args.seconds === undefined ? 9 : Number(args.seconds);
      if (!(seconds > 0 && seconds <= 600)) throw new Error(`--seconds must be a number of seconds up to 600, not ${args.seconds}`);
      const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;
      const summary = await runDemo({ duration: seconds * 1000, ...(args.json ? { out: quiet } : {}) });
      if (args.json) emit(true, summary, () => '');
      const ok = summary.dropped === 0 && summary.exploitsSucceeded.patched === 0 && summary.bankTotalKept && summary.ranUntilStopped;
      return ok ? 0 : 2;
    });
  },
});
