import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../src/format/bytes.js';

const read = (bytes: Uint8Array): string => new ByteReader(bytes).name();

describe('ByteReader.name', () => {
  it('reads short ASCII names (the fast path), non-ASCII and long ones alike, and stops right after each', () => {
    const names = ['', 'r0', 'f12', 'hotpatch_pre_apply', 'é', 'naïve_fn', '函数', '🦀', 'x'.repeat(32), 'y'.repeat(33), `${'z'.repeat(31)}é`];
    const w = new ByteWriter();
    for (const n of names) w.name(n);
    w.u8(0x2a);
    const r = new ByteReader(w.finish());
    expect(names.map(() => r.name())).toEqual(names);
    expect(r.u8()).toBe(0x2a);
  });

  it('refuses a name that is not UTF-8, or runs past the end, with a typed error', () => {
    expect(() => read(Uint8Array.of(3, 0x61, 0xff, 0x62))).toThrowError(expect.objectContaining({ code: 'E_INVALID_WASM' }));
    expect(() => read(Uint8Array.of(5, 0x61, 0x62))).toThrowError(expect.objectContaining({ code: 'E_INVALID_WASM' }));
    expect(() => new ByteReader(Uint8Array.of(4, 0x61, 0x62, 0x63, 0x64), 0, 3).name()).toThrowError(expect.objectContaining({ code: 'E_INVALID_WASM' }));
  });
});
