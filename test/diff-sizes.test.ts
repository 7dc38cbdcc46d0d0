// A struct field appended at the end moves no offset; only sizeof changes (allocation sizes, copy
// lengths, strides). A real clang build (test/fixtures/layout, built by test/fixtures/build.sh):
// diff must refuse it as LAYOUT_CHANGED, not leave the allocations out as line numbers.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diffBuilds, type Hotpatchable, type NotHotpatchable } from '../src/build/diff.js';
import { watToWasm } from '../src/build/wat.js';
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';

const read = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`fixtures/layout/${name}`, import.meta.url)));

async function sessions(options: { allowLayoutChange?: boolean } = {}) {
  const old = read('sessions.wasm');
  const baseline = await prepare(old);
  return { baseline, result: await diffBuilds(old, read('sessions-fixed.wasm'), { baseline: baseline.bytes, id: 'budget', ...options }) };
}

describe('diff: a struct field appended at its end', () => {
  it('is refused as LAYOUT_CHANGED naming the size, the functions passing it and those using the new bytes', async () => {
    const { result } = await sessions();
    const refused = result as NotHotpatchable;
    expect(refused.hotpatchable).toBe(false);
    expect(refused.reasons).toEqual([
      expect.objectContaining({
        code: 'LAYOUT_CHANGED',
        item: 'size 16 → 20',
        message: expect.stringContaining('size 16 → 20 passed by `session_clone`, `session_guest`, `session_new`; bytes 16–19 newly used by `request`, `session_new`'),
      }),
    ]);
    // The sizes are not line numbers; the real line shift (+2, two lines added above) still is.
    expect(refused.leftOut.map((l) => [l.item, l.constants.map((c) => c.new - c.old)])).toEqual([
      ['requests', [2]],
      ['close_', [2]],
    ]);
  });

  it('--allow-layout-change carries every function the size reaches, reported as a warning, and the patch runs', async () => {
    const { baseline, result } = await sessions({ allowLayoutChange: true });
    const allowed = result as Hotpatchable;
    expect(allowed).toMatchObject({ hotpatchable: true, warnings: [expect.objectContaining({ code: 'LAYOUT_CHANGED', item: 'size 16 → 20' })] });
    expect([...allowed.changed].sort()).toEqual(['request', 'session_at', 'session_clone', 'session_guest', 'session_new', 'sessions_new']);
    expect(allowed.leftOut.map((l) => l.item)).toEqual(['requests', 'close_']);

    const guest = await Guest.instantiate(baseline.bytes, { env: { report: () => {} } });
    const g = guest.exports as unknown as { session_new(id: number, user: number): number; request(s: number): number };
    guest.apply(await guest.load(allowed.patch.bytes));
    const s = g.session_new(1, 7); // allocated by the patch: room for the budget
    expect([g.request(s), g.request(s), g.request(s), g.request(s)]).toEqual([1, 2, 3, -1]);
  });

  it('the same size changed alike in two functions, with no new field used, is a change, not a line shift', async () => {
    const program = (size: number) => `(module
      (memory (export "memory") 1)
      (func $alloc (param i32) (result i32) (local.get 0))
      (func (export "a") (result i32) (call $alloc (i32.const ${size})))
      (func (export "b") (result i32) (call $alloc (i32.const ${size}))))`;
    const old = await watToWasm(program(16));
    const result = (await diffBuilds(old, await watToWasm(program(20)), { baseline: (await prepare(old)).bytes, id: 'p' })) as Hotpatchable;
    expect(result).toMatchObject({ hotpatchable: true, leftOut: [] });
    expect([...result.changed].sort()).toEqual(['a', 'b']);
  });
});
