// Interpreter workloads for the cost of being patchable: QuickJS (quickjs-emscripten) and Lua 5.4
// (wasmoon), both emscripten builds run through their own glue with the bytes we hand them.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newQuickJSWASMModuleFromVariant, newVariant, RELEASE_SYNC } from 'quickjs-emscripten';

const require = createRequire(import.meta.url);

export const quickJsWasm = (): Uint8Array => new Uint8Array(readFileSync(require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm')));
export const luaWasm = (): Uint8Array => new Uint8Array(readFileSync(join(require.resolve('wasmoon'), '../glue.wasm')));

/** JavaScript an interpreter spends its time on: calls, property access, closures, strings. */
const JS_WORKLOAD = `(() => {
  function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
  let acc = 0;
  const o = { a: 1, b: 2 };
  for (let i = 0; i < 2000; i++) { o.a = (o.a + i) % 97; acc += o.a * o.b; }
  const words = []; for (let i = 0; i < 200; i++) words.push('w' + i);
  return fib(16) + acc + words.join(',').length;
})()`;

/** A fresh QuickJS module running the given bytes; returns one round of the workload. */
export async function quickJs(wasmBinary: Uint8Array): Promise<() => unknown> {
  const variant = newVariant(RELEASE_SYNC, { wasmBinary: wasmBinary.slice().buffer });
  const qjs = await newQuickJSWASMModuleFromVariant(variant);
  const vm = qjs.newContext();
  return () => {
    const result = vm.unwrapResult(vm.evalCode(JS_WORKLOAD));
    const n = vm.getNumber(result);
    result.dispose();
    return n;
  };
}

const LUA_WORKLOAD = `
  local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
  local t = {}
  for i = 1, 2000 do t[i] = (i * 7) % 13 end
  local acc = 0
  for i = 1, #t do acc = acc + t[i] end
  local parts = {}
  for i = 1, 200 do parts[#parts + 1] = tostring(i) end
  return fib(16) + acc + #table.concat(parts, ",")
`;

let copies = 0;
/** A fresh Lua 5.4 engine (wasmoon) running the given bytes; returns one round of the workload. */
export async function lua(bytes: Uint8Array): Promise<() => unknown> {
  const { LuaFactory } = (await import('wasmoon')) as typeof import('wasmoon');
  // wasmoon's glue loads its module by path: each variant gets its own file.
  const file = join(mkdtempSync(join(tmpdir(), 'lua-bench-')), `glue${copies++}.wasm`);
  writeFileSync(file, bytes);
  const engine = await new LuaFactory(file).createEngine();
  return () => engine.doStringSync(LUA_WORKLOAD);
}
