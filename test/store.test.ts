import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Guest } from 'wasm-hotpatch';
import { PatchStore, SupervisedGuest } from 'wasm-hotpatch/runtime';
import { appliedIds, baselineBytes, baselinePath, fixPatch, fixPatchC, release, rolePatch } from './host-fixtures.js';

const KILLS = Number(process.env.STORE_KILLS ?? 12);

describe('a patch level that survives restart', () => {
  it('records what the guest has applied, however each patch came in: fix A, restart, fix B, restart brings back A and B', async () => {
    const { policy, sign } = await release();
    const dir = mkdtempSync(join(tmpdir(), 'store-'));
    const a = await sign(fixPatch);
    const b = await sign(await rolePatch('role-fix', 2));
    // Host 1: fix A, through the library.
    {
      using store = PatchStore.open(dir);
      const guest = await Guest.instantiate(baselineBytes, {}, { policy });
      store.add(a);
      guest.apply(await guest.load(a));
      expect(await store.record(guest.async)).toMatchObject({ generation: 1, applied: [{ id: 'fix-name-overflow' }] });
    }
    // Host 2 (a guest in a worker, restored at start): fix B; the record names both though only B came in here.
    {
      using store = PatchStore.open(dir);
      await using worker = await SupervisedGuest.start(baselineBytes, { policy, store });
      store.add(b);
      await worker.load(b);
      await worker.apply('role-fix');
      const level = await store.record(worker);
      expect(level.applied.map((p) => p.id)).toEqual(['fix-name-overflow', 'role-fix']);
      expect(appliedIds(await worker.status())).toEqual(level.applied.map((p) => p.id));
    }
    // Host 3: both come back, signatures verified again.
    using store = PatchStore.open(dir);
    const guest = await Guest.instantiate(baselineBytes, {}, { policy });
    expect(await store.restore(guest.async)).toMatchObject({ generation: 2, floor: 2 });
    expect(appliedIds(guest.status())).toEqual(['fix-name-overflow', 'role-fix']);
    // A tampered stored patch is refused again on restart (this store holds no copy to heal it from).
    const stored = join(dir, 'patches', `${store.level(guest.manifest.id)!.applied[0]!.sha256}.wasm`);
    const bytes = readFileSync(stored);
    bytes[40]! ^= 1;
    writeFileSync(stored, bytes);
    store.close();
    using reopened = PatchStore.open(dir);
    await expect(reopened.restore((await Guest.instantiate(baselineBytes, {}, { policy })).async)).rejects.toMatchObject({ code: 'E_STORE_CORRUPT' });
  });

  it('records in apply order, so stacked patches come back stacked the same way', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'store-order-'));
    using store = PatchStore.open(dir);
    const guest = await Guest.instantiate(baselineBytes, {}, { policy: { requireSignature: false } });
    // Loaded C first, applied it second: the level follows the stack, not the load order.
    for (const bytes of [fixPatchC, fixPatch]) await guest.load(store.add(bytes) && bytes);
    guest.apply('fix-name-overflow');
    guest.apply('fix-name-overflow-c', { force: true });
    const level = await store.record(guest.async);
    expect(level.applied.map((p) => p.id)).toEqual(['fix-name-overflow', 'fix-name-overflow-c']);
    const restarted = await Guest.instantiate(baselineBytes, {}, { policy: { requireSignature: false } });
    await store.restore(restarted.async);
    expect(restarted.status().functions).toEqual(guest.status().functions);
  });

  it(`every restart after ${KILLS} kills of the writer at random moments finds a consistent, verifiable level`, { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'store-kill-'));
    const files = [join(dir, 'a.wasm'), join(dir, 'c.wasm')];
    writeFileSync(files[0]!, fixPatch);
    writeFileSync(files[1]!, fixPatchC);
    const storeDir = join(dir, 'store');
    const baselineId = (await Guest.instantiate(baselineBytes)).manifest.id;
    let committed = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const child = spawn(process.execPath, [new URL('./fixtures/store-writer.mjs', import.meta.url).pathname, storeDir, baselinePath, ...files], { env: { ...process.env, SEED: String(kill + 1) } });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      // Let it start and write for a random while, then kill it without warning.
      await new Promise((resolve) => {
        let started = false;
        child.stdout.once('data', () => {
          started = true;
          setTimeout(resolve, Math.random() * 15);
        });
        setTimeout(() => !started && resolve(undefined), 5000);
      });
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      const printed = out.trim().split('\n').filter(Boolean).map(Number);
      const last = printed.at(-1) ?? committed;
      // Read-only: the killed writer's lock is stale, the next writer takes it over.
      const store = PatchStore.open(storeDir, { lock: false });
      const level = store.level(baselineId);
      // What a restart finds is the last level the writer reported, or the one it was writing.
      expect(level, `kill ${kill}`).toBeDefined();
      expect([last, last + 1], `kill ${kill}: generation`).toContain(level!.generation);
      committed = level!.generation;
      for (const entry of level!.applied) expect(store.patch(entry.sha256).length).toBeGreaterThan(0);
      if (kill % 10 === 0) {
        const guest = await Guest.instantiate(baselineBytes, {}, { policy: { requireSignature: false } });
        await store.restore(guest.async);
        expect(appliedIds(guest.status()).sort()).toEqual(level!.applied.map((a) => a.id).sort());
      }
    }
    expect(committed).toBeGreaterThan(KILLS); // the writer made progress through the kills
  });
});
