// The playground page: starts the worker, shows the guest's counters, and sends it patches.
import type { Command, Counters, ErrorData, EventData, Report } from './protocol.js';

/** What the server tells the page (`/config.json`). */
export interface PlaygroundConfig {
  readonly baseline: string;
  /** The fix the Apply button sends: signed with the session key. */
  readonly fix: { readonly name: string; readonly url: string };
  /** Trusted public keys (PEM). */
  readonly trustedKeys: readonly string[];
  readonly downloads: readonly { readonly url: string; readonly file: string; readonly label: string }[];
}

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const worker = new Worker('/worker.js', { type: 'module' });
const send = (command: Command, transfer: Transferable[] = []): void => worker.postMessage(command, transfer);
const started = performance.now();
let previous: Counters | undefined;
let step = 0;

const number = (n: number): string => Math.round(n).toLocaleString('en-US');
/** Engine figures are milliseconds read from the worker's clock; commits are microseconds long, often under one step of it. */
const time = (x: number): string => (x < 1 ? `${(x * 1000).toFixed(1)} µs` : `${x.toFixed(2)} ms`);
const ms = (x: number): string => (x === 0 && step > 0 ? `< ${time(step)} (one clock step)` : time(x));

function setValue(id: string, value: number, text = number(value)): void {
  const el = $(id);
  el.dataset.value = String(value);
  el.textContent = text;
}

function showCounters(c: Counters): void {
  if (previous && c.at > previous.at) {
    const secs = (c.at - previous.at) / 1000;
    const exploitRate = (c.escalations - previous.escalations) / secs;
    setValue('rate', (c.served - previous.served) / secs);
    setValue('exploit-rate', exploitRate);
    $('exploit-rate').className = exploitRate > 0 ? 'hot' : 'cold';
  }
  previous = c;
  setValue('served', c.served);
  setValue('attempts', c.attempts);
  setValue('escalations', c.escalations);
  $('escalations').className = c.escalations > 0 ? 'hot' : '';
  $('bank').textContent = c.bankOk ? 'yes' : 'NO';
}

function showPatched(patched: readonly string[]): void {
  const state = $('state');
  state.dataset.state = patched.length > 0 ? 'patched' : 'vulnerable';
  state.textContent = patched.length > 0 ? `patched: ${patched.join(', ')}` : 'vulnerable';
  $<HTMLButtonElement>('apply').disabled = patched.length > 0;
  $<HTMLButtonElement>('revert').disabled = patched.length === 0;
}

function log(type: string, what: string, figures: string, error?: ErrorData): HTMLLIElement {
  const li = document.createElement('li');
  li.dataset.type = type;
  if (error) li.dataset.code = error.problems.map((p) => p.code).join(' ');
  const when = `${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s`;
  for (const [cls, text] of [
    ['when', when],
    ['what', ` ${what}`],
    ['figures', figures ? `  ${figures}` : ''],
  ] as const) {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  if (error) li.title = error.message;
  $('log').prepend(li);
  return li;
}

function logEvent(e: EventData): void {
  const what = `${e.type} ${e.patch ?? e.source ?? '(no id)'}`;
  const figures = [
    e.commit !== undefined ? `commit ${ms(e.commit)}` : '',
    `${e.type === 'loaded' ? 'load' : 'whole call'} ${ms(e.duration)}`,
    e.error ? `${e.error.problems.map((p) => p.code).join(', ')}: ${e.error.message}` : '',
  ]
    .filter(Boolean)
    .join(' · ');
  const li = log(e.type, what, figures, e.error);
  if (e.patch) li.dataset.patch = e.patch;
  li.dataset.escalations = String(e.counters.escalations);
  li.dataset.served = String(e.counters.served);
}

function fatal(error: ErrorData): void {
  const box = $('fatal');
  box.hidden = false;
  box.dataset.code = error.code;
  box.textContent = `${error.code}: ${error.message}`;
}

worker.onmessage = (message: MessageEvent<Report>) => {
  const report = message.data;
  switch (report.type) {
    case 'ready':
      $('baseline').textContent = `baseline ${report.baseline.slice(0, 16)}…, trusting ${report.keyIds.join(', ')}`;
      $('key-id').textContent = report.keyIds.join(', ');
      step = report.timer.resolution;
      $('clock').textContent = `clock step ${time(step)}${report.timer.crossOriginIsolated ? ' (cross-origin isolated)' : ''}`;
      showPatched(report.patched);
      return;
    case 'counters':
      showCounters(report.counters);
      showPatched(report.patched);
      return;
    case 'event':
      logEvent(report.event);
      showCounters(report.event.counters);
      showPatched(report.patched);
      return;
    case 'refused':
      log('refused', `${report.what} refused`, `${report.error.code}: ${report.error.message}`, report.error);
      return;
    case 'failed':
      fatal(report.error);
      return;
    default:
      report satisfies never;
  }
};

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  return response.arrayBuffer();
}

async function sendFile(file: File): Promise<void> {
  const bytes = await file.arrayBuffer();
  send({ type: 'apply', name: file.name, bytes }, [bytes]);
}

function wireDropZone(): void {
  const drop = $('drop');
  const input = $<HTMLInputElement>('file');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer?.files[0];
    if (file) void sendFile(file);
  });
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file) void sendFile(file);
    input.value = '';
  });
}

async function main(): Promise<void> {
  const config = (await (await fetch('/config.json')).json()) as PlaygroundConfig;
  for (const d of config.downloads) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = d.url;
    a.download = d.file;
    a.textContent = d.file;
    li.append(a, ` — ${d.label}`);
    $('downloads').append(li);
  }
  wireDropZone();
  $('apply').addEventListener('click', async () => {
    const bytes = await fetchBytes(config.fix.url);
    send({ type: 'apply', name: config.fix.name, bytes }, [bytes]);
  });
  $('revert').addEventListener('click', () => send({ type: 'revert' }));
  const baseline = await fetchBytes(config.baseline);
  send({ type: 'start', baseline, trustedKeys: config.trustedKeys }, [baseline]);
}

main().catch((error: unknown) => fatal({ code: 'E_PAGE', message: String(error), problems: [] }));
