import { ByteReader } from '../format/bytes.js';

/** A line number stored in data that moved between the builds. */
export interface DataLine {
  readonly address: number;
  readonly old: number;
  readonly new: number;
}

/** An active data segment entry's address and bytes, or undefined for other kinds. */
function activeSegment(entry: Uint8Array): { address: number; data: Uint8Array } | undefined {
  const r = new ByteReader(entry);
  if (r.u32() !== 0 || r.u8() !== 0x41) return undefined;
  const address = r.s32() >>> 0;
  if (r.u8() !== 0x0b) return undefined;
  const size = r.u32();
  return { address, data: entry.subarray(r.pos, r.pos + size) };
}

const word = (d: Uint8Array, k: number): number => (k < 0 || k + 4 > d.length ? -1 : (d[k]! | (d[k + 1]! << 8) | (d[k + 2]! << 16) | (d[k + 3]! << 24)) >>> 0);

/**
 * Rust keeps source lines in data, not in code: every panic site passes the address of a
 * `core::panic::Location { file: &str, line: u32, col: u32 }` (file pointer, file length, line,
 * column; 4 bytes each on wasm32). A fix that adds or removes lines changes only the line fields of
 * the locations below it. Returns those changes when every differing byte of two equally long
 * segments is such a field (a pointer into `statics` and a short length before it, the column
 * after it unchanged); undefined when anything else changed.
 */
export function locationLineChanges(oldEntry: Uint8Array, newEntry: Uint8Array, statics: readonly [number, number]): DataLine[] | undefined {
  const a = activeSegment(oldEntry);
  const b = activeSegment(newEntry);
  if (!a || !b || a.address !== b.address || a.data.length !== b.data.length) return undefined;
  const lines: DataLine[] = [];
  const base = a.address;
  for (let k = 0; k < a.data.length; k++) {
    if (a.data[k] === b.data[k]) continue;
    const field = k - ((base + k) % 4); // the aligned word holding this byte
    if (lines.some((l) => l.address === base + field)) continue;
    const [file, length, column] = [word(a.data, field - 8), word(a.data, field - 4), word(a.data, field + 4)];
    const sameAround = [field - 8, field - 4, field + 4].every((x) => word(a.data, x) === word(b.data, x));
    const [before, after] = [word(a.data, field), word(b.data, field)];
    const plausible = file >= statics[0] && file < statics[1] && length > 0 && length < 4096 && column < 10_000 && before < 1 << 20 && after < 1 << 20;
    if (!sameAround || !plausible) return undefined;
    lines.push({ address: base + field, old: before, new: after });
  }
  return lines;
}
