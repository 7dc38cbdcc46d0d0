import { ByteReader } from '../format/bytes.js';
import type { DiffReason } from './_eligibility.js';
import type { WasmModule } from '../format/module.js';
import type { Build } from './_match.js';

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Where each static symbol is, as the code that uses it says: the constant minus its addend. */
function addresses(build: Build): Map<string, number> {
  const out = new Map<string, number>();
  const bytes = build.module.bytes;
  for (const reloc of build.linking!.addressAt.values()) {
    const r = new ByteReader(bytes, reloc.at);
    const opcode = bytes[reloc.at - 1];
    const value = opcode === 0x41 ? r.s32() : r.u32(); // i32.const is signed; memarg offsets are not
    out.set(reloc.symbol, (value - reloc.addend) >>> 0);
  }
  return out;
}

/**
 * Statics live in linear memory, not in Wasm globals: a new, moved or resized static changes only
 * address constants in code. With relocations (`-Wl,--emit-relocs`) every such constant names
 * its symbol, so the answer is exact: each static used by the new code must be where it was.
 */
export function staticReasons(oldBuild: Build, newBuild: Build): DiffReason[] {
  const reasons: DiffReason[] = [];
  const before = addresses(oldBuild);
  const after = addresses(newBuild);
  const oldSymbols = new Map(oldBuild.linking!.dataSymbols.map((s) => [s.name, s]));
  const newSymbols = new Map(newBuild.linking!.dataSymbols.map((s) => [s.name, s]));
  for (const [name, address] of after) {
    const was = before.get(name);
    const old = oldSymbols.get(name);
    if (was === undefined && !old) {
      reasons.push({
        code: 'STATIC_ADDED',
        item: name,
        message: `static \`${name}\` is new (at ${hex(address)}): the running guest's memory layout has no room for it; keep the state in an existing static, or ship it with a new baseline`,
      });
    } else if (was !== undefined && was !== address) {
      reasons.push({
        code: 'STATIC_MOVED',
        item: name,
        message: `static \`${name}\` moved from ${hex(was)} to ${hex(address)} (statics were added, removed or reordered before it); code using the new address would read other data in the running guest; ship it with a new baseline`,
      });
    }
    const size = newSymbols.get(name)?.size;
    if (old?.size !== undefined && size !== undefined && old.size !== size) {
      reasons.push({ code: 'STATIC_RESIZED', item: name, message: `static \`${name}\` changed size (${old.size} → ${size} bytes); ship it with a new baseline` });
    }
  }
  return reasons;
}

/** The range of linear memory that holds statics, as far as a build without relocations tells. */
export function staticRange(m: WasmModule): [number, number] {
  const memory = m.memories[0] ?? m.imports.find((i) => i.kind === 'memory')?.memory;
  return [1024, (memory?.min ?? 0) * 65536]; // wasm-ld and emscripten place statics from 1024 up
}
