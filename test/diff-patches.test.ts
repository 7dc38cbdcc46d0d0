import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diffBuilds } from '../src/build/diff.js';
import { watToWasm } from '../src/build/wat.js';
import { AccountClient, type AccountExports, files, readFile } from '../src/demo/account-service.js';
import { Guest } from '../src/engine/index.js';
import { parseModule } from '../src/format/module.js';
import { prepare } from '../src/prepare/prepare.js';
import { outcome } from './helpers.js';

/** The module without its name section: what stripped release builds look like. */
function stripNames(wasm: Uint8Array): Uint8Array {
  const names = parseModule(wasm).sections.find((s) => s.name === 'name');
  if (!names) return wasm;
  const out = new Uint8Array(wasm.length - (names.end - names.start));
  out.set(wasm.subarray(0, names.start));
  out.set(wasm.subarray(names.end), names.start);
  return out;
}

const PROGRAM = (body: { scale?: string; extraFirst?: boolean; helper?: boolean } = {}) => `(module
  (memory (export "memory") 1)
  ${body.extraFirst ? '(func $unused (param i32) (result i32) (i32.xor (local.get 0) (i32.const 99)))' : ''}
  (func $clamp (param i32) (result i32) (select (local.get 0) (i32.const 100) (i32.lt_s (local.get 0) (i32.const 100))))
  ${body.helper ? '(func $twice (param i32) (result i32) (i32.shl (local.get 0) (i32.const 1)))' : ''}
  (func $scale (param i32) (result i32) ${body.scale ?? '(i32.mul (local.get 0) (i32.const 3))'})
  (func $store (param i32 i32) (i32.store (i32.shl (local.get 0) (i32.const 2)) (local.get 1)))
  (func (export "compute") (param i32) (result i32) (call $clamp (call $scale (local.get 0))))
  (func (export "save") (param i32 i32) (call $store (local.get 0) (call $scale (local.get 1))))
  (func (export "load") (param i32) (result i32) (i32.load (i32.shl (local.get 0) (i32.const 2)))))`;

async function patchAndCompare(oldWat: string, newWat: string, strip: boolean) {
  const prep = async (w: string) => (strip ? stripNames(await watToWasm(w)) : watToWasm(w));
  const old = await prep(oldWat);
  const fresh = await prep(newWat);
  const baseline = await prepare(old);
  const result = await diffBuilds(old, fresh, { baseline: baseline.bytes, id: 'edit' });
  if (!result.hotpatchable) throw new Error(JSON.stringify(result.reasons));
  const guest = await Guest.instantiate(baseline.bytes);
  const reference = (await WebAssembly.instantiate(fresh as BufferSource)).instance.exports as Record<string, any>;
  const oldRef = (await WebAssembly.instantiate(old as BufferSource)).instance.exports as Record<string, any>;
  const e = guest.exports as Record<string, any>;
  const run = (x: Record<string, any>) =>
    [-5, 0, 7, 33, 1000].map((v) => [
      outcome(() => x.compute(v)),
      outcome(() => {
        x.save(v & 15, v);
        return x.load(v & 15);
      }),
    ]);
  const patch = guest.apply(await guest.load(result.patch.bytes));
  const patched = run(e);
  guest.revert(patch);
  return { result, patched, expected: run(reference), reverted: run(e), oldExpected: run(oldRef) };
}

describe('diff builds patches that behave like the new build', () => {
  it('finds the changed function when others were added in front of it and there is no name section', async () => {
    const { result, patched, expected, reverted, oldExpected } = await patchAndCompare(PROGRAM(), PROGRAM({ extraFirst: true, scale: '(i32.mul (local.get 0) (i32.const 5))' }), true);
    expect(result).toMatchObject({ changed: ['#1'], added: [] });
    expect(patched).toEqual(expected);
    expect(reverted).toEqual(oldExpected);
  });

  it('carries a new helper function the changed code calls', async () => {
    const { result, patched, expected } = await patchAndCompare(PROGRAM(), PROGRAM({ helper: true, scale: '(call $twice (i32.add (local.get 0) (i32.const 1)))' }), false);
    expect(result).toMatchObject({ changed: ['scale'], added: ['twice'] });
    expect(patched).toEqual(expected);
  });

  it("carries a new global that only the changed code uses as the patch's own state", async () => {
    const counting = PROGRAM({ scale: '(global.set $calls (i32.add (global.get $calls) (i32.const 1))) (i32.mul (local.get 0) (global.get $calls))' }).replace(
      '(memory (export "memory") 1)',
      '(memory (export "memory") 1) (global $calls (mut i32) (i32.const 0))',
    );
    const old = await watToWasm(PROGRAM());
    const baseline = await prepare(old);
    const result = await diffBuilds(old, await watToWasm(counting), { baseline: baseline.bytes, id: 'count' });
    expect(result).toMatchObject({ hotpatchable: true, changed: ['scale'], ownedGlobals: ['calls'] });
    if (!result.hotpatchable) return;
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, any>;
    expect(e.compute(5)).toBe(15);
    const patch = guest.apply(await guest.load(result.patch.bytes));
    expect([e.compute(5), e.compute(5), e.compute(5)]).toEqual([5, 10, 15]); // the counter lives in the patch
    guest.revert(patch);
    expect(e.compute(5)).toBe(15);
    guest.apply(patch);
    expect(e.compute(5)).toBe(20); // and keeps its value while the patch is loaded
  });

  it('random small edits to a function body always give a patch that matches the edited build', async () => {
    const ops = ['i32.add', 'i32.sub', 'i32.mul', 'i32.xor', 'i32.and', 'i32.or', 'i32.shr_s'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ops), fc.integer({ min: -50, max: 50 }), fc.boolean(), fc.boolean(), async (op, k, wrap, strip) => {
        const scale = wrap ? `(${op} (i32.mul (local.get 0) (i32.const 3)) (i32.const ${k}))` : `(${op} (local.get 0) (i32.const ${k === 3 ? 4 : k}))`;
        const { patched, expected, reverted, oldExpected } = await patchAndCompare(PROGRAM(), PROGRAM({ scale }), strip);
        expect(patched).toEqual(expected);
        expect(reverted).toEqual(oldExpected);
      }),
      { numRuns: 40 },
    );
  });
});

