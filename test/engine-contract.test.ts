import { beforeAll } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';
import { contractCases } from './contract-cases.js';

const PAIR = '(module (func (export "a") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))) (func (export "b") (param i32) (result i32) (i32.add (local.get 0) (i32.const 2))))';
let pair: Uint8Array;
beforeAll(async () => {
  pair = (await prepare(await watToWasm(PAIR))).bytes;
});

contractCases('in-thread Guest (guest.async)', {
  start: async (policy) => (await Guest.instantiate(pair, {}, policy ? { policy } : {})).async,
  patch: async (id, value, targets, extra = {}) =>
    (
      await buildPatch({
        wat: `(module ${targets.map((t) => `(func (export "${t}") (param i32) (result i32) (i32.mul (local.get 0) (i32.const ${value})))`).join(' ')})`,
        manifest: { id, sequence: extra.sequence ?? 1, cumulative: extra.cumulative ?? false, targets: targets.map((t) => ({ function: t, export: t })) },
        baseline: pair,
      })
    ).bytes,
});
