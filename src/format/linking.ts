import { ByteReader } from './bytes.js';
import type { WasmModule } from './module.js';

/** A data symbol of wasm-ld's symbol table: a static variable or constant in linear memory. */
export interface DataSymbol {
  readonly name: string;
  readonly segment?: number;
  readonly offset?: number;
  readonly size?: number;
}

/** A relocation that makes a code immediate a memory address: `symbol + addend`. */
export interface MemoryReloc {
  /** Byte offset of the immediate, absolute in the module. */
  readonly at: number;
  readonly symbol: string;
  readonly addend: number;
}

/** What `-Wl,--emit-relocs` leaves in a linked binary, as far as diff needs it. */
export interface Linking {
  readonly dataSymbols: readonly DataSymbol[];
  /** Memory-address relocations in code, keyed by the absolute position of the immediate. */
  readonly addressAt: ReadonlyMap<number, MemoryReloc>;
  readonly segmentNames: readonly string[];
}

// Relocation types whose entries carry an addend (tool-conventions/Linking.md).
const WITH_ADDEND = new Set([3, 4, 5, 8, 9, 11, 14, 15, 16, 17, 21, 22, 23, 25]);
// Of those, the ones that encode a memory address in a code immediate: i32/i64.const (SLEB) and
// load/store offsets (LEB).
const MEMORY_ADDR_CODE = new Set([3, 4, 11, 14, 15, 17, 21, 25]);

/**
 * Reads the linking and reloc.CODE sections of a binary linked with `--emit-relocs`, or returns
 * undefined when it has none. Malformed sections are treated as absent: they are debug data.
 */
export function readLinking(module: WasmModule): Linking | undefined {
  const linking = module.sections.find((s) => s.id === 0 && s.name === 'linking');
  const relocCode = module.sections.find((s) => s.id === 0 && s.name === 'reloc.CODE');
  const code = module.sections.find((s) => s.id === 10);
  if (!linking || !relocCode || !code) return undefined;
  try {
    const symbols: { kind: number; name?: string }[] = [];
    const dataSymbols: DataSymbol[] = [];
    const segmentNames: string[] = [];
    const r = new ByteReader(module.bytes, linking.payloadStart!, linking.end);
    if (r.u32() !== 2) return undefined;
    while (!r.done) {
      const id = r.u8();
      const size = r.u32();
      const end = r.pos + size;
      const s = new ByteReader(module.bytes, r.pos, end);
      if (id === 8) {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const kind = s.u8();
          const flags = s.u32();
          const undefinedSym = (flags & 0x10) !== 0;
          const explicitName = (flags & 0x40) !== 0;
          if (kind === 1) {
            const name = s.name();
            if (!undefinedSym) {
              const segment = s.u32();
              const offset = s.u32();
              const sz = s.u32();
              dataSymbols.push({ name, segment, offset, size: sz });
            } else dataSymbols.push({ name });
            symbols.push({ kind, name });
          } else if (kind === 3) {
            s.u32();
            symbols.push({ kind });
          } else {
            s.u32();
            const name = !undefinedSym || explicitName ? s.name() : undefined;
            symbols.push(name === undefined ? { kind } : { kind, name });
          }
        }
      } else if (id === 5) {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          segmentNames.push(s.name());
          s.u32();
          s.u32();
        }
      }
      r.pos = end;
    }
    const addressAt = new Map<number, MemoryReloc>();
    const rc = new ByteReader(module.bytes, relocCode.payloadStart!, relocCode.end);
    rc.u32(); // target section index
    const count = rc.u32();
    for (let i = 0; i < count; i++) {
      const type = rc.u8();
      const offset = rc.u32();
      const index = rc.u32();
      const addend = WITH_ADDEND.has(type) ? rc.s32() : 0;
      const symbol = symbols[index];
      if (MEMORY_ADDR_CODE.has(type) && symbol?.name !== undefined) {
        // Offsets are relative to the code section's content.
        addressAt.set(code.contentStart + offset, { at: code.contentStart + offset, symbol: symbol.name, addend });
      }
    }
    return { dataSymbols, addressAt, segmentNames };
  } catch {
    return undefined;
  }
}
