import { HotpatchError } from '../errors.js';

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** A cursor over Wasm binary bytes: LEB128 integers, names, raw slices. */
export class ByteReader {
  readonly bytes: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(bytes: Uint8Array, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  #fail(what: string): never {
    throw new HotpatchError('E_INVALID_WASM', `malformed module: ${what} at byte ${this.pos}`);
  }

  u8(): number {
    if (this.pos >= this.end) this.#fail('unexpected end');
    return this.bytes[this.pos++]!;
  }

  /** Unsigned LEB128 up to 32 bits. */
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.u8();
      if (shift === 28 && byte > 0x0f) this.#fail('u32 out of range');
      result |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
  }

  /** Skips any LEB128 number (signed or unsigned, up to 64 bits). */
  skipLeb(): void {
    for (let i = 0; i < 10; i++) {
      if ((this.u8() & 0x80) === 0) return;
    }
    this.#fail('LEB128 too long');
  }

  /** Signed LEB128 up to 33 bits (block types), returned as a number. */
  s33(): number {
    let result = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = this.u8();
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80 && shift < 35);
    if (byte & 0x80) this.#fail('s33 too long');
    if (byte & 0x40) result -= 2 ** shift;
    return result;
  }

  /** Signed LEB128 up to 32 bits. */
  s32(): number {
    let result = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = this.u8();
      result |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80 && shift < 35);
    if (byte & 0x80) this.#fail('s32 too long');
    if (shift < 32 && byte & 0x40) result |= -1 << shift;
    return result | 0;
  }

  /** Signed LEB128 up to 64 bits, as a bigint. */
  s64(): bigint {
    let result = 0n;
    let shift = 0n;
    let byte: number;
    do {
      byte = this.u8();
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
    } while (byte & 0x80 && shift < 70n);
    if (byte & 0x80) this.#fail('s64 too long');
    if (shift < 64n && byte & 0x40) result |= -1n << shift;
    return BigInt.asIntN(64, result);
  }

  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) this.#fail(`${n} bytes past the end`);
    const slice = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return slice;
  }

  skip(n: number): void {
    this.take(n);
  }

  name(): string {
    const len = this.u32();
    // Short ASCII names (export and function names, mostly) without TextDecoder: a decode call
    // costs ~80 ns, 4× building the string here; ASCII is valid UTF-8, so the answer is the same.
    if (len <= 32 && this.pos + len <= this.end) {
      const bytes = this.bytes;
      let text = '';
      let i = 0;
      for (; i < len; i++) {
        const c = bytes[this.pos + i]!;
        if (c > 0x7f) break;
        text += String.fromCharCode(c);
      }
      if (i === len) {
        this.pos += len;
        return text;
      }
    }
    try {
      return utf8Decoder.decode(this.take(len));
    } catch (cause) {
      if (cause instanceof HotpatchError) throw cause;
      this.#fail('name is not UTF-8');
    }
  }
}

/** A growable byte buffer that writes the Wasm binary encodings. */
export class ByteWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  u8(byte: number): this {
    this.#reserve(1);
    this.#buf[this.#len++] = byte & 0xff;
    return this;
  }

  u32(value: number): this {
    let v = value >>> 0;
    do {
      let byte = v & 0x7f;
      v >>>= 7;
      if (v !== 0) byte |= 0x80;
      this.u8(byte);
    } while (v !== 0);
    return this;
  }

  s32(value: number): this {
    let v = value | 0;
    for (;;) {
      const byte = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
        return this.u8(byte);
      }
      this.u8(byte | 0x80);
    }
  }

  bytes(data: Uint8Array): this {
    this.#reserve(data.length);
    this.#buf.set(data, this.#len);
    this.#len += data.length;
    return this;
  }

  /** Appends `src[start..end)`; a byte loop, since most instructions are a few bytes (no view made per copy). */
  copy(src: Uint8Array, start: number, end: number): this {
    const n = end - start;
    if (n <= 0) return this;
    this.#reserve(n);
    const buf = this.#buf;
    if (n > 32) buf.set(src.subarray(start, end), this.#len);
    else for (let k = 0; k < n; k++) buf[this.#len + k] = src[start + k]!;
    this.#len += n;
    return this;
  }

  name(text: string): this {
    const data = utf8Encoder.encode(text);
    return this.u32(data.length).bytes(data);
  }

  /** Writes a length-prefixed vector whose contents `fill` writes. */
  sized(fill: (w: ByteWriter) => void): this {
    const inner = new ByteWriter();
    fill(inner);
    return this.u32(inner.length).bytes(inner.finish());
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** Encodes text as UTF-8. */
export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

const lenientDecoder = new TextDecoder();

/** Decodes UTF-8 text. */
export function fromUtf8(bytes: Uint8Array): string {
  return lenientDecoder.decode(bytes);
}
