import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { styleText } from 'node:util';
import { buildPatch } from '../build/build.js';
import { prepare } from '../prepare/prepare.js';
import { WorkerGuest } from '../runtime/index.js';
import { files, readFile } from './account-service.js';

/** Options of the live demo. */
export interface DemoOptions {
  /** Total run time in milliseconds (default 9000). */
  readonly duration?: number;
  /** Where to write; redraws in place when it is a TTY. */
  readonly out?: NodeJS.WritableStream & { isTTY?: boolean };
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
  /** The guest ran the whole time and returned only when asked to stop: never restarted, never trapped. */
  readonly ranUntilStopped: boolean;
}

type Phase = 'vulnerable' | 'patched';

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;

/**
 * The main job. The account service from patches/ runs in a worker, generating and handling a
 * steady stream of requests inside the guest — one in 200 an exploit of its role-overwrite bug —
 * and never returns to its host. The security patch is applied while it runs (at a safepoint),
 * reverted, and applied again; the host watches from outside and checks the guest's invariants.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const duration = options.duration ?? 9000;
  const out = options.out ?? process.stdout;
  const tty = out.isTTY === true && !process.env.NO_COLOR;
  const paint = (format: Parameters<typeof styleText>[0], text: string): string => (tty ? styleText(format, text) : text);

  // A poll every 256 loop iterations: a request is ~15 ns here, so a patch waits a few µs at most.
  const baseline = await prepare(readFile(files.service), { safepoints: { interval: 256 } });
  const { bytes } = await buildPatch({
    wat: readFileSync(files.patchWat, 'utf8'),
    manifest: JSON.parse(readFileSync(files.patchManifest, 'utf8')),
    baseline: baseline.bytes,
  });
  const guest = await WorkerGuest.start(baseline.bytes, { run: { export: 'run' } });
  try {
    const patch = await guest.load(bytes);
    const read = async () => ({
      inFlight: (await guest.call('in_flight')) as number,
      served: (await guest.call('simulated')) as number,
      attempts: (await guest.call('attempts')) as number,
      escalations: (await guest.call('escalations')) as number,
    });

    const started = performance.now();
    const at = (): string => `${((performance.now() - started) / 1000).toFixed(1).padStart(4)}s`;
    let phase: Phase = 'vulnerable';
    let escalationsWhilePatched = 0;
    let patchedSince = 0;
    const log: string[] = [];
    const applyLatencies: number[] = [];

    const switchTo = async (next: Phase): Promise<void> => {
      if (next === 'vulnerable') escalationsWhilePatched += (await read()).escalations - patchedSince; // every request up to here ran patched
      const answer = next === 'patched' ? await guest.apply(patch.id) : await guest.revert(patch.id);
      if (next === 'patched') {
        applyLatencies.push(answer.duration * 1000);
        patchedSince = (await read()).escalations; // every request from here runs patched
      }
      phase = next;
      const bankOk = (await guest.call('bank_ok')) === 1;
      log.push(
        `${at()}  ${next === 'patched' ? paint('green', 'applied ') : paint('yellow', 'reverted')} "${patch.id}" in the running guest: acknowledged in ${(answer.duration * 1000).toFixed(1)} µs (slots written in ${((answer.commit ?? 0) * 1000).toFixed(2)} µs, at a ${answer.servedAt}); bank ${bankOk ? paint('green', 'balanced') : paint('red', 'OFF')}`,
      );
    };

    let previous = await read();
    let previousAt = performance.now();
    let rate = 0;
    let exploitRate = 0;
    let lastDraw = 0;
    let printed = 0;
    let lastPlain = 0;
    const draw = (now: Awaited<ReturnType<typeof read>>, final = false): void => {
      const t = performance.now();
      const secs = (t - previousAt) / 1000;
      if (secs > 0.25 || final) {
        rate = (now.served - previous.served) / secs;
        exploitRate = (now.escalations - previous.escalations) / secs;
        previous = now;
        previousAt = t;
      }
      const status = phase === 'patched' ? paint('green', 'PATCHED   ') : paint('red', 'VULNERABLE');
      const lines = [
        `${paint('bold', 'wasm-hotpatch live demo')}  account service (C → wasm32) in a worker, never returning; patch ${patch.id}`,
        `  guest        ${status}  ${at()}  (${guest.state})`,
        `  requests/s   ${Math.round(rate).toLocaleString('en-US').padStart(12)}   served ${now.served.toLocaleString('en-US')}, in flight ${now.inFlight}`,
        `  escalations  ${(exploitRate > 0 ? paint('red', `${Math.round(exploitRate)}/s`) : paint('green', '0/s')).padStart(12)}   ${now.escalations} of ${now.attempts} attempts; while patched: ${escalationsWhilePatched + (phase === 'patched' ? now.escalations - patchedSince : 0)}`,
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
      if (final || t - lastPlain >= 1000) {
        out.write(`${at()}  ${phase.padEnd(10)} ${Math.round(rate)} requests/s, ${Math.round(exploitRate)} escalations/s, served ${now.served}, in flight ${now.inFlight}\n`);
        lastPlain = t;
      }
    };

    const schedule: [number, Phase][] = [
      [0.25, 'patched'],
      [0.5, 'vulnerable'],
      [0.7, 'patched'],
    ];
    while (performance.now() - started < duration) {
      const elapsed = (performance.now() - started) / duration;
      while (schedule.length > 0 && elapsed >= schedule[0]![0]) await switchTo(schedule.shift()![1]);
      draw(await read());
      await sleep(100);
    }

    const last = await read();
    escalationsWhilePatched += last.escalations - patchedSince;
    draw(last, true);

    // Apply latency across threads, over many trials, while the guest keeps serving.
    for (let i = 0; i < 1000; i++) {
      await guest.revert(patch.id);
      applyLatencies.push((await guest.apply(patch.id)).duration * 1000);
    }

    // Quiesce: the guest finishes the request in hand and returns; every request begun was finished.
    const returned = new Promise((resolve) => guest.addEventListener('returned', resolve, { once: true }));
    await guest.call('stop');
    await returned;
    const begun = (await guest.call('started')) as number;
    const final = { served: (await guest.call('simulated')) as number };
    const sorted = [...applyLatencies].sort((a, b) => a - b);
    const summary: DemoSummary = {
      served: final.served,
      dropped: begun - final.served,
      exploitsTried: last.attempts,
      exploitsSucceeded: { unpatched: last.escalations - escalationsWhilePatched, patched: escalationsWhilePatched },
      applyLatencyUs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), trials: sorted.length },
      stateChecksum: ((await guest.call('state_checksum')) as number >>> 0).toString(16).padStart(8, '0'),
      bankTotalKept: (await guest.call('bank_ok')) === 1,
      ranUntilStopped: guest.ended?.notice === 'returned',
    };
    out.write(
      [
        '',
        paint('bold', 'summary'),
        `  requests served    ${summary.served.toLocaleString('en-US')}, dropped: ${summary.dropped} (counted after the guest was stopped)`,
        `  escalations        ${summary.exploitsSucceeded.unpatched} while vulnerable, ${summary.exploitsSucceeded.patched} while patched (of ${summary.exploitsTried} attempts, before the latency trials)`,
        `  apply latency      p50 ${summary.applyLatencyUs.p50.toFixed(1)} µs, p99 ${summary.applyLatencyUs.p99.toFixed(1)} µs (${summary.applyLatencyUs.trials} trials, host → busy worker → acknowledged)`,
        `  state              checksum ${summary.stateChecksum}; bank ${summary.bankTotalKept ? 'balanced' : 'OFF'}; guest ${summary.ranUntilStopped ? 'ran until stopped, never restarted' : guest.state}`,
        '',
      ].join('\n'),
    );
    return summary;
  } finally {
    await guest.close();
  }
}
