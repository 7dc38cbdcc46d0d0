import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetCredentials } from '../src/fleet/credentials.js';
import { controllerStep } from '../src/fleet/controller.js';
import { joinFleet } from '../src/fleet/connection.js';
import { createRelease } from '../src/fleet/release.js';
import { encodeDoc } from '../src/fleet/types.js';
import { startTestFleet, type TestFleet, type TestHost, waitStatus } from './fleet-harness.js';

const auth = fleetCredentials(['sec-1', 'sec-2']);
const [one, two] = auth.agents as [(typeof auth.agents)[0], (typeof auth.agents)[0]];
const creds = (c: typeof one) => ({ user: c.user, pass: c.pass, inboxPrefix: c.inboxPrefix! });

let fleet: TestFleet;
let host: TestHost;
beforeAll(async () => {
  fleet = await startTestFleet({ config: auth.config, adminUser: { user: auth.controller.user, pass: auth.controller.pass } });
  host = await fleet.host('sec-1', 'secure', { connect: creds(one) });
});
afterAll(async () => {
  await fleet?.close();
});

describe('per-role credentials', () => {
  it('an agent with its own credential reads desired state and patches, and reports', async () => {
    await waitStatus(fleet.admin, 'sec-1', (s) => s.state === 'idle');
    await createRelease(fleet.admin, { id: 's1', patches: [fleet.patches.fix], rings: ['secure'], ringDefaults: { soakMs: 0 } });
    await controllerStep(fleet.admin);
    await waitStatus(fleet.admin, 'sec-1', (s) => s.state === 'applied' && s.release === 's1');
  });

  it("an agent cannot write desired state, a release, or another host's status or heartbeat", async () => {
    const doc = encodeDoc({ ring: 'secure', release: 'evil', action: 'revert', patches: [], at: new Date().toISOString() });
    await expect(host.fleet.desired.put('ring.secure', doc)).rejects.toThrow(/permission|timeout/i);
    await expect(host.fleet.desired.put('release.evil', doc)).rejects.toThrow(/permission|timeout/i);
    await expect(host.fleet.status.put('sec-2', encodeDoc({ host: 'sec-2', state: 'applied' }))).rejects.toThrow(/permission|timeout/i);
    await expect(host.fleet.presence.put('sec-2', 'x')).rejects.toThrow(/permission|timeout/i);
    await expect(host.fleet.patches.putBlob({ name: 'evil' }, new Uint8Array(8))).rejects.toThrow(/permission|timeout/i);
    expect(await fleet.admin.desired.get('release.evil')).toBeNull();
    expect(await fleet.admin.status.get('sec-2')).toBeNull();
    expect((await fleet.admin.desired.get('ring.secure'))?.json<{ release: string }>().release).toBe('s1');
    // Its own status it may write.
    await expect(host.fleet.status.put('sec-1', host.agent.status ? encodeDoc(host.agent.status) : '{}')).resolves.toBeGreaterThan(0);
  });

  it("an agent cannot read another host's status, and one credential cannot report as another host", async () => {
    await expect(host.fleet.status.get('sec-2')).rejects.toThrow(/permission|timeout/i);
    await expect(joinFleet({ servers: fleet.server.url, user: two.user, pass: 'wrong', inboxPrefix: two.inboxPrefix! })).rejects.toMatchObject({ code: 'E_IO' });
  });
});
