import { beforeAll, describe, expect, it } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { Guest } from '../src/engine/index.js';
import { prepare, type Baseline } from '../src/prepare/prepare.js';
import { fail, replace, spy, withPatch } from '../src/testing/index.js';
import { replaceInTest } from '../src/testing/vitest.js';
import { watFixture } from './helpers.js';

let calls: Baseline;
beforeAll(async () => {
  calls = await prepare(await watFixture('calls.wat'));
});
const imports = { env: { log: () => {} } };
const guestOf = async () => {
  const guest = await Guest.instantiate(calls.bytes, imports);
  return { guest, e: guest.exports as Record<string, any> };
};

describe('replace', () => {
  it('swaps an internal function for JavaScript, reached by direct calls, tables and tail calls, and restores it', async () => {
    const { guest, e } = await guestOf();
    const stub = replace(guest, 'double', (x: number) => x * 10);
    expect([e.apply(0, 4), e.twice(2)]).toEqual([40, 200]);
    expect(stub.active).toBe(true);
    stub.restore();
    stub.restore(); // idempotent
    expect([e.apply(0, 4), e.twice(2)]).toEqual([8, 8]);
    expect(guest.status().patches).toEqual([]);
  });

  it('handles i64 as BigInt and several results as an array', async () => {
    const { guest, e } = await guestOf();
    using _ = replace(guest, 'pair', (a: bigint, b: number) => [b * 2, a + 1n]);
    expect(e.pair(41n, 1.25)).toEqual([2.5, 42n]);
  });

  it('lets the replacement call the original for a partial mock', async () => {
    const { guest, e } = await guestOf();
    const stub = replace(guest, 'fib', (n: number): number => (n === 10 ? -1 : stub.original(n)));
    expect(e.fib(9)).toBe(34);
    expect(e.fib(11)).toBe(-1 + 34); // fib(11) = fib(10) + fib(9), and the recursion reaches the stub for fib(10)
    stub.restore();
    expect(e.fib(11)).toBe(89);
  });

  it('checks the target exists and is patchable', async () => {
    const { guest } = await guestOf();
    expect(() => replace(guest, 'nope', () => 0)).toThrowError(expect.objectContaining({ code: 'E_UNKNOWN_FUNCTION' }));
    expect(() => replace(guest, 'log', () => 0)).toThrowError(expect.objectContaining({ code: 'E_NOT_PATCHABLE' }));
    expect(() => replace(guest, 'double', (a: number, b: number) => a + b)).toThrowError(expect.objectContaining({ code: 'E_SIGNATURE_MISMATCH' }));
  });
});

describe('spy', () => {
  it('records arguments, results and traps, runs hooks, and keeps running the implementation below it', async () => {
    const { guest, e } = await guestOf();
    const entered: unknown[] = [];
    const s = spy(guest, 'double', { onEnter: (args) => entered.push(args[0]) });
    expect(e.apply(0, 3)).toBe(6);
    expect(e.twice(1)).toBe(4);
    expect(s.callCount).toBe(3);
    expect(s.calls.map((c) => [c.args, c.result])).toEqual([
      [[3], 6],
      [[1], 2],
      [[2], 4],
    ]);
    expect(entered).toEqual([3, 1, 2]);
    s.reset();
    const f = fail(guest, 'double', { trap: 'boom', times: 1 }); // above the spy: the spy sees nothing
    expect(() => e.apply(0, 1)).toThrow('boom');
    expect(s.callCount).toBe(0);
    f.restore();
    const f2 = fail(guest, 'square', { trap: true });
    const sq = spy(guest, 'square'); // above the fault: the spy records the trap
    expect(() => e.apply(1, 2)).toThrow(WebAssembly.RuntimeError);
    expect(sq.calls[0]!.error).toBeInstanceOf(WebAssembly.RuntimeError);
    sq.restore();
    f2.restore();
    s.restore();
  });

  it('sees recursive calls through the original, and onLeave can change the result', async () => {
    const { guest, e } = await guestOf();
    const s = spy(guest, 'fib', { onLeave: (_result, args) => (args[0] === 2 ? 100 : undefined) });
    expect(e.fib(4)).toBe(100 + 100 + 1); // fib(4) = fib(3) + fib(2) = (fib(2) + fib(1)) + fib(2)
    expect(s.callCount).toBe(9); // every call of the recursion, down to fib(1) and fib(0)
    s.restore();
  });
});

describe('fail', () => {
  it('returns a value for the next N calls, or while a predicate holds, then runs normally', async () => {
    const { guest, e } = await guestOf();
    const f = fail(guest, 'square', { returns: -1, times: 2 });
    expect([e.apply(1, 3), e.apply(1, 3), e.apply(1, 3)]).toEqual([-1, -1, 9]);
    expect(f.injected).toBe(2);
    f.restore();
    const g = fail(guest, 'square', { returns: 0, when: (x: number) => x > 10 });
    expect([e.apply(1, 3), e.apply(1, 11)]).toEqual([9, 0]);
    g.restore();
  });
});

describe('scoped restore and composition with real patches', () => {
  it('withPatch restores when the body throws', async () => {
    const { guest, e } = await guestOf();
    await expect(
      withPatch(guest, { double: () => 0, square: () => 1 }, async () => {
        expect([e.apply(0, 5), e.apply(1, 5)]).toEqual([0, 1]);
        throw new Error('test failed');
      }),
    ).rejects.toThrow('test failed');
    expect([e.apply(0, 5), e.apply(1, 5)]).toEqual([10, 25]);
  });

  it('restoring a stub never removes a patch applied before or after it', async () => {
    const { guest, e } = await guestOf();
    const real = (id: string, value: number) =>
      buildPatch({
        wat: `(module (func (export "f") (param i32) (result i32) (i32.const ${value})))`,
        manifest: { id, sequence: 1, targets: [{ function: 'double', export: 'f' }] },
        baseline: calls.bytes,
      });
    const before = guest.apply(await guest.load((await real('before', 1)).bytes));
    const stub = replace(guest, 'double', () => 2);
    const after = guest.apply(await guest.load((await real('after', 3)).bytes));
    expect(e.apply(0, 0)).toBe(3);
    stub.restore();
    expect(e.apply(0, 0)).toBe(3);
    guest.revert(after);
    expect(e.apply(0, 0)).toBe(1);
    guest.revert(before);
    expect(e.apply(0, 0)).toBe(0);
  });

  it('works from inside an import callback while the guest is mid-call', async () => {
    let guest: Guest | undefined;
    const wasm = await watToWasm(`(module
      (import "env" "hook" (func $hook))
      (func $work (export "work") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (func (export "run") (param i32) (result i32) (call $hook) (call $work (local.get 0))))`);
    const baseline = await prepare(wasm);
    let stubbed = false;
    guest = await Guest.instantiate(baseline.bytes, {
      env: {
        hook: () => {
          if (!stubbed) replace(guest!, 'work', (x: number) => x * 100);
          stubbed = true;
        },
      },
    });
    expect((guest.exports as any).run(5)).toBe(500); // the rest of the same call reaches the stub
  });
});

describe('vitest helper', () => {
  let shared: ReturnType<typeof guestOf>;
  beforeAll(() => {
    shared = guestOf();
  });
  it('replaceInTest replaces for this test', async () => {
    const { guest, e } = await shared;
    replaceInTest(guest, 'double', () => 7);
    expect(e.apply(0, 1)).toBe(7);
  });
  it('and the next test sees the original again', async () => {
    const { guest, e } = await shared;
    expect(e.apply(0, 1)).toBe(2);
    expect(guest.status().patches).toEqual([]);
  });
});
