import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Guest } from 'wasm-hotpatch';
import { PatchStore } from 'wasm-hotpatch/runtime';
import { appliedIds, baselineBytes, fixPatch, rolePatch } from './host-fixtures.js';

const unsigned = { policy: { requireSignature: false } };
const fresh = () => mkdtempSync(join(tmpdir(), 'store-attack-'));
const levelFiles = (dir: string, baseline: string) => readdirSync(join(dir, 'levels', baseline)).filter((f) => f.endsWith('.json')).sort();

/** Nothing lost: what the store would restore is exactly what the guest has applied. */
async function agree(store: PatchStore, guest: Guest): Promise<void> {
  expect((store.level(guest.manifest.id)?.applied ?? []).map((a) => a.id).sort()).toEqual(appliedIds(guest.status()).sort());
}

async function guestWith(store: PatchStore, ...patches: Uint8Array[]): Promise<Guest> {
  const guest = await Guest.instantiate(baselineBytes, {}, unsigned);
  for (const bytes of patches) {
    store.add(bytes);
    guest.apply(await guest.load(bytes), { force: true });
    await store.record(guest.async);
  }
  return guest;
}

describe('attacks on the patch store', () => {
  it('a torn level file: the previous generation is used, set aside, and the next record follows it', async () => {
    const dir = fresh();
    using store = PatchStore.open(dir);
    const guest = await guestWith(store, fixPatch, await rolePatch('r2', 2));
    const newest = join(dir, 'levels', guest.manifest.id, levelFiles(dir, guest.manifest.id).at(-1)!);
    truncateSync(newest, 20);
    const level = store.level(guest.manifest.id)!;
    expect(level.generation).toBe(1);
    expect(store.healed.join('\n')).toMatch(/damaged: set aside/);
    expect(existsSync(`${newest}.damaged`)).toBe(true);
    // The next record is not blocked, and it records the guest's level (both patches), not the torn one's predecessor.
    expect(await store.record(guest.async)).toMatchObject({ generation: 3, applied: [{ id: 'fix-name-overflow' }, { id: 'r2' }] });
    await agree(store, guest);
  });

  it('a damaged patch file: checked on every record and restore, rewritten from the bytes in memory', async () => {
    const dir = fresh();
    using store = PatchStore.open(dir);
    const guest = await guestWith(store, fixPatch);
    const sha = store.level(guest.manifest.id)!.applied[0]!.sha256;
    const file = join(dir, 'patches', `${sha}.wasm`);
    truncateSync(file, 100);
    await store.record(guest.async);
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(sha);
    expect(store.healed.join('\n')).toMatch(/rewritten/);
    await agree(store, guest);
  });

  it('a store folder others can write is refused, saying how to fix it', () => {
    const dir = fresh();
    chmodSync(dir, 0o777);
    expect(() => PatchStore.open(dir)).toThrowError(expect.objectContaining({ code: 'E_STORE_UNSAFE', message: expect.stringContaining(`chmod 700 ${dir}`) }));
    mkdirSync(join(dir, 'levels'), { mode: 0o775 });
    chmodSync(dir, 0o700);
    chmodSync(join(dir, 'levels'), 0o775);
    expect(() => PatchStore.open(dir)).toThrowError(expect.objectContaining({ code: 'E_STORE_UNSAFE', message: expect.stringContaining('group') }));
    chmodSync(join(dir, 'levels'), 0o700);
    PatchStore.open(dir).close();
    expect(statSync(join(dir, 'patches')).mode & 0o777).toBe(0o700);
  });

  it('the sequence floor survives revert and restart; an older cumulative level put back by hand is refused', async () => {
    const dir = fresh();
    const c1 = await rolePatch('c1', 1, { cumulative: true });
    const c2 = await rolePatch('c2', 2, { cumulative: true });
    let baseline: string;
    {
      using store = PatchStore.open(dir);
      const guest = await guestWith(store, c1, c2);
      baseline = guest.manifest.id;
      guest.revert('c2');
      expect(await store.record(guest.async)).toMatchObject({ floor: 2, applied: [] });
      // Below the floor: refused for good, though c2 is no longer applied.
      expect(() => store.admit(baseline, { id: 'c1', sequence: 1 })).toThrowError(expect.objectContaining({ code: 'E_DOWNGRADE' }));
      await agree(store, guest);
    }
    {
      using store = PatchStore.open(dir);
      expect(store.floor(baseline)).toBe(2);
      // Whoever can write the folder copies generation 1 (c1 applied) back as the newest level.
      const files = levelFiles(dir, baseline);
      const first = JSON.parse(readFileSync(join(dir, 'levels', baseline, files[0]!), 'utf8'));
      const forged = { generation: 9, floor: first.floor, applied: first.applied };
      writeFileSync(join(dir, 'levels', baseline, '000000000009.json'), JSON.stringify({ ...forged, check: createHash('sha256').update(JSON.stringify(forged)).digest('hex') }));
      const guest = await Guest.instantiate(baselineBytes, {}, unsigned);
      await expect(store.restore(guest.async)).rejects.toMatchObject({ code: 'E_DOWNGRADE' });
      expect(appliedIds(guest.status())).toEqual([]);
    }
  });

  it('one writer at a time: a second open is refused naming the holder; a dead holder\'s lock is taken over', () => {
    const dir = fresh();
    const first = PatchStore.open(dir);
    expect(() => PatchStore.open(dir)).toThrowError(expect.objectContaining({ code: 'E_STORE_LOCKED', message: expect.stringContaining('already open in this process') }));
    const other = spawnSync(process.execPath, ['--input-type=module', '-e', `import { PatchStore } from 'wasm-hotpatch/runtime'; try { PatchStore.open(${JSON.stringify(dir)}); } catch (e) { console.log(e.code, e.message); }`], { encoding: 'utf8', cwd: process.cwd() });
    expect(other.stdout).toContain(`E_STORE_LOCKED the store ${dir} is in use by process ${process.pid}`);
    first.close();
    // A lock left by a process that died (its pid no longer runs) is stale.
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    writeFileSync(join(dir, 'lock'), dead.stdout);
    PatchStore.open(dir).close();
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });
});
