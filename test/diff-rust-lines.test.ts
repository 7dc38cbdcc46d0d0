// A Rust release cdylib (wasm-bindgen style) with a fix that adds lines: Rust keeps line numbers
// in panic locations in data, so the only data change is their line fields, which diff leaves out.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diffBuilds, type Hotpatchable } from '../src/build/diff.js';
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';

const read = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../patches/rust-lines/${name}`, import.meta.url)));

describe('patches/rust-lines (Rust, rustc -O, no relocations)', () => {
  it('patches put live; the panic locations whose lines moved are left out and listed', async () => {
    const old = read('records.wasm');
    const baseline = await prepare(old);
    const result = (await diffBuilds(old, read('records-fixed.wasm'), { baseline: baseline.bytes, id: 'refuse-long-records' })) as Hotpatchable;
    expect(result).toMatchObject({ hotpatchable: true, changed: ['put'], mode: { statics: 'heuristic', names: true } });
    expect(result.leftOut).toEqual([expect.objectContaining({ item: 'data[0]', reason: 'LINE_NUMBERS' })]);
    for (const c of result.leftOut[0]!.constants) expect(c.new - c.old).toBe(4);

    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as unknown as { memory: WebAssembly.Memory; __wbindgen_malloc(n: number): number; put(p: number, n: number): number; checksum(k: number): number };
    const put = (kind: number, payload: number[]): number => {
      const p = e.__wbindgen_malloc(payload.length + 2);
      new Uint8Array(e.memory.buffer).set([kind, payload.length, ...payload], p);
      return e.put(p, payload.length + 2);
    };
    const long = Array.from({ length: 100 }, (_, i) => i);
    expect(put(1, [1, 2, 3])).toBe(3);
    expect(put(2, long)).toBe(64); // cut short, reported as stored
    const patch = guest.apply(await guest.load(result.patch.bytes));
    expect([e.checksum(1), e.checksum(2)]).toEqual([6, (63 * 64) / 2]);
    expect(put(3, long)).toBe(-2);
    expect(put(3, [7, 7])).toBe(2);
    guest.revert(patch);
    expect(put(4, long)).toBe(64);
    expect([e.checksum(1), e.checksum(3)]).toEqual([6, 14]);
  });
});
