import { HotpatchError } from '../errors.js';
import { encodeModule, exportEntry, funcImport, Section, typeSection, vector } from '../format/encode.js';
import { parseSignature } from '../format/functype.js';

const adapters = new Map<string, WebAssembly.Module>();

/**
 * A Wasm function of the given signature that calls a JS function: a tiny module that imports it
 * and exports it again, compiled once per signature (Node 20 cannot put a JS function in a table).
 * @throws HotpatchError E_UNSUPPORTED_FEATURE for v128, which a JS function cannot take or return
 */
export function hostFunction(signature: string, impl: Function): Function {
  let module = adapters.get(signature);
  if (!module) {
    const type = parseSignature(signature);
    if ([...type.params, ...type.results].includes('v128')) {
      throw new HotpatchError('E_UNSUPPORTED_FEATURE', `a JavaScript function cannot take or return v128 (${signature})`);
    }
    const bytes = encodeModule([
      [Section.type, typeSection([type])],
      [Section.import, vector([funcImport('h', 'f', 0)])],
      [Section.export, vector([exportEntry('f', 'func', 0)])],
    ]);
    module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    adapters.set(signature, module);
  }
  return new WebAssembly.Instance(module, { h: { f: impl } } as WebAssembly.Imports).exports.f as Function;
}

let empty: WebAssembly.Instance | undefined;

/** An instance with nothing in it: what a patch made of host functions has for `instance`. */
export function emptyInstance(): WebAssembly.Instance {
  return (empty ??= new WebAssembly.Instance(new WebAssembly.Module(encodeModule([]) as Uint8Array<ArrayBuffer>)));
}
