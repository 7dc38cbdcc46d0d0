import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { unzlibSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { Guest } from '../src/engine/index.js';
import { BASELINE_SECTION, decodeBaselineManifest, parseBaselineManifest } from '../src/format/manifest.js';
import { customSections, parseModule } from '../src/format/module.js';
import { deriveOriginals, derivesExactly } from '../src/format/originals.js';
import { prepare } from '../src/prepare/prepare.js';
import { wasmFixture } from './helpers.js';

const require = createRequire(import.meta.url);
const workload = wasmFixture('c/workload.wasm');

describe('originals rebuilt from the baseline itself', () => {
  it('is the default for entry dispatch: no copy of the bodies in the baseline', async () => {
    const derived = await prepare(workload);
    const embedded = await prepare(workload, { originals: 'embedded' });
    expect(derived.manifest.original).toEqual({ derived: 'entry' });
    expect(embedded.manifest.original).toEqual({ section: 'hotpatch.originals' });
    expect(customSections(parseModule(derived.bytes), 'hotpatch.originals')).toEqual([]);
    expect(derived.bytes.length).toBeLessThan(embedded.bytes.length);
  });

  it('gives the same originals as the embedded copy, recursion through the live entries included', async () => {
    const baselines = [await prepare(workload), await prepare(workload, { originals: 'embedded' })];
    const guests = await Promise.all(baselines.map((b) => Guest.instantiate(b.bytes)));
    const fib = (g: Guest, n: number) => (g.original('fib') as (n: number) => number)(n);
    expect(guests.map((g) => fib(g, 20))).toEqual([6765, 6765]);
    for (const guest of guests) guest.applyFunctions({ fib: () => 1000 });
    // The original's own recursive calls go through the live entry and reach the stub.
    const results = guests.map((g) => [fib(g, 1), fib(g, 5), (g.exports.fib as (n: number) => number)(20)]);
    expect(results[0]![0]).toBe(1);
    expect(results[0]![1]).toBeGreaterThanOrEqual(1000);
    expect(results[0]![2]).toBe(1000);
    expect(results[1]).toEqual(results[0]);
  });

  it("on a real emscripten library (sql.js): the rebuilt originals module validates and holds exactly the embedded copy's bodies", async () => {
    const original = new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm')));
    const baseline = await prepare(original);
    expect(baseline.manifest.original).toEqual({ derived: 'entry' });
    const embedded = await prepare(original, { originals: 'embedded' });
    const derived = deriveOriginals(baseline.bytes, baseline.manifest).bytes;
    expect(WebAssembly.validate(derived as BufferSource)).toBe(true);
    const [section] = customSections(parseModule(embedded.bytes), 'hotpatch.originals');
    const copy = unzlibSync(embedded.bytes.subarray(section!.payloadStart!, section!.end));
    // The same bodies; only the type section differs (the baseline's own, a superset).
    const code = (bytes: Uint8Array) => {
      const s = parseModule(bytes).sections.find((x) => x.id === 10)!;
      return bytes.subarray(s.start, s.end);
    };
    expect(Buffer.from(code(derived)).equals(Buffer.from(code(copy)))).toBe(true);
    expect(baseline.bytes.length / original.length).toBeLessThan(1.15);
  });

  it('a guest adopted without the baseline bytes says how to get originals; with them, they work', async () => {
    const { bytes } = await prepare(workload);
    const module = await WebAssembly.compile(bytes as BufferSource);
    const bare = Guest.adopt(await WebAssembly.instantiate(module), module);
    expect(() => bare.original('fib')).toThrow(expect.objectContaining({ code: 'E_ORIGINALS_UNAVAILABLE' }));
    const withBytes = Guest.adopt(await WebAssembly.instantiate(module), module, { baselineBytes: bytes });
    expect((withBytes.original('fib') as (n: number) => number)(10)).toBe(55);
  });

  it("prepare's exactness check compares every body in place, and sees a single byte that differs", async () => {
    const { bytes, manifest } = await prepare(workload);
    const baseline = parseModule(bytes);
    const original = parseModule(workload);
    const patchable = manifest.functions.filter((f) => f.slot !== undefined);
    expect(patchable.every((f) => derivesExactly(baseline, original, f.index))).toBe(true);
    for (const f of patchable) {
      const b = original.bodies[f.index - original.importedFunctions]!;
      const changed = workload.slice();
      changed[b.end - 2]! ^= 1; // the byte before the body's final `end`
      expect(derivesExactly(baseline, parseModule(changed), f.index)).toBe(false);
    }
    // A body without the entry check is refused, not cut wrong.
    expect(() => derivesExactly(original, original, patchable[0]!.index)).toThrow(expect.objectContaining({ code: 'E_MANIFEST_INVALID' }));
  });

  it('refuses derived originals where bodies are rewritten beyond the entry', async () => {
    await expect(prepare(workload, { originals: 'derived', safepoints: true })).rejects.toMatchObject({ code: 'E_BAD_OPTIONS' });
    await expect(prepare(workload, { originals: 'derived', consistency: 'quiescent' })).rejects.toMatchObject({ code: 'E_BAD_OPTIONS' });
    expect((await prepare(workload, { safepoints: true })).manifest.original).toEqual({ section: 'hotpatch.originals' });
    await expect(prepare(workload, { originals: 'both' as never })).rejects.toMatchObject({ code: 'E_BAD_OPTIONS' });
  });
});

describe('the baseline manifest section', () => {
  it('is compressed JSON; plain JSON (older baselines) still reads, anything else is E_MANIFEST_INVALID', async () => {
    const { bytes, manifest } = await prepare(workload);
    const [section] = customSections(parseModule(bytes), BASELINE_SECTION);
    expect(decodeBaselineManifest(bytes)).toEqual(manifest);
    const json = unzlibSync(bytes.subarray(section!.payloadStart!, section!.end));
    expect(json[0]).toBe(0x7b);
    expect(parseBaselineManifest(json)).toEqual(manifest);
    expect(() => parseBaselineManifest(new Uint8Array([1, 2, 3]))).toThrow(expect.objectContaining({ code: 'E_MANIFEST_INVALID' }));
  });

  it('stores no per-function field it can derive, and reads back every one: names, exports, reasons, slots', async () => {
    const { bytes, manifest } = await prepare(workload, { only: 'fib|sum|^#', exclude: '#3' });
    expect(decodeBaselineManifest(bytes)).toEqual(manifest);
    expect(manifest.functions.some((f) => f.reason !== undefined) && manifest.functions.some((f) => f.slot !== undefined)).toBe(true);
    const [section] = customSections(parseModule(bytes), BASELINE_SECTION);
    const stored = JSON.parse(new TextDecoder().decode(unzlibSync(bytes.subarray(section!.payloadStart!, section!.end))));
    expect(stored.functions).toBeUndefined();
    expect(stored.signature).toHaveLength(manifest.functions.length);
    for (const name of Object.values(stored.names ?? {})) expect(name).not.toMatch(/^#\d+$/);
  });

  it('refuses format 1 and stored columns that do not add up, listing every problem', async () => {
    const { bytes } = await prepare(workload);
    const [section] = customSections(parseModule(bytes), BASELINE_SECTION);
    const stored = JSON.parse(new TextDecoder().decode(unzlibSync(bytes.subarray(section!.payloadStart!, section!.end))));
    const parse = (value: object) => () => parseBaselineManifest(new TextEncoder().encode(JSON.stringify(value)));
    expect(parse({ ...stored, format: 1 })).toThrow(expect.objectContaining({ code: 'E_MANIFEST_INVALID', message: expect.stringMatching(/format 2/) }));
    const broken = { ...stored, slots: stored.slots + 1, signature: [...stored.signature.slice(1), 999], reasons: { imported: [0, 0] }, names: { x: 'y' } };
    expect(parse(broken)).toThrow(
      expect.objectContaining({
        code: 'E_MANIFEST_INVALID',
        problems: expect.arrayContaining([expect.objectContaining({ path: 'names.x' }), expect.objectContaining({ path: 'reasons.imported[1]' })]),
      }),
    );
  });
});
