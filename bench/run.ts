// Runs every bench/*.bench.ts suite (or those named on the command line) and writes
// bench/results/<suite>.json and bench/results/RESULTS.md. Run: npm run bench [-- name ...]
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { markdown, type Suite } from './_harness.js';

const dir = new URL('.', import.meta.url);
const wanted = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

const machine = `${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}, Node ${process.version}, V8 ${process.versions.v8}`;
for (const file of files) {
  process.stderr.write(`running ${file}…\n`);
  const mod = (await import(new URL(file, dir).href)) as { default: () => Promise<Suite> };
  const suite = await mod.default();
  const date = new Date().toISOString().slice(0, 10);
  writeFileSync(new URL(`results/${file.replace('.bench.ts', '.json')}`, dir), `${JSON.stringify({ machine, date, ...suite }, null, 2)}\n`);
  process.stdout.write(`\n${markdown(suite)}`);
}

// RESULTS.md: every suite's latest results, so re-running one suite keeps the others.
const sections = readdirSync(new URL('results/', dir))
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => {
    const { machine: on, ...suite } = JSON.parse(readFileSync(new URL(`results/${f}`, dir), 'utf8')) as Suite & { machine: string; date?: string };
    return `${markdown(suite)}\n_${on}${suite.date ? `, ${suite.date}` : ''}_\n`;
  });
writeFileSync(
  new URL('results/RESULTS.md', dir),
  `# Benchmark results\n\nWritten by \`npm run bench\`. Medians over rounds; ratios are measured side by side in the same run.\n\n${sections.join('\n')}`,
);
