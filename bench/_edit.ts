import { ByteReader } from '../src/format/bytes.js';
import { newInstruction, readInstruction } from '../src/format/instructions.js';
import { parseModule } from '../src/format/module.js';

/**
 * A second "build" of a module with one function's code changed: the first `i32.const` with a
 * one-byte value in the `nth` function that has one gets a different value of the same size.
 * Returns the edited bytes and the edited function's index.
 */
export function editOneConstant(wasm: Uint8Array, nth = 0): { bytes: Uint8Array; index: number } {
  const module = parseModule(wasm);
  let seen = 0;
  for (let k = 0; k < module.bodies.length; k++) {
    const body = module.bodies[k]!;
    const r = new ByteReader(wasm, body.codeStart, body.end);
    const ins = newInstruction();
    while (!r.done) {
      readInstruction(r, ins);
      if (ins.op === 0x41 && ins.end - ins.start === 2 && (wasm[ins.start + 1]! & 0x40) === 0 && wasm[ins.start + 1]! > 1) {
        if (seen++ < nth) break;
        const bytes = wasm.slice();
        bytes[ins.start + 1] = wasm[ins.start + 1]! ^ 1;
        return { bytes, index: module.importedFunctions + k };
      }
    }
  }
  throw new Error('no function with a small i32.const');
}
