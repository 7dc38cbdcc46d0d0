import { readFileSync } from 'node:fs';
import { setImmediate as tick } from 'node:timers/promises';
import { styleText } from 'node:util';
import { buildPatch } from '../build/build.js';
import { Guest, type GuestEvent } from '../engine/index.js';
import { prepare } from '../prepare/prepare.js';
import { AccountClient, type AccountExports, files, readFile, ROLE_ADMIN, ROLE_USER } from './account-service.js';

/** Options of the live demo. */
export interface DemoOptions {
  /** Total run time in milliseconds (default 9000). */
  readonly duration?: number;
  /** Where to write; redraws in place when it is a TTY. */
  readonly out?: NodeJS.WriteStream;
}

/** What the demo measured. */
export interface DemoSummary {
  readonly served: number;
  readonly dropped: number;
  readonly exploitsTried: number;
  readonly exploitsSucceeded: { unpatched: number; patched: number };
  readonly applyLatencyUs: { p50: number; p99: number; trials: number };
  readonly stateChecksum: string;
  readonly bankTotalKept: boolean;
}

type Phase = 'unpatched' | 'patched' | 'reverted' | 're-applied';

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;

/**
 * The main job: the account service from patches/ serves a steady stream of requests, some of them
 * exploiting its role-overwrite bug; the security patch is applied while it runs, reverted, and
 * applied again. Every request gets an answer; state is checked at each switch.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const duration = options.duration ?? 9000;
  const out = options.out ?? process.stdout;
  const tty = out.isTTY === true && !process.env.NO_COLOR;
  const paint = (format: Parameters<typeof styleText>[0], text: string): string => (tty ? styleText(format, text) : text);

  const baseline = await prepare(readFile(files.service));
  const guest = await Guest.instantiate(baseline.bytes);
  const service = new AccountClient(guest.exports as unknown as AccountExports);
  service.exports.init();
  const { bytes } = await buildPatch({
    wat: readFileSync(files.patchWat, 'utf8'),
    manifest: JSON.parse(readFileSync(files.patchManifest, 'utf8')),
    baseline: baseline.bytes,
  });
  const patch = await guest.load(bytes);

  let phase: Phase = 'unpatched';
  let served = 0;
  let expected = 0;
  let tried = 0;
  const succeeded: Record<Phase, number> = { unpatched: 0, patched: 0, reverted: 0, 're-applied': 0 };
  const log: string[] = [];
  const applyTimes: number[] = [];
  let bank = service.total();
  let lastDraw = 0;
  let windowStart = performance.now();
  let windowServed = 0;
  let windowExploits = 0;
  let rate = 0;
  let exploitRate = 0;
  const started = performance.now();
  const at = (): string => `${((performance.now() - started) / 1000).toFixed(1).padStart(4)}s`;

  let lastCommit = 0;
  const onCommit = (event: Event): void => {
    lastCommit = ((event as GuestEvent).commit ?? 0) * 1000;
  };
  guest.addEventListener('applied', onCommit);
  guest.addEventListener('reverted', onCommit);
  const switchTo = (next: Phase): void => {
    const sum = service.checksum();
    const t0 = performance.now();
    if (next === 'reverted') guest.revert(patch);
    else guest.apply(patch);
    const us = (performance.now() - t0) * 1000;
    if (next !== 'reverted') applyTimes.push(us);
    const intact = service.checksum() === sum;
    phase = next;
    log.push(
      `${at()}  ${next === 'reverted' ? paint('yellow', 'reverted') : paint('green', 'applied ')} "${patch.id}": slots written in ${lastCommit.toFixed(2)} µs (whole call ${us.toFixed(1)} µs) — state ${sum} ${intact ? paint('green', 'intact') : paint('red', 'CHANGED')}`,
    );
  };

  const draw = (final = false): void => {
    const now = performance.now();
    if (now - windowStart >= 500 || final) {
      const secs = (now - windowStart) / 1000;
      rate = windowServed / secs;
      exploitRate = windowExploits / secs;
      windowStart = now;
      windowServed = 0;
      windowExploits = 0;
    }
    const status = phase === 'patched' || phase === 're-applied' ? paint('green', 'PATCHED  ') : paint('red', 'VULNERABLE');
    const lines = [
      `${paint('bold', 'wasm-hotpatch live demo')}  account service (C → wasm32), security patch ${patch.id}`,
      `  guest        ${status}  ${at()}`,
      `  requests/s   ${Math.round(rate).toLocaleString('en-US').padStart(10)}   served ${served.toLocaleString('en-US')}, dropped ${served - expected}`,
      `  exploits/s   ${(exploitRate > 0 ? paint('red', exploitRate.toFixed(0)) : paint('green', '0')).padStart(10)}   tried ${tried}, escalations: unpatched ${succeeded.unpatched + succeeded.reverted}, patched ${succeeded.patched + succeeded['re-applied']}`,
      `  state        bank total ${bank} (kept by every request), accounts ${service.checksum()}`,
      ...log.map((l) => `  ${l}`),
    ];
    if (tty) {
      if (lastDraw > 0) out.write(`\x1b[${lastDraw}F\x1b[J`);
      out.write(`${lines.join('\n')}\n`);
      lastDraw = lines.length;
      return;
    }
    // Plain output: each event once, and the counters once a second.
    for (; printed < log.length; printed++) out.write(`${log[printed]}\n`);
    if (final || now - lastPlain >= 1000) {
      out.write(`${at()}  ${phase.padEnd(10)} ${Math.round(rate)} requests/s, ${exploitRate.toFixed(0)} escalations/s, served ${served}, dropped ${served - expected}\n`);
      lastPlain = now;
    }
  };
  let printed = 0;
  let lastPlain = 0;

  const schedule: [number, Phase][] = [
    [0.25, 'patched'],
    [0.5, 'reverted'],
    [0.7, 're-applied'],
  ];
  let n = 0;
  let nextDraw = 0;
  while (performance.now() - started < duration) {
    const elapsed = (performance.now() - started) / duration;
    while (schedule.length > 0 && elapsed >= schedule[0]![0]) switchTo(schedule.shift()![1]);
    // A batch of traffic: ordinary requests, and one attacker in every 200.
    for (let i = 0; i < 2000; i++, n++) {
      expected++;
      if (n % 200 === 199) {
        const id = 1 + ((n / 200) % 63);
        tried++;
        if (service.exploit(id)) {
          succeeded[phase]++;
          windowExploits++;
          service.exports.set_role(id, ROLE_USER); // the intrusion monitor demotes the account at once
        }
        served++;
        continue;
      }
      // ordinary(n) deposits 10 when n % 4 == 0 and withdraws 7 when n % 4 == 1; 0 means it went through.
      const delta = n % 4 === 0 ? 10 : n % 4 === 1 ? -7 : 0;
      if (service.ordinary(n) === 0) bank += delta;
      served++;
    }
    windowServed += 2000;
    if (performance.now() >= nextDraw) {
      draw();
      nextDraw = performance.now() + 100;
    }
    await tick(); // let the event loop breathe: the guest runs in slices, like a service between requests
  }

  // Apply latency over many trials, while the guest holds all its state.
  for (let i = 0; i < 1000; i++) {
    guest.revert(patch);
    const t0 = performance.now();
    guest.apply(patch);
    applyTimes.push((performance.now() - t0) * 1000);
  }
  const sorted = [...applyTimes].sort((a, b) => a - b);
  const bankTotalKept = service.total() === bank;
  const summary: DemoSummary = {
    served,
    dropped: expected - served,
    exploitsTried: tried,
    exploitsSucceeded: { unpatched: succeeded.unpatched + succeeded.reverted, patched: succeeded.patched + succeeded['re-applied'] },
    applyLatencyUs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), trials: sorted.length },
    stateChecksum: service.checksum(),
    bankTotalKept,
  };
  draw(true);
  const role = (id: number) => service.exports.role(id);
  out.write(
    [
      '',
      paint('bold', 'summary'),
      `  requests served    ${summary.served.toLocaleString('en-US')}, dropped: ${summary.dropped}`,
      `  escalations        ${summary.exploitsSucceeded.unpatched} while vulnerable, ${summary.exploitsSucceeded.patched} while patched (of ${tried} attempts)`,
      `  apply latency      p50 ${summary.applyLatencyUs.p50.toFixed(2)} µs, p99 ${summary.applyLatencyUs.p99.toFixed(2)} µs (${summary.applyLatencyUs.trials} trials)`,
      `  state checksum     ${summary.stateChecksum}; bank total ${bankTotalKept ? 'kept' : 'LOST'}; admin is still account 0: ${role(0) === ROLE_ADMIN}`,
      '',
    ].join('\n'),
  );
  return summary;
}
