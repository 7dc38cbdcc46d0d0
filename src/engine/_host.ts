import { HotpatchError } from '../errors.js';
import { ByteWriter } from '../format/bytes.js';
import { encodeFuncType, type FuncType, kindByte, type ValType } from '../format/module.js';

const VALTYPES = new Set<ValType>(['i32', 'i64', 'f32', 'f64', 'v128', 'funcref', 'externref']);

/** Parses signature text as the manifest writes it, `(i32, i64) -> (f64)`. */
export function parseSignature(text: string): FuncType {
  const m = /^\((.*)\) -> \((.*)\)$/.exec(text);
  const list = (s: string): ValType[] => (s.trim() === '' ? [] : s.split(',').map((x) => x.trim() as ValType));
  const type = m ? { params: list(m[1]!), results: list(m[2]!) } : undefined;
  if (!type || ![...type.params, ...type.results].every((t) => VALTYPES.has(t))) {
    throw new HotpatchError('E_MANIFEST_INVALID', `not a signature: ${text}`);
  }
  return type;
}

const adapters = new Map<string, WebAssembly.Module>();

/**
 * A Wasm function of the given signature that calls a JS function: a tiny module that imports it
 * and exports it again, compiled once per signature (Node 20 cannot put a JS function in a table).
 */
export function hostFunction(signature: string, impl: Function): Function {
  let module = adapters.get(signature);
  if (!module) {
    const type = parseSignature(signature);
    if ([...type.params, ...type.results].includes('v128')) {
      throw new HotpatchError('E_UNSUPPORTED_FEATURE', `a JavaScript function cannot take or return v128 (${signature})`);
    }
    const section = (id: number, content: Uint8Array) => new ByteWriter().u8(id).u32(content.length).bytes(content).finish();
    const bytes = new ByteWriter()
      .bytes(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))
      .bytes(section(1, new ByteWriter().u32(1).bytes(encodeFuncType(type)).finish()))
      .bytes(section(2, new ByteWriter().u32(1).name('h').name('f').u8(kindByte('func')).u32(0).finish()))
      .bytes(section(7, new ByteWriter().u32(1).name('f').u8(kindByte('func')).u32(0).finish()))
      .finish();
    module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    adapters.set(signature, module);
  }
  return new WebAssembly.Instance(module, { h: { f: impl } } as WebAssembly.Imports).exports.f as Function;
}

let empty: WebAssembly.Instance | undefined;

/** An instance with nothing in it: what a patch made of host functions has for `instance`. */
export function emptyInstance(): WebAssembly.Instance {
  return (empty ??= new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))));
}
