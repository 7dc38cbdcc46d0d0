// Runs every bench/*.bench.ts suite (or those named on the command line) and writes
// bench/results/<suite>.json and bench/results/RESULTS.md. Run: npm run bench [-- name ...]
import { readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { markdown, type Suite } from './_harness.js';

const dir = new URL('.', import.meta.url);
const wanted = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

const machine = `${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}, Node ${process.version}, V8 ${process.versions.v8}`;
const sections: string[] = [`# Benchmark results\n\n${new Date().toISOString().slice(0, 10)} on ${machine}. Medians over rounds; ratios are measured side by side in the same run.\n`];
for (const file of files) {
  process.stderr.write(`running ${file}…\n`);
  const mod = (await import(new URL(file, dir).href)) as { default: () => Promise<Suite> };
  const suite = await mod.default();
  writeFileSync(new URL(`results/${file.replace('.bench.ts', '.json')}`, dir), `${JSON.stringify({ machine, ...suite }, null, 2)}\n`);
  const md = markdown(suite);
  process.stdout.write(`\n${md}`);
  sections.push(md);
}
if (wanted.length === 0) writeFileSync(new URL('results/RESULTS.md', dir), sections.join('\n'));
