// A real #[wasm_bindgen] crate (wasm-bindgen 0.2.83 from Debian, cargo --release) with a fix that
// adds lines. The .wasm files are what the wasm-bindgen CLI takes in (the CLI is not available
// here): they still export the `__wbindgen_describe_*` functions and import from
// `__wbindgen_placeholder__` and `__wbindgen_externref_xform__`, which the CLI would remove. The
// test plays the part of the CLI's JS glue: the bytes go in through __wbindgen_malloc, the Vec
// comes back through a return pointer and goes out through __wbindgen_free.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diffBuilds, type Hotpatchable } from '../src/build/diff.js';
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';

const read = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../patches/rust-bindgen/${name}`, import.meta.url)));

const compile = (bytes: Uint8Array): WebAssembly.Module => new WebAssembly.Module(new Uint8Array(bytes));

interface Wasm {
  memory: WebAssembly.Memory;
  __wbindgen_malloc(size: number): number;
  __wbindgen_free(ptr: number, size: number): void;
  put(kind: number, ptr: number, len: number): number;
  get(retptr: number, kind: number): void;
  checksum(kind: number): number;
  byte_at(kind: number, i: number): number;
}

/** What the CLI's glue would give the module: console.warn, and nothing the CLI itself resolves. */
function glueImports(module: WebAssembly.Module, memory: () => WebAssembly.Memory, warnings: string[]): Record<string, Record<string, unknown>> {
  const imports: Record<string, Record<string, unknown>> = {};
  for (const { module: from, name } of WebAssembly.Module.imports(module)) {
    const fn = name.startsWith('__wbg_warn_')
      ? (ptr: number, len: number) => warnings.push(new TextDecoder().decode(new Uint8Array(memory().buffer, ptr, len).slice()))
      : () => {
          throw new Error(`${from}.${name} is resolved by the wasm-bindgen CLI, never called at run time`);
        };
    imports[from] = { ...imports[from], [name]: fn };
  }
  return imports;
}

/** The glue's wrappers, as the CLI generates them for wasm-bindgen 0.2.83. */
function glue(e: Wasm) {
  return {
    put(kind: number, payload: Uint8Array): boolean {
      const ptr = e.__wbindgen_malloc(payload.length); // passArray8ToWasm0; the Rust side frees it
      new Uint8Array(e.memory.buffer).set(payload, ptr);
      return e.put(kind, ptr, payload.length) !== 0;
    },
    get(kind: number): number[] {
      // The CLI's glue takes the return area from the shadow stack (__wbindgen_add_to_stack_pointer,
      // an export the CLI adds); without the CLI, from the allocator.
      const retptr = e.__wbindgen_malloc(8);
      e.get(retptr, kind);
      const view = new DataView(e.memory.buffer);
      const [ptr, len] = [view.getInt32(retptr, true), view.getInt32(retptr + 4, true)];
      const bytes = [...new Uint8Array(e.memory.buffer, ptr, len)];
      e.__wbindgen_free(ptr, len);
      e.__wbindgen_free(retptr, 8);
      return bytes;
    },
  };
}

describe('patches/rust-bindgen (Rust, #[wasm_bindgen], cargo --release, before the wasm-bindgen CLI)', () => {
  it('the module is what the macros make: describe exports, placeholder and externref imports, the unstable section', () => {
    const module = compile(read('records.wasm'));
    expect(WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name.replace(/_[0-9a-f]{16}$/, '_*')}`)).toEqual([
      '__wbindgen_placeholder__.__wbindgen_describe',
      '__wbindgen_placeholder__.__wbg_warn_*',
      '__wbindgen_externref_xform__.__wbindgen_externref_table_grow',
      '__wbindgen_externref_xform__.__wbindgen_externref_table_set_null',
    ]);
    const exports = WebAssembly.Module.exports(module).map((e) => e.name);
    expect(exports).toEqual(expect.arrayContaining(['put', '__wbindgen_describe_put', '__wbindgen_malloc', '__wbindgen_free', '__externref_table_alloc']));
    expect(WebAssembly.Module.customSections(module, '__wasm_bindgen_unstable')).toHaveLength(1);
  });

  it('diff changes put only and leaves out the panic locations whose lines moved; the baseline keeps what the CLI reads', async () => {
    const old = read('records.wasm');
    const baseline = await prepare(old);
    const result = (await diffBuilds(old, read('records-fixed.wasm'), { baseline: baseline.bytes, id: 'refuse-long-records' })) as Hotpatchable;
    expect(result).toMatchObject({ hotpatchable: true, changed: ['put'], added: [], mode: { statics: 'heuristic', names: true } });
    expect(result.leftOut).toEqual([expect.objectContaining({ item: 'data[0]', reason: 'LINE_NUMBERS' })]);
    expect(result.leftOut[0]!.constants.length).toBeGreaterThan(0);
    for (const c of result.leftOut[0]!.constants) expect(c.new - c.old).toBe(5);
    const prepared = compile(baseline.bytes);
    const original = compile(old);
    expect(WebAssembly.Module.imports(prepared)).toEqual(WebAssembly.Module.imports(original));
    expect(WebAssembly.Module.exports(prepared).map((e) => e.name)).toEqual(expect.arrayContaining(WebAssembly.Module.exports(original).map((e) => e.name)));
    expect(Buffer.from(WebAssembly.Module.customSections(prepared, '__wasm_bindgen_unstable')[0]!)).toEqual(Buffer.from(WebAssembly.Module.customSections(original, '__wasm_bindgen_unstable')[0]!));
  });

  it('the same fix with a new warning string is refused: the string moves every static after it', async () => {
    const old = read('records.wasm');
    const result = await diffBuilds(old, read('records-newstring.wasm'), { baseline: (await prepare(old)).bytes, id: 'refuse-long-records' });
    expect(result.hotpatchable).toBe(false);
    if (result.hotpatchable) return;
    const codes = new Set(result.reasons.map((r) => r.code));
    expect([...codes].sort()).toEqual(['ADDRESS_CONSTANTS_CHANGED', 'DATA_CHANGED', 'GLOBAL_CHANGED']);
    // wasm-bindgen's own runtime statics (the externref heap, the exception slot) move with them.
    expect(result.reasons.filter((r) => r.code === 'ADDRESS_CONSTANTS_CHANGED').map((r) => r.item)).toEqual(
      expect.arrayContaining(['get', 'checksum', 'byte_at', '__wbindgen_exn_store', '__externref_table_alloc']),
    );
  });

  it('patches put live through glue-style calls; revert brings the bug back; the stored records are kept', async () => {
    const baseline = await prepare(read('records.wasm'));
    const result = (await diffBuilds(read('records.wasm'), read('records-fixed.wasm'), { baseline: baseline.bytes, id: 'refuse-long-records' })) as Hotpatchable;
    const warnings: string[] = [];
    let memory: WebAssembly.Memory | undefined;
    const guest = await Guest.instantiate(
      baseline.bytes,
      glueImports(compile(baseline.bytes), () => memory!, warnings),
    );
    const e = guest.exports as unknown as Wasm;
    memory = e.memory;
    const g = glue(e);
    const long = Uint8Array.from({ length: 100 }, (_, i) => i);

    expect(g.put(1, Uint8Array.of(1, 2, 3))).toBe(true);
    expect(g.put(2, long)).toBe(true); // the bug: cut to 64 bytes, reported as stored
    expect(g.get(2)).toHaveLength(64);
    expect(g.put(5, new Uint8Array())).toBe(false);
    expect(warnings).toEqual(['put: record refused']);
    expect(() => e.byte_at(1, 3)).toThrow(WebAssembly.RuntimeError); // a bounds-check panic traps

    const patch = guest.apply(await guest.load(result.patch.bytes));
    expect([e.checksum(1), e.checksum(2)]).toEqual([6, (63 * 64) / 2]);
    expect(g.put(3, long)).toBe(false);
    expect(warnings).toEqual(['put: record refused', 'put: record refused']);
    expect(g.get(3)).toEqual([]);
    expect(g.put(3, Uint8Array.of(7, 7))).toBe(true);
    expect(e.byte_at(3, 1)).toBe(7);
    expect(() => e.byte_at(3, 2)).toThrow(WebAssembly.RuntimeError);

    guest.revert(patch);
    expect(g.put(4, long)).toBe(true);
    expect(g.get(4)).toEqual([...long.subarray(0, 64)]);
    expect(g.get(1)).toEqual([1, 2, 3]);
    expect([e.checksum(1), e.checksum(3)]).toEqual([6, 14]);
    // Many glue round trips: the allocator's state survives apply and revert.
    for (let i = 0; i < 1000; i++) expect(g.put(6, Uint8Array.of(i & 0xff, 1))).toBe(true);
    expect(g.get(6)).toEqual([999 & 0xff, 1]);
  });
});
