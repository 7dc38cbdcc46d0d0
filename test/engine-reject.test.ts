import { beforeAll, describe, expect, it } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { Guest, type HotpatchError } from '../src/engine/index.js';
import { encodePatchManifest } from '../src/format/manifest.js';
import { prepare, type Baseline } from '../src/prepare/prepare.js';
import { digest, watFixture } from './helpers.js';

const imports = { env: { log: () => {} } };
let baseline: Baseline;
let other: Baseline;

beforeAll(async () => {
  baseline = await prepare(await watFixture('calls.wat'));
  other = await prepare(await watFixture('calls.wat'), { exclude: 'fib' });
});

/** A patch module from WAT with a manifest written as given: no builder checks. */
async function raw(body: string, manifest: Record<string, unknown>): Promise<Uint8Array> {
  const code = await watToWasm(`(module ${body})`);
  const section = encodePatchManifest({ format: 1, id: 'p', sequence: 1, baseline: baseline.manifest.id, cumulative: false, description: '', targets: [], ...manifest } as never);
  const out = new Uint8Array(code.length + section.length);
  out.set(code);
  out.set(section, code.length);
  return out;
}

const F = '(func (export "f") (param i32) (result i32) (local.get 0))';
const target = (fn = 'double', exp = 'f') => ({ function: fn, export: exp });

/** Everything observable about a guest: memory, every table slot, globals, status. */
function snapshot(guest: Guest) {
  const e = guest.exports as Record<string, any>;
  const table = e['hotpatch.table'] as WebAssembly.Table;
  return {
    memory: digest((e.memory as WebAssembly.Memory).buffer),
    slots: Array.from({ length: table.length }, (_, i) => table.get(i)),
    counter: (e['hotpatch.global.0'] as WebAssembly.Global).value,
    status: guest.status(),
    behaviour: [e.apply(0, 4), e.fib(8)],
  };
}

async function expectRejected(guest: Guest, bytes: Uint8Array, codes: string[]) {
  const before = snapshot(guest);
  const error = (await guest.load(bytes).then(
    () => undefined,
    (e: unknown) => e,
  )) as HotpatchError;
  expect(error, 'load must fail').toBeDefined();
  expect(error.code).toBe('E_PATCH_REJECTED');
  expect(error.problems.map((p) => p.code).sort()).toEqual([...codes].sort());
  expect(error.message.length).toBeGreaterThan(20);
  // apply(0, 4) bumps the counter in both snapshots, so compare everything but behaviour first.
  const after = snapshot(guest);
  expect({ ...after, counter: after.counter - 1 }).toEqual({ ...before, behaviour: after.behaviour, counter: before.counter });
  return error;
}

