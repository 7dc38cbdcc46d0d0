import { readFileSync, writeFileSync } from 'node:fs';
import { renderChart } from './_charts.js';
for (const f of ['cross-thread', 'call-overhead', 'commit-latency']) {
  const suite = JSON.parse(readFileSync(`bench/results/${f}.json`, 'utf8'));
  writeFileSync(`/tmp/${f}.svg`, await renderChart(suite));
}
