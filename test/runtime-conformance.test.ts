// The contract's conformance cases (conformance.ts) on every kind of guest, through `HotpatchGuest` alone.
import { beforeAll, expect, it } from 'vitest';
// The runtime spawns compiled workers: test it as it ships, from dist/ (npm test builds first).
import { readFileSync } from 'node:fs';
import { buildPatch, diffBuilds, Guest, type Hotpatchable, prepare, watToWasm } from 'wasm-hotpatch';
import { ThreadedGuest, WorkerGuest } from 'wasm-hotpatch/runtime';
import { conformance, type Fixture, type ShadowFixture, shadowConformance } from './conformance.js';
import { contractCases } from './contract-cases.js';

// `spin` never returns: a worker running it is busy, and reached by interrupts.
const PAIR = `(module
  (func (export "a") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func (export "b") (param i32) (result i32) (i32.add (local.get 0) (i32.const 2)))
  (func (export "spin") (loop $l (br $l))))`;
let pair: Uint8Array;
// The sessions fixture (C, clang) and its shadow-state fix, made by diff.
const layout = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`fixtures/layout/${name}`, import.meta.url)));
let sessions: Uint8Array;
let budget: Uint8Array;
beforeAll(async () => {
  pair = (await prepare(await watToWasm(PAIR))).bytes;
  sessions = (await prepare(layout('sessions.wasm'))).bytes;
  budget = ((await diffBuilds(layout('sessions.wasm'), layout('sessions-shadow.wasm'), { baseline: sessions, id: 'budget' })) as Hotpatchable).patch.bytes;
});

const patch: Fixture['patch'] = async (id, value, targets, extra = {}) =>
  (
    await buildPatch({
      wat: `(module ${targets.map((t) => `(func (export "${t}") (param i32) (result i32) (i32.mul (local.get 0) (i32.const ${value})))`).join(' ')})`,
      manifest: {
        id,
        sequence: extra.sequence ?? 1,
        cumulative: extra.cumulative ?? false,
        ...(extra.description ? { description: extra.description } : {}),
        targets: targets.map((t) => ({ function: t, export: t })),
      },
      baseline: pair,
    })
  ).bytes;

const memory = { module: 'env', name: 'memory', initial: 1, maximum: 1 };
conformance('in-thread Guest', { patch, start: async (o = {}) => (await Guest.instantiate(pair, {}, o)).async });
conformance('WorkerGuest, idle', { patch, start: (o = {}) => WorkerGuest.start(pair, o) });
conformance('WorkerGuest, idle, no interrupts', { patch, start: (o = {}) => WorkerGuest.start(pair, { ...o, interrupts: false }) });
conformance('WorkerGuest, busy in a loop (interrupts, fast path)', { patch, start: (o = {}) => WorkerGuest.start(pair, { ...o, run: { export: 'spin' } }) });
conformance('ThreadedGuest, two idle threads', { patch, start: (o = {}) => ThreadedGuest.start(pair, { ...o, threads: 2, memory }) });

// The engine's own contract cases, on the worker kinds.
contractCases('WorkerGuest', { patch, start: (policy) => WorkerGuest.start(pair, policy ? { policy } : {}) });
contractCases('WorkerGuest, busy in a loop', { patch, start: (policy) => WorkerGuest.start(pair, { ...(policy ? { policy } : {}), run: { export: 'spin' } }) });
contractCases('ThreadedGuest', { patch, start: (policy) => ThreadedGuest.start(pair, { ...(policy ? { policy } : {}), threads: 2, memory }) });

// Shadow state, on the kinds that offer it (a ThreadedGuest does not: its threads share one memory).
const sessionsImports = new URL('fixtures/layout/sessions-imports.mjs', import.meta.url);
const shadowPatch: ShadowFixture['patch'] = async () => budget;
shadowConformance('in-thread Guest', { patch: shadowPatch, start: async (shadow = {}) => (await Guest.instantiate(sessions, { env: { report: () => {} } }, shadow ? { shadow } : {})).async });
shadowConformance('WorkerGuest', { patch: shadowPatch, start: (shadow = {}) => WorkerGuest.start(sessions, { imports: sessionsImports, ...(shadow ? { shadow } : {}) }) });
shadowConformance('WorkerGuest, no interrupts', {
  patch: shadowPatch,
  start: (shadow = {}) => WorkerGuest.start(sessions, { imports: sessionsImports, ...(shadow ? { shadow } : {}), interrupts: false }),
});
it('a ThreadedGuest offers no shadow state: asked for it, it says so and starts nothing', async () => {
  await expect(ThreadedGuest.start(sessions, { threads: 1, memory, shadow: {} } as never)).rejects.toMatchObject({ code: 'E_USAGE', message: expect.stringContaining('no shadow state') });
});
