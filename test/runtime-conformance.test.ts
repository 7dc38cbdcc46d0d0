// The contract's conformance cases (conformance.ts) on every kind of guest, through `HotpatchGuest` alone.
import { beforeAll } from 'vitest';
// The runtime spawns compiled workers: test it as it ships, from dist/ (npm test builds first).
import { buildPatch, Guest, prepare, watToWasm } from 'wasm-hotpatch';
import { ThreadedGuest, WorkerGuest } from 'wasm-hotpatch/runtime';
import { conformance, type Fixture } from './conformance.js';

// `spin` never returns: a worker running it is busy, and reached by interrupts.
const PAIR = `(module
  (func (export "a") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func (export "b") (param i32) (result i32) (i32.add (local.get 0) (i32.const 2)))
  (func (export "spin") (loop $l (br $l))))`;
let pair: Uint8Array;
beforeAll(async () => {
  pair = (await prepare(await watToWasm(PAIR))).bytes;
});

const patch: Fixture['patch'] = async (id, value, targets, extra = {}) =>
  (
    await buildPatch({
      wat: `(module ${targets.map((t) => `(func (export "${t}") (param i32) (result i32) (i32.mul (local.get 0) (i32.const ${value})))`).join(' ')})`,
      manifest: { id, sequence: extra.sequence ?? 1, cumulative: extra.cumulative ?? false, ...(extra.description ? { description: extra.description } : {}), targets: targets.map((t) => ({ function: t, export: t })) },
      baseline: pair,
    })
  ).bytes;

const memory = { module: 'env', name: 'memory', initial: 1, maximum: 1 };
conformance('in-thread Guest', { patch, start: async (o = {}) => (await Guest.instantiate(pair, {}, o)).async });
conformance('WorkerGuest, idle', { patch, start: (o = {}) => WorkerGuest.start(pair, o) });
conformance('WorkerGuest, idle, no interrupts', { patch, start: (o = {}) => WorkerGuest.start(pair, { ...o, interrupts: false }) });
conformance('WorkerGuest, busy in a loop (interrupts, fast path)', { patch, start: (o = {}) => WorkerGuest.start(pair, { ...o, run: { export: 'spin' } }) });
conformance('ThreadedGuest, two idle threads', { patch, start: (o = {}) => ThreadedGuest.start(pair, { ...o, threads: 2, memory }) });
