// Random modules that use legacy exception handling (try/catch/catch_all/delegate/rethrow/throw),
// what emscripten's -fwasm-exceptions emits and Node 20 runs: binaryen's fuzzer emits only the
// exnref proposal, which V8 11.3 rejects. Each module is valid by construction: every expression
// leaves one i32, and every label an instruction names is one that may be named there.
import { watToWasm } from '../src/build/wat.js';
import { REFUEL_EXPORT } from './fuzz-host.js';
import { rng } from './rng.js';

type Label = 'try' | 'catch' | 'block' | 'loop' | 'if';

interface Context {
  readonly random: () => number;
  readonly functions: number;
  /** Enclosing labels, innermost last; the function's own label is not listed (its depth is `labels.length`). */
  readonly labels: Label[];
  /** Loop counters in use (locals $c0…$c7). */
  loops: number;
}

const pick = <T>(xs: readonly T[], random: () => number): T => xs[Math.floor(random() * xs.length)]!;
const int = (random: () => number) => pick([0, 1, 2, 7, 10, -1, 100, 0x7fffffff], random);

function within<T>(ctx: Context, label: Label, emit: () => T): T {
  ctx.labels.push(label);
  try {
    return emit();
  } finally {
    ctx.labels.pop();
  }
}

/** An expression that leaves one i32. */
function expr(ctx: Context, depth: number): string {
  const r = ctx.random;
  if (depth <= 0) return pick([`(i32.const ${int(r)})`, '(local.get 0)', '(global.get $g)', '(local.get $p)'], r);
  const e = () => expr(ctx, depth - 1);
  const f = () => Math.floor(r() * ctx.functions);
  switch (Math.floor(r() * 18)) {
    case 0:
      return `(${pick(['i32.add', 'i32.sub', 'i32.mul', 'i32.xor', 'i32.and', 'i32.shl'], r)} ${e()} ${e()})`;
    case 1:
      return `(i32.div_s ${e()} ${e()})`;
    case 2:
      return `(call $f${f()} ${e()})`;
    case 3:
      return `(call_indirect $tab (type $t) ${e()} (i32.rem_u ${e()} (i32.const ${ctx.functions + 1})))`;
    case 4:
      return `(if (result i32) ${e()} (then ${within(ctx, 'if', () => `(throw $e0 ${e()})`)}) (else ${within(ctx, 'if', e)}))`;
    case 5:
    case 6:
      return tryCatch(ctx, depth);
    case 7:
      return `(try (result i32) (do ${within(ctx, 'try', e)}) (delegate ${delegateTarget(ctx)}))`;
    case 8: {
      const catches = ctx.labels.map((l, i) => (l === 'catch' ? ctx.labels.length - 1 - i : -1)).filter((d) => d >= 0);
      if (catches.length === 0) return `(throw $e1)`;
      // Inside the `if`, every catch label is one deeper.
      return `(if (result i32) ${e()} (then (rethrow ${pick(catches, r) + 1})) (else ${within(ctx, 'if', e)}))`;
    }
    case 9:
      return within(ctx, 'block', () => `(block (result i32) (call $host_throw ${e()}) ${e()})`);
    case 10:
      return within(ctx, 'block', () => `(block (result i32) (drop (br_if 0 ${e()} ${e()})) ${e()})`);
    case 11:
      return pick(
        [`(return ${e()})`, `(br ${ctx.labels.length} ${e()})`, `(return_call $f${f()} ${e()})`, `(return_call_indirect $tab (type $t) ${e()} (i32.rem_u ${e()} (i32.const ${ctx.functions})))`],
        r,
      );
    case 12:
      return within(ctx, 'block', () => `(block (result i32) (i32.store (i32.and ${e()} (i32.const 0xfffc)) ${e()}) (i32.load (i32.and ${e()} (i32.const 0xfffc))))`);
    case 13:
      return within(ctx, 'block', () => `(block (result i32) (global.set $g ${e()}) (call $log (global.get $g)) ${e()})`);
    case 14:
      return loop(ctx, depth);
    case 15:
      return `(call $call_export_catch (i32.const ${f()}))`;
    case 16:
      // A branch table that may leave the function (quiescent mode turns that label into a try's).
      return within(ctx, 'block', () => `(block (result i32) (br_table 0 ${ctx.labels.length} ${e()} ${e()}))`);
    default:
      return `(select ${e()} ${e()} ${e()})`;
  }
}

