import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepare } from '../src/prepare/prepare.js';
import { digest, outcome, watFixture } from './helpers.js';

type Call = [name: string, ...args: unknown[]];

/** Every export of features.wat, with inputs that reach its interesting paths (and its traps). */
const SCRIPT: Call[] = [
  ['started'],
  ['host', 2, 3],
  ['divmod', 17, 5],
  ['divmod_sum', 17, 5],
  ['divmod', 1, 0],
  ['signext', 0x80],
  ['signext', 0x7f],
  ['satconv', 1e12],
  ['satconv', -1e12],
  ['satconv', Number.NaN],
  ['trapconv', 1e12],
  ['simd_sum', 64],
  ['bulk', 128],
  ['bulk', 65530],
  ['table_ops', 10],
  ['table_size'],
  ['table_ops', 11],
  ['store_ext', { hello: 1 }],
  ['is_null_ext', null],
  ['bump'],
  ['bump'],
  ['count_down', 100000, 1],
  ['tail_indirect', 41],
  ['catching', 5],
  ['catching', 50],
  ['div', 7, 0],
  ['div', -2147483648, -1],
  ['oob', 70000],
  ['boom'],
  ['deep', 1000],
  ['grow'],
  ['grow'],
  ['oob', 70000],
];

async function instantiate(bytes: Uint8Array) {
  const imports = { env: { host_add: (a: number, b: number) => a + b, imported_global: new WebAssembly.Global({ value: 'i32' }, 41) } };
  const { instance } = await WebAssembly.instantiate(bytes as BufferSource, imports);
  return instance.exports as Record<string, any>;
}

function run(exports: Record<string, any>, calls: Call[]) {
  return calls.map(([name, ...args]) => ({
    call: `${name}(${args.map(String).join(', ')})`,
    ...(outcome(() => exports[name](...args)) as object),
    memory: digest((exports.memory as WebAssembly.Memory).buffer),
  }));
}

for (const dispatch of ['entry', 'indirect'] as const) {
  describe(`prepare (${dispatch} dispatch) preserves behaviour exactly`, () => {
    let original: Uint8Array;
    let prepared: Uint8Array;
    beforeAll(async () => {
      original = await watFixture('features.wat');
      prepared = (await prepare(original, { dispatch })).bytes;
    });

    it('gives the same results, traps and memory for every feature', async () => {
      const expected = run(await instantiate(original), SCRIPT);
      const actual = run(await instantiate(prepared), SCRIPT);
      expect(actual).toEqual(expected);
      // The script really does reach traps and results: the comparison is not vacuous.
      expect(expected.filter((r) => 'trap' in r).length).toBeGreaterThanOrEqual(6);
      expect(expected.find((r) => r.call === 'count_down(100000, 1)')).toMatchObject({ value: 200001 });
    });

    it('agrees with the original on random inputs', async () => {
      const a = await instantiate(original);
      const b = await instantiate(prepared);
      const names = ['divmod_sum', 'signext', 'satconv', 'div', 'count_down', 'catching', 'tail_indirect', 'oob'];
      fc.assert(
        fc.property(fc.constantFrom(...names), fc.integer(), fc.integer({ min: 0, max: 5000 }), fc.double(), (name, x, small, d) => {
          const args = name === 'satconv' ? [d] : name === 'count_down' ? [small, x] : name === 'oob' ? [x >>> 0] : [x, small];
          expect(outcome(() => b[name](...args))).toEqual(outcome(() => a[name](...args)));
        }),
        { numRuns: 300 },
      );
    });
  });
}
