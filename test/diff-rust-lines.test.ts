// A Rust release cdylib (wasm-bindgen style) with a fix that adds lines: Rust keeps line numbers
// in panic locations in data, so the only data change is their line fields, which diff leaves out.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
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

  it('the CLI says which mode it ran in and what it left out, in text and --json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rust-lines-'));
    const baseline = join(dir, 'records.baseline.wasm');
    writeFileSync(baseline, (await prepare(read('records.wasm'))).bytes);
    const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
    const run = (...args: string[]) =>
      promisify(execFile)(
        process.execPath,
        [
          cli,
          'diff',
          new URL('../patches/rust-lines/records.wasm', import.meta.url).pathname,
          new URL('../patches/rust-lines/records-fixed.wasm', import.meta.url).pathname,
          '--baseline',
          baseline,
          ...args,
        ],
        { env: { ...process.env, NO_COLOR: '1' } },
      );
    const json = JSON.parse((await run('-o', join(dir, 'a.wasm'), '--json')).stdout);
    expect(json).toMatchObject({ hotpatchable: true, changed: ['put'], mode: { statics: 'heuristic', names: true }, leftOut: [{ item: 'data[0]', reason: 'LINE_NUMBERS' }] });
    const text = (await run('-o', join(dir, 'b.wasm'))).stdout;
    expect(text).toMatch(/left out 1 item/);
    expect(text).toMatch(/mode +heuristic/);
  });
});
