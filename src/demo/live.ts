import { fromUtf8 } from '../format/bytes.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildPatch } from '../build/build.js';
import { prepare } from '../prepare/prepare.js';
import { WorkerGuest } from '../runtime/index.js';
import type { ServedAt } from '../runtime/protocol.js';
import { files, readFile } from './account-service.js';
import { PhaseRates } from './_rates.js';
import { createScreen, type DemoStream, type Screen } from './_screen.js';

/** Options of the live demo. */
export interface DemoOptions {
  /** Total run time in milliseconds (default 9000). */
  readonly duration?: number;
  /** Where to write; redraws in place when it is a TTY. */
  readonly out?: DemoStream;
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
 * and never returns to its host. The security patch is applied while it runs (at a safepoint or
 * an interrupt), reverted, and applied again; the host watches from outside and checks the guest's invariants.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const duration = options.duration ?? 9000;
  const screen = createScreen(options.out ?? process.stdout);
  const { paint } = screen;

  // A poll every 256 loop iterations: a request is ~15 ns here, so a patch waits a few µs at most.
  const baseline = await prepare(readFile(files.service), { safepoints: { interval: 256 } });
  const { bytes } = await buildPatch({
    wat: fromUtf8(readFile(files.patchWat)),
    manifest: JSON.parse(fromUtf8(readFile(files.patchManifest))),
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
    const events: string[] = [];
    const applyLatencies: number[] = [];
    const rates = new PhaseRates(await read(), performance.now());

    const switchTo = async (next: Phase): Promise<void> => {
      if (next === 'vulnerable') escalationsWhilePatched += (await read()).escalations - patchedSince; // every request up to here ran patched
      const answer = next === 'patched' ? await guest.apply(patch.id) : await guest.revert(patch.id);
      const since = await read(); // every request from here runs in the new phase
      if (next === 'patched') {
        applyLatencies.push(answer.duration * 1000);
        patchedSince = since.escalations;
      }
      rates.restart(since, performance.now());
      phase = next;
      const bankOk = (await guest.call('bank_ok')) === 1;
      events.push(
        `${at()}  ${next === 'patched' ? paint('green', 'applied ') : paint('yellow', 'reverted')} "${patch.id}" in the running guest: acknowledged in ${(answer.duration * 1000).toFixed(1)} µs (slots written in ${((answer.commit ?? 0) * 1000).toFixed(2)} µs, ${guest.lastServed ? WHERE[guest.lastServed.servedAt] : 'where it was taken is not known'}); bank ${bankOk ? paint('green', 'balanced') : paint('red', 'OFF')}`,
      );
    };

    const draw = (now: Awaited<ReturnType<typeof read>>, final = false): void => {
      rates.update(now, performance.now(), final);
      const perSecond = (rate: number | undefined): string => (rate === undefined ? '…' : Math.round(rate).toLocaleString('en-US'));
      const escalating = (rates.escalations ?? 0) > 0;
      const escalationRate = `${perSecond(rates.escalations)}/s`.padStart(12);
      const whilePatched = escalationsWhilePatched + (phase === 'patched' ? now.escalations - patchedSince : 0);
      const panel = [
        `${paint('bold', 'wasm-hotpatch live demo')}: account service (C → wasm32) in a worker`,
        `  guest        ${phase === 'patched' ? paint('green', 'PATCHED   ') : paint('red', 'VULNERABLE')}  ${at()}  ${guest.state}, never returning`,
        `  requests/s   ${perSecond(rates.requests).padStart(12)}  served ${now.served.toLocaleString('en-US')}, in flight ${now.inFlight}`,
        `  escalations  ${escalating ? paint('red', escalationRate) : paint('green', escalationRate)}  ${now.escalations} of ${now.attempts} attempts; while patched: ${whilePatched}`,
      ];
      const plain = `${at()}  ${phase.padEnd(10)} ${perSecond(rates.requests)} requests/s, ${perSecond(rates.escalations)} escalations/s, served ${now.served}, in flight ${now.inFlight}`;
      screen.draw(panel, events, plain, final);
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
    // On a slow machine the time can run out between switches: every switch still happens, in order.
    while (schedule.length > 0) await switchTo(schedule.shift()![1]);

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
      stateChecksum: (((await guest.call('state_checksum')) as number) >>> 0).toString(16).padStart(8, '0'),
      bankTotalKept: (await guest.call('bank_ok')) === 1,
      ranUntilStopped: guest.ended?.notice === 'returned',
    };
    screen.finish(summaryText(summary, paint, guest.state));
    return summary;
  } finally {
    await guest.close();
  }
}

/** Where the guest took a request, as the event line says it (issue 16: "at a interrupt"). */
const WHERE: Record<ServedAt, string> = { safepoint: 'at a safepoint', interrupt: 'at an interrupt', 'event-loop': 'from its event loop' };

/** The summary as people read it. */
function summaryText(summary: DemoSummary, paint: Screen['paint'], state: string): string {
  return [
    '',
    paint('bold', 'summary'),
    `  requests served    ${summary.served.toLocaleString('en-US')}, dropped: ${summary.dropped} (counted after the guest was stopped)`,
    `  escalations        ${summary.exploitsSucceeded.unpatched} while vulnerable, ${summary.exploitsSucceeded.patched} while patched (of ${summary.exploitsTried} attempts, before the latency trials)`,
    `  apply latency      p50 ${summary.applyLatencyUs.p50.toFixed(1)} µs, p99 ${summary.applyLatencyUs.p99.toFixed(1)} µs (${summary.applyLatencyUs.trials} trials, host → busy worker → acknowledged)`,
    `  state              checksum ${summary.stateChecksum}; bank ${summary.bankTotalKept ? 'balanced' : 'OFF'}; guest ${summary.ranUntilStopped ? 'ran until stopped, never restarted' : state}`,
    '',
  ].join('\n');
}