function tryCatch(ctx: Context, depth: number): string {
  const r = ctx.random;
  const e = () => expr(ctx, depth - 1);
  const body = within(ctx, 'try', e);
  const clauses: string[] = [];
  if (r() < 0.7) clauses.push(`(catch $e0 (local.set $p) ${within(ctx, 'catch', e)})`);
  if (r() < 0.4) clauses.push(`(catch $e1 ${within(ctx, 'catch', e)})`);
  if (clauses.length === 0 || r() < 0.5) clauses.push(`(catch_all ${within(ctx, 'catch', () => (r() < 0.3 ? '(rethrow 0)' : e()))})`);
  return `(try (result i32) (do ${body}) ${clauses.join(' ')})`;
}

/** A label a `delegate` may name: an enclosing `try` (its handlers take over) or the function (the caller's do). */
function delegateTarget(ctx: Context): number {
  const tries = ctx.labels.map((l, i) => (l === 'try' ? ctx.labels.length - 1 - i : -1)).filter((d) => d >= 0);
  return ctx.random() < 0.6 && tries.length > 0 ? pick(tries, ctx.random) : ctx.labels.length;
}

/** A bounded loop (its own counter local) that logs and may throw out of itself. */
function loop(ctx: Context, depth: number): string {
  if (ctx.loops >= 8) return `(i32.const ${ctx.loops})`;
  const c = `$c${ctx.loops++}`;
  const bound = 1 + Math.floor(ctx.random() * 5);
  const inner = within(ctx, 'block', () => within(ctx, 'loop', () => expr(ctx, depth - 1)));
  return `(block (result i32) (local.set ${c} (i32.const 0))
    (loop (call $log (local.get ${c})) (local.set $p ${inner})
      (local.set ${c} (i32.add (local.get ${c}) (i32.const 1))) (br_if 0 (i32.lt_u (local.get ${c}) (i32.const ${bound}))))
    (local.get $p))`;
}

/** A random module using legacy exception handling, from a seed. */
export function legacyEhWat(seed: number): string {
  const random = rng(seed);
  const functions = 2 + Math.floor(random() * 5);
  const depth = 2 + Math.floor(random() * 3);
  const bodies = Array.from({ length: functions }, (_, i) => {
    const ctx: Context = { random, functions, labels: [], loops: 0 };
    const body = expr(ctx, depth);
    // Fuel: recursion and re-entry through the host trap after 300 calls; the host refuels
    // before each call it makes (a refill on the trap would let a host that catches it go on forever).
    return `(func $f${i} (export "f${i}") (type $t) (local $p i32) (local $c0 i32) (local $c1 i32) (local $c2 i32) (local $c3 i32) (local $c4 i32) (local $c5 i32) (local $c6 i32) (local $c7 i32)
    (if (i32.eqz (global.get $fuel)) (then (unreachable)))
    (global.set $fuel (i32.sub (global.get $fuel) (i32.const 1)))
    ${body})`;
  });
  return `(module
  (type $t (func (param i32) (result i32)))
  (import "fuzzing-support" "log-i32" (func $log (param i32)))
  (import "fuzzing-support" "throw" (func $host_throw (param i32)))
  (import "fuzzing-support" "call-export-catch" (func $call_export_catch (param i32) (result i32)))
  (tag $e0 (param i32))
  (tag $e1)
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (global $fuel (mut i32) (i32.const 300))
  (func (export "${REFUEL_EXPORT}") (global.set $fuel (i32.const 300)))
  (table $tab ${functions} funcref)
  (elem (table $tab) (i32.const 0) func ${Array.from({ length: functions }, (_, i) => `$f${i}`).join(' ')})
  ${bodies.join('\n  ')})`;
}

/** {@link legacyEhWat}, compiled. */
export async function generateLegacyEh(seed: number): Promise<Uint8Array> {
  return watToWasm(legacyEhWat(seed), `eh-${seed}.wat`);
}