describe('patches/account-service, fixed in C and diffed', () => {
  it('the running baseline with the patch answers like the fixed build on set_name and like the old one elsewhere; revert restores the old', async () => {
    const old = readFile(files.service);
    const fixed = new Uint8Array(readFileSync(new URL('../patches/account-service/service-fixed.wasm', import.meta.url)));
    const baseline = await prepare(old);
    const result = await diffBuilds(old, fixed, { baseline: baseline.bytes, id: 'fix-name-overflow-c' });
    expect(result).toMatchObject({ hotpatchable: true, changed: ['set_name'], exactStatics: true });
    if (!result.hotpatchable) return;
    const guest = await Guest.instantiate(baseline.bytes);
    const fixedGuest = new AccountClient((await WebAssembly.instantiate(fixed as BufferSource)).instance.exports as unknown as AccountExports);
    const oldGuest = new AccountClient((await WebAssembly.instantiate(old as BufferSource)).instance.exports as unknown as AccountExports);
    const patched = new AccountClient(guest.exports as unknown as AccountExports);
    for (const c of [fixedGuest, oldGuest, patched]) c.exports.init();
    const traffic = (c: AccountClient) => {
      const answers = [];
      for (let n = 0; n < 2000; n++) answers.push(n % 97 === 0 ? c.exploit(1 + (n % 63)) : c.ordinary(n));
      answers.push(c.setName(3, new Uint8Array(16).fill(66)), c.checksum());
      return answers;
    };
    const p = guest.apply(await guest.load(result.patch.bytes));
    expect(traffic(patched)).toEqual(traffic(fixedGuest));
    guest.revert(p);
    patched.exports.init();
    oldGuest.exports.init();
    expect(traffic(patched)).toEqual(traffic(oldGuest));
  });
});

describe('diff on real toolchain output', () => {
  it('finds the one function that changed in a 1 MB Rust build and in a stripped emscripten build', async () => {
    const { editOneConstant } = await import('../bench/_edit.js');
    const { brotliWasm, sqlJsWasm } = await import('../bench/_libraries.js');
    for (const old of [brotliWasm(), sqlJsWasm()]) {
      const { bytes, index } = editOneConstant(old, 200);
      const baseline = await prepare(old);
      const result = await diffBuilds(old, bytes, { baseline: baseline.bytes, id: 'one' });
      expect(result.hotpatchable).toBe(true);
      if (!result.hotpatchable) return;
      const target = baseline.manifest.functions.find((f) => f.index === index)!;
      expect(result.changed).toEqual([baseline.manifest.functions.filter((f) => f.name === target.name).length === 1 ? target.name : `#${index}`]);
      // The patch binds to a real running instance: memory, globals, tables and live entries resolve.
      const module = await WebAssembly.compile(baseline.bytes as BufferSource);
      const imports = Object.fromEntries(WebAssembly.Module.imports(module).map((i) => [i.module, {}])) as Record<string, Record<string, unknown>>;
      for (const i of WebAssembly.Module.imports(module)) {
        imports[i.module]![i.name] =
          i.kind === 'function'
            ? () => 0
            : i.kind === 'memory'
              ? new WebAssembly.Memory({ initial: 256, maximum: 32768 })
              : i.kind === 'table'
                ? new WebAssembly.Table({ initial: 4096, element: 'anyfunc' })
                : new WebAssembly.Global({ value: 'i32', mutable: true }, 0);
      }
      const guest = Guest.adopt(new WebAssembly.Instance(module, imports as WebAssembly.Imports), module);
      const patch = guest.apply(await guest.load(result.patch.bytes));
      expect(guest.status().functions).toEqual([expect.objectContaining({ index, patch: patch.id })]);
    }
  });
});
