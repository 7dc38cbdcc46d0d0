import wabtInit from 'wabt';
import { HotpatchError } from '../errors.js';
import { invalidity } from '../format/module.js';

type Wabt = Awaited<ReturnType<typeof wabtInit>>;
let wabt: Promise<Wabt> | undefined;

/** Every feature Node 20's V8 runs by default, so hand-written WAT may use them. */
const FEATURES = {
  mutable_globals: true,
  sat_float_to_int: true,
  sign_extension: true,
  simd: true,
  multi_value: true,
  bulk_memory: true,
  reference_types: true,
  tail_call: true,
  exceptions: true,
  threads: true,
};

/**
 * Compiles WebAssembly text to a binary (with a name section, so stack traces name its functions).
 * @throws HotpatchError E_INVALID_WASM with wabt's messages
 */
export async function watToWasm(text: string, filename = 'patch.wat'): Promise<Uint8Array> {
  wabt ??= wabtInit();
  const lib = await wabt;
  let module: ReturnType<Wabt['parseWat']> | undefined;
  try {
    module = lib.parseWat(filename, text, FEATURES);
    module.resolveNames();
    // wabt.js's validate() ignores the feature flags (it refuses shared memories even with
    // `threads`): V8 validates instead, which is what will run the module anyway.
    const bytes = Uint8Array.from(module.toBinary({ log: false, write_debug_names: true }).buffer);
    const invalid = invalidity(bytes);
    if (invalid) throw new Error(invalid);
    return bytes;
  } catch (cause) {
    throw new HotpatchError('E_INVALID_WASM', `${filename}: ${String((cause as Error).message ?? cause).trim()}`, { cause });
  } finally {
    module?.destroy();
  }
}
