// Runs bench/*.bench.ts suites (every one, or those whose file name contains a word given) and
// prints each suite's table. Files change only when asked:
//   npm run bench [-- <suite> ...]             run and print; nothing written
//   npm run bench -- --write [<suite> ...]     also rewrite bench/results/<suite>.json and .svg, and RESULTS.md
//   npm run bench -- --charts                  run nothing: redraw every chart and RESULTS.md from the recorded results
// Progress goes to stderr (a bar on a terminal, plain lines otherwise); tables go to stdout.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { renderChart } from './_charts.js';
import { markdown, type Suite } from './_harness.js';
import { progressFor, reportProgressTo } from './_progress.js';

type Recorded = Suite & { machine: string; date?: string };

const dir = new URL('.', import.meta.url);
const results = new URL('results/', dir);

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run bench -- [--write | --save] [<suite> ...]\n       npm run bench -- --charts\n`);
  process.exit(2);
}

function options(): { write: boolean; charts: boolean; wanted: string[] } {
  try {
    const { values, positionals } = parseArgs({ options: { write: { type: 'boolean' }, save: { type: 'boolean' }, charts: { type: 'boolean' } }, allowPositionals: true, strict: true });
    if (values.charts && positionals.length > 0) usage('--charts redraws from every recorded result: it takes no suite names');
    return { write: Boolean(values.write || values.save), charts: Boolean(values.charts), wanted: positionals };
  } catch (error) {
    return usage((error as Error).message);
  }
}

function suiteFiles(wanted: readonly string[]): string[] {
  const all = readdirSync(dir)
    .filter((f) => f.endsWith('.bench.ts'))
    .sort();
  const unknown = wanted.filter((w) => !all.some((f) => f.includes(w)));
  if (unknown.length > 0) usage(`no suite matches ${unknown.map((w) => `"${w}"`).join(', ')}; suites: ${all.map((f) => f.replace('.bench.ts', '')).join(', ')}`);
  return all.filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)));
}

/** Every recorded suite, by result file name without `.json`. */
function recorded(): [string, Recorded][] {
  return readdirSync(results)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [f.replace('.json', ''), JSON.parse(readFileSync(new URL(f, results), 'utf8')) as Recorded]);
}

/** RESULTS.md (every suite's latest results, so re-running one suite keeps the others) and the charts it shows. */
async function writeReport(only?: ReadonlySet<string>): Promise<void> {
  const sections: string[] = [];
  for (const [name, { machine: on, ...suite }] of recorded()) {
    if (!only || only.has(name)) writeFileSync(new URL(`${name}.svg`, results), await renderChart(suite));
    sections.push(`${markdown(suite)}\n![${suite.name}](${name}.svg)\n\n_${on}${suite.date ? `, ${suite.date}` : ''}_\n`);
  }
  writeFileSync(
    new URL('RESULTS.md', results),
    `# Benchmark results\n\nWritten by \`npm run bench -- --write\`. Medians over rounds; ratios are measured side by side in the same run. Charts: \`npm run bench -- --charts\` redraws them from these results.\n\n${sections.join('\n')}`,
  );
}

const { write, charts, wanted } = options();
if (charts) {
  await writeReport();
  process.stderr.write(`redrew ${recorded().length} charts and RESULTS.md in bench/results\n`);
} else {
  const files = suiteFiles(wanted);
  const progress = progressFor(process.stderr);
  reportProgressTo(progress);
  const machine = `${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}, Node ${process.version}, V8 ${process.versions.v8}`;
  const ran = new Set<string>();
  for (const [i, file] of files.entries()) {
    progress.suite(file, i + 1, files.length);
    const started = performance.now();
    const mod = (await import(new URL(file, dir).href)) as { default: () => Promise<Suite> };
    const suite = await mod.default();
    progress.done((performance.now() - started) / 1000);
    const name = file.replace('.bench.ts', '');
    if (write) writeFileSync(new URL(`${name}.json`, results), `${JSON.stringify({ machine, date: new Date().toISOString().slice(0, 10), ...suite }, null, 2)}\n`);
    ran.add(name);
    process.stdout.write(`\n${markdown(suite)}`);
  }
  if (write) await writeReport(ran);
  else process.stderr.write('\nprinted only: `npm run bench -- --write …` records these results in bench/results\n');
}
