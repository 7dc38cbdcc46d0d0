import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { buildPatch } from '../src/build/build.js';
import { AccountClient, type AccountExports } from '../src/demo/account-service.js';
import { fleetBaselines } from '../src/demo/fleet-patches.js';
import { controllerStep } from '../src/fleet/controller.js';
import { readGate } from '../src/fleet/gate.js';
import { readHosts } from '../src/fleet/hosts.js';
import { publishPatch, createRelease } from '../src/fleet/release.js';
import { encodeDoc, type RingDesired } from '../src/fleet/types.js';
import { prepare } from '../src/prepare/prepare.js';
import { readFileSync } from 'node:fs';
import { startTestFleet, type TestFleet, waitStatus } from './fleet-harness.js';

let fleet: TestFleet;
beforeAll(async () => {
  fleet = await startTestFleet();
});
afterAll(async () => {
  await fleet?.close();
});

/** Writes a ring's desired state directly, as a compromised (or merely wrong) control plane could. */
async function desire(ring: string, release: string, patches: RingDesired['patches'], action: RingDesired['action'] = 'apply'): Promise<void> {
  await fleet.admin.desired.put(`ring.${ring}`, encodeDoc({ ring, release, action, patches, at: new Date().toISOString() }));
}

describe('agent', () => {
  it('announces itself, applies the patch built for its baseline, and reports hosts on other baselines as not eligible', async () => {
    const account = await fleet.host('acct-1', 'canary', { labels: { site: 'a' } });
    const quota = await fleet.host('quota-1', 'canary', { baseline: 'quota' });
    const other = await fleet.host('other-1', 'canary', { baseline: (await prepare(new Uint8Array(readFileSync(new URL('../patches/account-service/service-fixed.wasm', import.meta.url))))).bytes });
    const idle = await waitStatus(fleet.admin, 'acct-1', (s) => s.state === 'idle');
    expect(idle).toMatchObject({ ring: 'canary', labels: { site: 'a' }, applied: [], healthy: true });
    expect((await fleet.admin.presence.get('acct-1'))?.operation).toBe('PUT');

    await createRelease(fleet.admin, { id: 'r1', patches: [fleet.patches.fix, fleet.patches.quotaFix], rings: ['canary'], ringDefaults: { soakMs: 0 } });
    await controllerStep(fleet.admin);
    const applied = await waitStatus(fleet.admin, 'acct-1', (s) => s.state === 'applied');
    expect(applied).toMatchObject({ release: 'r1', desired: 'name-check-2', applied: [{ id: 'name-check-2', sequence: 3 }] });
    await waitStatus(fleet.admin, 'quota-1', (s) => s.state === 'applied' && s.desired === 'fix-quota-overflow');
    const ineligible = await waitStatus(fleet.admin, 'other-1', (s) => s.state === 'not-eligible');
    expect(ineligible.reason).toContain('not eligible: needs baseline');
    expect(ineligible.reason).toContain(account.guest.manifest.id);
    expect(quota.guest.manifest.id).not.toBe(account.guest.manifest.id);
    expect(other.agent.status!.applied).toEqual([]);
    expect(new AccountClient(account.guest.exports as unknown as AccountExports).exploit(3)).toBe(false);
    await controllerStep(fleet.admin); // clean up: completes r1 (the gate holds with no soak)
    await controllerStep(fleet.admin);
  });

  it('never runs what its own policy refuses: unsigned patches, downgrades, bytes that do not match the digest', async () => {
    await fleet.host('trust-1', 'trust');
    const signed = await publishPatch(fleet.admin, fleet.patches.fix);
    await desire('trust', 'x1', [signed]);
    await waitStatus(fleet.admin, 'trust-1', (s) => s.state === 'applied' && s.desired === 'name-check-2');

    // An unsigned build (same code, newer sequence) published by a compromised controller.
    const unsignedBytes = (
      await buildPatch({
        wat: readFileSync(new URL('../patches/account-service/fix-name-overflow.wat', import.meta.url), 'utf8'),
        manifest: { id: 'evil-1', sequence: 9, targets: [{ function: 'set_name', export: 'set_name' }] },
        baseline: fleetBaselines.account(),
      })
    ).bytes;
    await desire('trust', 'x2', [await publishPatch(fleet.admin, unsignedBytes)]);
    const unsigned = await waitStatus(fleet.admin, 'trust-1', (s) => s.release === 'x2');
    expect(unsigned.state).toBe('apply-failed');
    expect(unsigned.reason).toContain('E_UNSIGNED');
    expect(unsigned.applied).toEqual([{ id: 'name-check-2', sequence: 3 }]);

    // A signed but older build: a downgrade.
    await desire('trust', 'x3', [await publishPatch(fleet.admin, fleet.patches.oldFix)]);
    const downgrade = await waitStatus(fleet.admin, 'trust-1', (s) => s.release === 'x3');
    expect(downgrade).toMatchObject({ state: 'apply-failed', applied: [{ id: 'name-check-2', sequence: 3 }] });
    expect(downgrade.reason).toContain('E_DOWNGRADE');

    // The store holds other bytes under the digest the desired state names (a tampered store).
    const newer = await buildPatch({
      wat: readFileSync(new URL('../patches/account-service/fix-name-overflow.wat', import.meta.url), 'utf8'),
      manifest: { id: 'name-check-9', sequence: 9, targets: [{ function: 'set_name', export: 'set_name' }] },
      baseline: fleetBaselines.account(),
    });
    const sha = createHash('sha256').update(newer.bytes).digest('hex');
    await fleet.admin.patches.putBlob({ name: sha }, unsignedBytes);
    await desire('trust', 'x4', [{ baseline: signed.baseline, id: 'name-check-9', sequence: 9, sha256: sha, size: newer.bytes.length }]);
    const mismatch = await waitStatus(fleet.admin, 'trust-1', (s) => s.release === 'x4');
    expect(mismatch.state).toBe('needs-check');
    expect(mismatch.reason).toContain('E_DIGEST_MISMATCH');
    expect(mismatch.applied).toEqual([{ id: 'name-check-2', sequence: 3 }]);
  });

  it('rolls back by its own trap watch and reports it; reverts when the ring is rolled back', async () => {
    const watched = await fleet.host('watch-1', 'watched', { applyOptions: { watch: { traps: 1 } } });
    const plain = await fleet.host('watch-2', 'watched');
    await desire('watched', 'w1', [await publishPatch(fleet.admin, fleet.patches.bad)]);
    await waitStatus(fleet.admin, 'watch-1', (s) => s.state === 'applied' && s.release === 'w1');
    await waitStatus(fleet.admin, 'watch-2', (s) => s.state === 'applied' && s.release === 'w1');
    const service = new AccountClient(watched.guest.exports as unknown as AccountExports);
    expect(() => service.setName(4, new TextEncoder().encode('user-42'))).toThrow(WebAssembly.RuntimeError);
    const rolled = await waitStatus(fleet.admin, 'watch-1', (s) => s.state === 'rolled-back');
    expect(rolled).toMatchObject({ healthy: false, applied: [] });
    expect(rolled.reason).toContain('trap');
    expect(service.setName(4, new TextEncoder().encode('user-42'))).toBeGreaterThanOrEqual(0);

    await desire('watched', 'w1', [await publishPatch(fleet.admin, fleet.patches.bad)], 'revert');
    const reverted = await waitStatus(fleet.admin, 'watch-2', (s) => s.state === 'rolled-back');
    expect(reverted).toMatchObject({ applied: [] });
    expect(reverted.reason).toContain('rolled back in ring watched');
    expect(plain.guest.status().patches.map((p) => p.state)).toEqual(['reverted']);
  });

  it("reports the host's own health verdict at its heartbeat, and the gate does not count an unhealthy host", async () => {
    let healthy = true;
    await fleet.host('health-1', 'health', { health: () => healthy });
    await desire('health', 'h1', [await publishPatch(fleet.admin, fleet.patches.fix)]);
    await waitStatus(fleet.admin, 'health-1', (s) => s.state === 'applied' && s.healthy);
    healthy = false;
    const sick = await waitStatus(fleet.admin, 'health-1', (s) => !s.healthy);
    expect(sick.state).toBe('applied');
    const snapshot = await readHosts(fleet.admin);
    const release = { id: 'h1', patches: [await publishPatch(fleet.admin, fleet.patches.fix)] } as unknown as Parameters<typeof readGate>[0];
    expect(readGate(release, { name: 'health', soakMs: 0, minShare: 1, maxFailures: 0, deferMs: 0 }, snapshot)).toMatchObject({ eligible: 1, good: 0, holds: false });
  });

  it('a host that does not let the fleet revert keeps its patch and says why', async () => {
    const kept = await fleet.host('keep-1', 'keep', { allowRevert: false });
    const ref = await publishPatch(fleet.admin, fleet.patches.fix);
    await desire('keep', 'k1', [ref]);
    await waitStatus(fleet.admin, 'keep-1', (s) => s.state === 'applied' && s.release === 'k1');
    await desire('keep', 'k1', [ref], 'revert');
    const status = await waitStatus(fleet.admin, 'keep-1', (s) => s.state === 'needs-check');
    expect(status.reason).toContain('does not let the fleet revert');
    expect(kept.guest.status().patches.map((p) => [p.id, p.state])).toEqual([['name-check-2', 'applied']]);
  });

  it('catches up after being away, and comes back at its recorded level from its own store', async () => {
    const store = join(fleet.dir, 'away-1');
    const first = await fleet.host('away-1', 'away', { store });
    await waitStatus(fleet.admin, 'away-1', (s) => s.state === 'idle');
    await first.stop();
    await desire('away', 'a1', [await publishPatch(fleet.admin, fleet.patches.bad)]);
    const back = await fleet.host('away-1', 'away', { store });
    await waitStatus(fleet.admin, 'away-1', (s) => s.state === 'applied' && s.release === 'a1');
    expect(back.guest.status().patches.map((p) => [p.id, p.state])).toEqual([['name-check-1', 'applied']]);
    await back.stop();

    // Restarted with the same store: the level comes back before the fleet is asked (no fetch needed).
    await desire('away', 'a2', [await publishPatch(fleet.admin, fleet.patches.fix)]);
    const again = await fleet.host('away-1', 'away', { store });
    expect(again.guest.status().patches.map((p) => [p.id, p.state])).toEqual([['name-check-1', 'applied']]);
    const caught = await waitStatus(fleet.admin, 'away-1', (s) => s.state === 'applied' && s.release === 'a2');
    expect(caught.applied).toEqual([{ id: 'name-check-2', sequence: 3 }]);
  });

  it("keeps the host store's floor across a fleet revert and a restart: a lower sequence is refused before the guest loads it", async () => {
    const store = join(fleet.dir, 'floor-1');
    const first = await fleet.host('floor-1', 'floor', { store });
    const fix = await publishPatch(fleet.admin, fleet.patches.fix);
    await desire('floor', 'f1', [fix]);
    await waitStatus(fleet.admin, 'floor-1', (s) => s.state === 'applied' && s.release === 'f1');
    await desire('floor', 'f1', [fix], 'revert');
    const reverted = await waitStatus(fleet.admin, 'floor-1', (s) => s.state === 'rolled-back');
    expect(reverted.applied).toEqual([]);
    await first.stop();

    // Nothing is applied now, so only the store remembers that sequence 3 ran here.
    const back = await fleet.host('floor-1', 'floor', { store });
    await desire('floor', 'f2', [await publishPatch(fleet.admin, fleet.patches.bad)]);
    const refused = await waitStatus(fleet.admin, 'floor-1', (s) => s.release === 'f2');
    expect(refused).toMatchObject({ state: 'apply-failed', applied: [] });
    expect(refused.reason).toMatch(/^E_DOWNGRADE: .*sequence 2, below this host's floor 3/);
    expect(back.guest.status().patches).toEqual([]);
  });
});
