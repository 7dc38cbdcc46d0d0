// Where a differing constant goes decides what diff does with it: line numbers passed to calls
// are left out, a one-off argument change is carried, a struct field offset moved in several
// functions is refused.
import { describe, expect, it } from 'vitest';
import { diffBuilds, type Hotpatchable, type NotHotpatchable } from '../src/build/diff.js';
import { watToWasm } from '../src/build/wat.js';
import { prepare } from '../src/prepare/prepare.js';

// Three functions report errors with a "line number" (large enough to look like a static address).
const program = (lines: [number, number, number], bound = 10, offsets: [number, number] = [4, 8]) => `(module
  (memory (export "memory") 1)
  (func $report (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "a") (param i32) (result i32)
    (if (i32.gt_u (local.get 0) (i32.const ${bound})) (then (return (call $report (i32.const 11) (i32.const ${lines[0]})))))
    (local.get 0))
  (func (export "b") (param i32) (result i32)
    (local $line i32)
    (if (i32.eqz (local.get 0)) (then (local.set $line (i32.const ${lines[1]})) (br 0)))
    (call $report (i32.const 11) (local.get $line)))
  (func (export "c") (param i32) (result i32) (call $report (i32.const 11) (i32.const ${lines[2]})))
  (func (export "get") (param i32) (result i32) (i32.add (i32.load offset=${offsets[0]} (local.get 0)) (i32.load offset=${offsets[1]} (local.get 0))))
  (func (export "set") (param i32 i32) (i32.store offset=${offsets[0]} (local.get 0) (local.get 1)) (i32.store offset=${offsets[1]} (local.get 0) (local.get 1))))`;

async function diff(old: string, fresh: string, options = {}) {
  const a = await watToWasm(old);
  return diffBuilds(a, await watToWasm(fresh), { baseline: (await prepare(a)).bytes, id: 'p', ...options });
}

describe('diff: constants by where their value goes', () => {
  it('line numbers that shift alike in several functions are left out, directly or through a local; alone they are nothing to patch', async () => {
    await expect(diff(program([20000, 20010, 20020]), program([20004, 20014, 20024]))).rejects.toMatchObject({
      code: 'E_NOTHING_TO_PATCH',
      message: expect.stringMatching(/only line numbers changed \(3 functions left out/),
    });
    const carried = (await diff(program([20000, 20010, 20020]), program([20004, 20014, 20024]), { carryLineNumbers: true })) as Hotpatchable;
    expect([...carried.changed].sort()).toEqual(['a', 'b', 'c']);
    expect(carried.leftOut.map((l) => l.item).sort()).toEqual(['a', 'b', 'c']);
  });

  it('with a real fix beside them: the fix is carried, the shifted ones left out, nothing refused', async () => {
    const result = (await diff(program([20000, 20010, 20020]), program([20004, 20014, 20024], 5))) as Hotpatchable;
    expect(result).toMatchObject({ hotpatchable: true, changed: ['a'], mode: { statics: 'heuristic', names: true } });
    expect(result.leftOut.map((l) => [l.item, l.reason, l.constants.map((c) => c.new - c.old)])).toEqual([
      ['b', 'LINE_NUMBERS', [4]],
      ['c', 'LINE_NUMBERS', [4]],
    ]);
  });

  it('a one-off change of an argument is a change, and is carried', async () => {
    const result = (await diff(program([20000, 20010, 20020]), program([20000, 20010, 30000]))) as Hotpatchable;
    expect(result).toMatchObject({ hotpatchable: true, changed: ['c'], leftOut: [] });
  });

  it('a field offset moved in two functions is LAYOUT_CHANGED; in one it is a fix', async () => {
    const refused = (await diff(program([1, 2, 3]), program([1, 2, 3], 10, [4, 12]))) as NotHotpatchable;
    expect(refused.reasons).toEqual([expect.objectContaining({ code: 'LAYOUT_CHANGED', message: expect.stringContaining('offset 8 → 12 (get, set)') })]);
    const allowed = (await diff(program([1, 2, 3]), program([1, 2, 3], 10, [4, 12]), { allowLayoutChange: true })) as Hotpatchable;
    expect(allowed).toMatchObject({ hotpatchable: true, warnings: [expect.objectContaining({ code: 'LAYOUT_CHANGED' })] });
    expect([...allowed.changed].sort()).toEqual(['get', 'set']);
  });
});
