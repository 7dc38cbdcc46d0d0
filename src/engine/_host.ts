import { HotpatchError } from '../errors.js';
import { ByteWriter } from '../format/bytes.js';
import { encodeFuncType, kindByte } from '../format/module.js';
import { parseSignature } from '../format/functype.js';

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
