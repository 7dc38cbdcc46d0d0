// Shadow state (livepatch's klp_shadow_*): the host's ShadowState as the hotpatch.shadow import
// module, used by a patch written in WAT, freed by its post-revert hook.
import { describe, expect, it } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { Guest, ShadowState } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';

// A guest with objects of a fixed 8-byte layout (id, balance) and a bump allocator with a free count.
const GUEST = `(module
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (global $frees (mut i32) (i32.const 0))
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32) (local.set $p (global.get $top))
    (global.set $top (i32.add (global.get $top) (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "free") (param i32) (global.set $frees (i32.add (global.get $frees) (i32.const 1))))
  (func (export "frees") (result i32) (global.get $frees))
  (func (export "open") (param $id i32) (result i32)
    (local $p i32) (local.set $p (call 0 (i32.const 8)))
    (i32.store (local.get $p) (local.get $id)) (local.get $p))
  (func (export "withdraw") (param $obj i32) (param $amount i32) (result i32)
    (i32.store offset=4 (local.get $obj) (i32.add (i32.load offset=4 (local.get $obj)) (local.get $amount)))
    (i32.load offset=4 (local.get $obj))))`;

// The fix: at most 3 withdrawals per object, counted in a shadow field (id 7) the struct has no room for.
const PATCH = `(module
  (import "hotpatch.shadow" "get_or_alloc" (func $get_or_alloc (param i32 i32 i32) (result i32)))
  (import "hotpatch.shadow" "free_all" (func $free_all (param i32)))
  (import "original" "withdraw" (func $withdraw (param i32 i32) (result i32)))
  (import "baseline" "memory" (memory 1))
  (func (export "withdraw") (param $obj i32) (param $amount i32) (result i32)
    (local $count i32)
    (local.set $count (call $get_or_alloc (local.get $obj) (i32.const 7) (i32.const 4)))
    (if (i32.ge_u (i32.load (local.get $count)) (i32.const 3)) (then (return (i32.const -1))))
    (i32.store (local.get $count) (i32.add (i32.load (local.get $count)) (i32.const 1)))
    (call $withdraw (local.get $obj) (local.get $amount)))
  (func (export "hotpatch_post_revert") (call $free_all (i32.const 7))))`;

describe('shadow state', () => {
  it('a WAT patch attaches a counter to each object by address; revert frees every one through the guest allocator', async () => {
    const baseline = await prepare(await watToWasm(GUEST));
    let guest: Guest | undefined;
    const shadow = ShadowState.fromExports(() => guest!.exports);
    guest = await Guest.instantiate(baseline.bytes, {}, { hostImports: shadow.imports });
    const g = guest.exports as unknown as { open(id: number): number; withdraw(o: number, a: number): number; frees(): number };
    const [a, b] = [g.open(1), g.open(2)];
    g.withdraw(a, 5);
    const { bytes } = await buildPatch({
      wat: PATCH,
      manifest: { id: 'limit-withdrawals', sequence: 1, targets: [{ function: 'withdraw', export: 'withdraw' }] },
      baseline: baseline.bytes,
      hostImports: ['hotpatch.shadow.get_or_alloc', 'hotpatch.shadow.free_all'],
    });
    const patch = guest.apply(await guest.load(bytes));
    expect([g.withdraw(a, 1), g.withdraw(a, 1), g.withdraw(a, 1), g.withdraw(a, 1)]).toEqual([6, 7, 8, -1]);
    expect(g.withdraw(b, 10)).toBe(10);
    expect([shadow.count(7), shadow.get(a, 7) !== shadow.get(b, 7)]).toEqual([2, true]);
    guest.revert(patch);
    expect([shadow.count(), g.frees()]).toEqual([0, 2]);
    expect(g.withdraw(a, 1)).toBe(9);
  });

  it('get, alloc, get_or_alloc, free and free_all keep livepatch semantics; fields are zeroed; without free, freed fields are reused', () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    let top = 64;
    const shadow = new ShadowState({
      memory,
      malloc: (n) => {
        top += n;
        return top - n;
      },
    });
    new Uint8Array(memory.buffer).fill(0xff);
    expect(shadow.get(100, 1)).toBe(0);
    const f = shadow.alloc(100, 1, 8);
    expect(new Uint8Array(memory.buffer, f, 8).every((x) => x === 0)).toBe(true);
    expect(shadow.alloc(100, 1, 8)).toBe(0); // exists: alloc refuses, as klp_shadow_alloc does
    expect(shadow.getOrAlloc(100, 1, 8)).toBe(f);
    const other = shadow.getOrAlloc(100, 2, 8);
    expect(other).not.toBe(f);
    shadow.free(100, 1);
    expect([shadow.get(100, 1), shadow.get(100, 2)]).toEqual([0, other]);
    expect(shadow.getOrAlloc(200, 1, 8)).toBe(f); // reused, not grown
    shadow.freeAll(1);
    shadow.freeAll(2);
    expect(shadow.count()).toBe(0);
    // Addresses arrive from Wasm as signed i32: the same object either way.
    const high = shadow.getOrAlloc(-8, 3, 4);
    expect(shadow.get(0xfffffff8, 3)).toBe(high);
  });

  it("the shadow option makes the store from the guest's exports (guest.shadow); given twice, or without its allocator, start refuses", async () => {
    const baseline = await prepare(await watToWasm(GUEST));
    const guest = await Guest.instantiate(baseline.bytes, {}, { shadow: {} });
    const g = guest.exports as unknown as { open(id: number): number; withdraw(o: number, a: number): number; frees(): number };
    const { bytes } = await buildPatch({
      wat: PATCH,
      manifest: { id: 'limit-withdrawals', sequence: 1, targets: [{ function: 'withdraw', export: 'withdraw' }] },
      baseline: baseline.bytes,
      hostImports: ['hotpatch.shadow.get_or_alloc', 'hotpatch.shadow.free_all'],
    });
    const a = g.open(1);
    const patch = guest.apply(await guest.load(bytes));
    expect([g.withdraw(a, 1), g.withdraw(a, 1), g.withdraw(a, 1), g.withdraw(a, 1)]).toEqual([1, 2, 3, -1]);
    expect(guest.shadow?.count(7)).toBe(1);
    guest.revert(patch);
    expect([guest.shadow?.count(), g.frees()]).toEqual([0, 1]);
    const twice = ShadowState.fromExports(() => guest.exports);
    await expect(Guest.instantiate(baseline.bytes, {}, { shadow: {}, hostImports: twice.imports })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(Guest.instantiate(baseline.bytes, {}, { shadow: { free: 'release' } })).rejects.toMatchObject({
      code: 'E_IMPORT_UNRESOLVED',
      message: expect.stringContaining('no function release'),
    });
  });
});