describe('load rejects bad patches and changes nothing', () => {
  it.each([
    ['not Wasm', async () => new TextEncoder().encode('#!/bin/sh\necho hi'), ['E_NOT_WASM']],
    ['truncated bytes', async () => (await raw(F, { targets: [target()] })).slice(0, 30), ['E_INVALID_WASM']],
    ['no manifest', async () => watToWasm(`(module ${F})`), ['E_MANIFEST_MISSING']],
    ['malformed manifest', async () => raw(F, { sequence: -1, targets: 'double' }), ['E_MANIFEST_INVALID', 'E_MANIFEST_INVALID']],
    ['wrong baseline', async () => raw(F, { baseline: other.manifest.id, targets: [target()] }), ['E_BASELINE_MISMATCH']],
    ['unknown function', async () => raw(F, { targets: [target('nope')] }), ['E_UNKNOWN_FUNCTION']],
    ['unknown index', async () => raw(F, { targets: [target('#99')] }), ['E_UNKNOWN_FUNCTION']],
    ['imported (unpatchable) function', async () => raw('(func (export "f") (param i32))', { targets: [target('log')] }), ['E_NOT_PATCHABLE']],
    ['duplicate target', async () => raw(F, { targets: [target(), target('#2')] }), ['E_DUPLICATE_TARGET']],
    ['missing export', async () => raw(F, { targets: [target('double', 'g')] }), ['E_MISSING_EXPORT']],
    ['wrong signature', async () => raw('(func (export "f") (param i64) (result i32) (i32.const 0))', { targets: [target()] }), ['E_SIGNATURE_MISMATCH']],
    [
      'host import outside policy and unresolved baseline function',
      async () => raw(`(import "env" "log" (func (param i32))) (import "live" "nope" (func)) ${F}`, { targets: [target()] }),
      ['E_IMPORT_NOT_ALLOWED', 'E_IMPORT_UNRESOLVED'],
    ],
    [
      'import with the wrong type',
      async () => raw(`(import "live" "fib" (func (param i64))) (import "baseline" "global:0" (global i32)) ${F}`, { targets: [target()] }),
      ['E_IMPORT_TYPE_MISMATCH', 'E_IMPORT_TYPE_MISMATCH'],
    ],
    ['start function', async () => raw(`(func $s) (start $s) ${F}`, { targets: [target()] }), ['E_PATCH_HAS_START']],
    ['data written into baseline memory at load', async () => raw(`(import "baseline" "memory" (memory 1)) (data (i32.const 0) "pwned") ${F}`, { targets: [target()] }), ['E_PATCH_WRITES_BASELINE']],
    ['bad hook', async () => raw(`(func (export "hotpatch_pre_apply") (param i32)) ${F}`, { targets: [target()] }), ['E_BAD_HOOK']],
    [
      'three problems at once',
      async () => raw('(func (export "f") (param f32) (result i32) (i32.const 0))', { targets: [target(), target('nope'), target('square', 'missing')] }),
      ['E_SIGNATURE_MISMATCH', 'E_UNKNOWN_FUNCTION', 'E_MISSING_EXPORT'],
    ],
  ] as const)('%s', async (_name, make, codes) => {
    const guest = await Guest.instantiate(baseline.bytes, imports);
    await expectRejected(guest, await make(), [...codes]);
  });

  it('rejects a tampered byte in the patch code', async () => {
    const guest = await Guest.instantiate(baseline.bytes, imports);
    const good = await raw('(func (export "f") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))', { targets: [target()] });
    // i32.add (0x6a) right before the function's `end`: make it an opcode that does not exist.
    const at = good.indexOf(0x0b, good.indexOf(0x41, good.indexOf(0x20))) - 1;
    expect(good[at]).toBe(0x6a);
    const bad = good.slice();
    bad[at] = 0xff;
    await expectRejected(guest, bad, ['E_INVALID_WASM']);
  });

  it('rejects a second load or apply of the same id, and a downgrade below an applied cumulative patch', async () => {
    const guest = await Guest.instantiate(baseline.bytes, imports);
    const p = await guest.load(await raw(F, { id: 'c', sequence: 5, cumulative: true, targets: [target()] }));
    await expectRejected(guest, await raw(F, { id: 'c', targets: [target()] }), ['E_ALREADY_LOADED']);
    guest.apply(p);
    await expectRejected(guest, await raw(F, { id: 'c', targets: [target()] }), ['E_ALREADY_APPLIED']);
    await expectRejected(guest, await raw(F, { id: 'old', sequence: 4, targets: [target()] }), ['E_DOWNGRADE']);
    await expect(guest.load(await raw(F, { id: 'old', sequence: 4, targets: [target()] }), { force: true })).resolves.toBeDefined();
  });

  it('accepts a host import the policy allows by name', async () => {
    const logged: number[] = [];
    const guest = await Guest.instantiate(baseline.bytes, imports, { hostImports: { env: { log: (x: number) => logged.push(x) } } });
    const p = await guest.load(await raw('(import "env" "log" (func $log (param i32))) (func (export "f") (param i32) (result i32) (call $log (local.get 0)) (local.get 0))', { targets: [target()] }));
    guest.apply(p);
    (guest.exports as any).apply(0, 9);
    expect(logged).toEqual([9]);
  });

  it('refuses apply and revert in the wrong state, and patches of another guest', async () => {
    const guest = await Guest.instantiate(baseline.bytes, imports);
    const second = await Guest.instantiate(baseline.bytes, imports);
    const p = await guest.load(await raw(F, { targets: [target()] }));
    expect(() => guest.revert(p)).toThrowError(expect.objectContaining({ code: 'E_NOT_APPLIED' }));
    expect(() => guest.revert('missing')).toThrowError(expect.objectContaining({ code: 'E_UNKNOWN_PATCH' }));
    expect(() => second.apply(p)).toThrowError(expect.objectContaining({ code: 'E_WRONG_GUEST' }));
    guest.apply(p);
    expect(() => guest.apply(p)).toThrowError(expect.objectContaining({ code: 'E_ALREADY_APPLIED' }));
  });

  it('refuses a tampered baseline', async () => {
    const bytes = baseline.bytes.slice();
    bytes[bytes.indexOf(0x6c) /* i32.mul in double */] = 0x6a;
    await expect(Guest.instantiate(bytes, imports)).rejects.toMatchObject({ code: 'E_BASELINE_TAMPERED' });
    await expect(Guest.instantiate(await watFixture('calls.wat'), imports)).rejects.toMatchObject({ code: 'E_NOT_A_BASELINE' });
  });

  it('buildPatch checks the patch against the baseline before writing it', async () => {
    await expect(buildPatch({ wat: '(module (func (export "f") (param i64)))', manifest: { id: 'b', sequence: 1, targets: [target()] }, baseline: baseline.bytes })).rejects.toMatchObject({
      code: 'E_PATCH_REJECTED',
      problems: [expect.objectContaining({ code: 'E_SIGNATURE_MISMATCH' })],
    });
    await expect(buildPatch({ wat: '(module (func $x (export "f") oops))', manifest: { id: 'b', sequence: 1, targets: [target()] }, baseline: baseline.bytes })).rejects.toMatchObject({
      code: 'E_INVALID_WASM',
    });
  });
});
