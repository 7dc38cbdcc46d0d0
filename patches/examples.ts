// The worked examples: how each baseline and patch in patches/ is made. Used by
// build-artifacts.ts (which writes them) and by the tests (which check the checked-in files are
// exactly what these produce, and that each patch does what its README says).
import { readFileSync } from 'node:fs';
import { buildPatch } from '../src/build/build.js';
import { diffBuilds, type DiffReason } from '../src/build/diff.js';
import { prepare } from '../src/prepare/prepare.js';

const here = (path: string): URL => new URL(path, import.meta.url);
export const read = (path: string): Uint8Array => new Uint8Array(readFileSync(here(path)));
const text = (path: string): string => readFileSync(here(path), 'utf8');

/** A file an example checks in, and how to make it. */
export interface Artifact {
  readonly path: string;
  make(): Promise<Uint8Array>;
}

async function diffPatch(old: string, fresh: string, id: string, description: string): Promise<Uint8Array> {
  const baseline = await prepare(read(old));
  const result = await diffBuilds(read(old), read(fresh), { baseline: baseline.bytes, id, description });
  if (!result.hotpatchable) throw new Error(`${id}: ${result.reasons.map((r) => r.message).join('; ')}`);
  return result.patch.bytes;
}

export const artifacts: Artifact[] = [
  { path: 'account-service/service.baseline.wasm', make: async () => (await prepare(read('account-service/service.wasm'))).bytes },
  {
    path: 'account-service/fix-name-overflow.patch.wasm',
    make: async () =>
      (
        await buildPatch({
          wat: text('account-service/fix-name-overflow.wat'),
          manifest: JSON.parse(text('account-service/fix-name-overflow.json')),
          baseline: read('account-service/service.baseline.wasm'),
        })
      ).bytes,
  },
  {
    path: 'account-service/fix-name-overflow-c.patch.wasm',
    make: () => diffPatch('account-service/service.wasm', 'account-service/service-fixed.wasm', 'fix-name-overflow-c', 'set_name: copy len bytes and write the terminator (from service-fixed.c)'),
  },
  { path: 'rust-quota/quota.baseline.wasm', make: async () => (await prepare(read('rust-quota/quota.wasm'))).bytes },
  {
    path: 'rust-quota/fix-quota-overflow.patch.wasm',
    make: () => diffPatch('rust-quota/quota.wasm', 'rust-quota/quota-fixed.wasm', 'fix-quota-overflow', 'reserve: compare with the room left, which cannot overflow'),
  },
  { path: 'rust-frames-refused/frames.baseline.wasm', make: async () => (await prepare(read('rust-frames-refused/frames.wasm'))).bytes },
  { path: 'rust-shadow/accounts.baseline.wasm', make: async () => (await prepare(read('rust-shadow/accounts.wasm'))).bytes },
  {
    path: 'rust-shadow/lock-after-3-rust.patch.wasm',
    make: () =>
      diffPatch(
        'rust-shadow/accounts.wasm',
        'rust-shadow/accounts-fixed.wasm',
        'lock-after-3-rust',
        'login: lock an account after 3 wrong PINs in a row (from accounts-fixed.rs; counter in a shadow field)',
      ),
  },
  {
    path: 'rust-shadow/lock-after-3.patch.wasm',
    make: async () =>
      (
        await buildPatch({
          wat: text('rust-shadow/lock-after-3.wat'),
          manifest: JSON.parse(text('rust-shadow/lock-after-3.json')),
          baseline: read('rust-shadow/accounts.baseline.wasm'),
          hostImports: ['hotpatch.shadow.get_or_alloc', 'hotpatch.shadow.free_all'],
        })
      ).bytes,
  },
];

/** The refused example's answer: every reason the tool gives. */
export async function framesRefusal(): Promise<readonly DiffReason[]> {
  const old = read('rust-frames-refused/frames.wasm');
  const result = await diffBuilds(old, read('rust-frames-refused/frames-fixed.wasm'), { baseline: read('rust-frames-refused/frames.baseline.wasm'), id: 'fix-frames' });
  if (result.hotpatchable) throw new Error('the frames fix was expected to need a new baseline');
  return result.reasons;
}

/** AssemblyScript is compiled during the tests (it installs from npm): the leaderboard, old and fixed. */
export async function compileLeaderboard(): Promise<{ old: Uint8Array; fixed: Uint8Array }> {
  const { default: asc } = await import('assemblyscript/asc');
  const compile = async (file: string): Promise<Uint8Array> => {
    const result = await asc.compileString(text(file), { optimizeLevel: 3, shrinkLevel: 0, runtime: 'stub' });
    if (result.error || !result.binary) throw new Error(`${file}: ${result.error?.message ?? 'no output'}\n${result.stderr.toString()}`);
    return result.binary;
  };
  return { old: await compile('as-leaderboard/leaderboard.ts'), fixed: await compile('as-leaderboard/leaderboard-fixed.ts') };
}
