// The playground's guest: the account service, run by the engine inside a browser worker. It
// serves simulated traffic (one request in 200 an exploit) in slices, and applies or reverts
// patches between slices, when the page asks.
import { Guest, type GuestEvent, HotpatchError, type Patch, trustKey } from '../../engine/index.js';
import { decodePatchManifest } from '../../format/manifest.js';
import type { Command, Counters, ErrorData, Report, Timer } from './protocol.js';

interface ServiceExports {
  init(): void;
  simulate(n: number): void;
  simulated(): number;
  attempts(): number;
  escalations(): number;
  bank_ok(): number;
}

/** Requests per call into the guest, and how long a slice runs before the worker reads its messages. */
const BATCH = 2000;
const SLICE_MS = 10;
const COUNTERS_EVERY_MS = 200;

let guest: Guest | undefined;
let service: ServiceExports;
let lastCounters = 0;
let source: string | undefined;
const tick = new MessageChannel();

const post = (report: Report): void => self.postMessage(report);
const patched = (): string[] =>
  guest
    ? guest
        .status()
        .patches.filter((p) => p.state === 'applied')
        .map((p) => p.id)
    : [];

function counters(): Counters {
  return { at: performance.now(), served: service.simulated(), attempts: service.attempts(), escalations: service.escalations(), bankOk: service.bank_ok() === 1 };
}

/** The clock's step, so the page can say "under one step" for a commit timed as 0 (bounded: 10 ms at most). */
function timer(): Timer {
  let resolution = Infinity;
  const end = performance.now() + 10;
  for (let last = performance.now(), n = 0; n < 5 && last < end; ) {
    const t = performance.now();
    if (t > last) {
      resolution = Math.min(resolution, t - last);
      last = t;
      n++;
    }
  }
  return { resolution, crossOriginIsolated: self.crossOriginIsolated };
}

function errorData(error: unknown): ErrorData {
  if (error instanceof HotpatchError) return { code: error.code, message: error.message, problems: error.problems.map((p) => ({ code: p.code, message: p.message })) };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'E_INTERNAL', message, problems: [{ code: 'E_INTERNAL', message }] };
}

/** One slice of traffic; the next is queued behind whatever the page sent meanwhile. */
function slice(): void {
  const until = performance.now() + SLICE_MS;
  do service.simulate(BATCH);
  while (performance.now() < until);
  if (performance.now() - lastCounters >= COUNTERS_EVERY_MS) {
    lastCounters = performance.now();
    post({ type: 'counters', counters: counters(), patched: patched() });
  }
  tick.port2.postMessage(null);
}

async function start(baseline: ArrayBuffer, pems: readonly string[]): Promise<void> {
  const trustedKeys = await Promise.all(pems.map((pem) => trustKey(pem)));
  const g = await Guest.instantiate(baseline, {}, { policy: { trustedKeys } });
  for (const type of ['loaded', 'rejected', 'applied', 'reverted'] as const) {
    g.addEventListener(type, (event) => {
      const e = event as GuestEvent;
      post({ type: 'event', event: { type, patch: e.patch, duration: e.duration, commit: e.commit, error: e.error && errorData(e.error), source, counters: counters() }, patched: patched() });
    });
  }
  guest = g;
  service = g.exports as unknown as ServiceExports;
  service.init();
  post({ type: 'ready', baseline: g.status().baseline, keyIds: trustedKeys.map((k) => k.keyId), patched: [], timer: timer() });
  tick.port1.onmessage = slice;
  slice();
}

/** Loads the bytes under the policy (every time: bytes once verified prove nothing about these) and applies them. */
async function apply(g: Guest, name: string, bytes: ArrayBuffer): Promise<void> {
  let id: string | undefined;
  try {
    id = decodePatchManifest(new Uint8Array(bytes)).id;
  } catch {
    id = undefined; // load reports what is wrong with it
  }
  const earlier = id === undefined ? undefined : g.patch(id);
  try {
    if (earlier?.state === 'applied') throw new HotpatchError('E_ALREADY_APPLIED', `patch "${id}" is already applied: revert it first`);
    if (earlier) g.unload(earlier);
  } catch (error) {
    post({ type: 'refused', what: `apply ${name}`, error: errorData(error) });
    return;
  }
  let patch: Patch;
  try {
    patch = await g.load(bytes);
  } catch {
    return; // the guest's 'rejected' event carried it
  }
  try {
    g.apply(patch);
  } catch (error) {
    post({ type: 'refused', what: `apply ${name}`, error: errorData(error) });
  }
}

function revert(g: Guest): void {
  const top = g
    .status()
    .patches.filter((p) => p.state === 'applied')
    .at(-1);
  try {
    if (!top) throw new HotpatchError('E_NOT_APPLIED', 'no patch is applied');
    g.revert(top.id);
  } catch (error) {
    post({ type: 'refused', what: 'revert', error: errorData(error) });
  }
}

self.onmessage = (message: MessageEvent<Command>) => {
  const command = message.data;
  const failed = (error: unknown) => post({ type: 'failed', error: errorData(error) });
  switch (command.type) {
    case 'start':
      start(command.baseline, command.trustedKeys).catch(failed);
      return;
    case 'apply':
      source = command.name;
      if (guest) apply(guest, command.name, command.bytes).catch(failed);
      return;
    case 'revert':
      source = 'Revert';
      if (guest) revert(guest);
      return;
    default:
      command satisfies never;
  }
};
