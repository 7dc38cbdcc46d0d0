import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import { generateKeys } from '../src/build/sign.js';
import { fleetBaselines, fleetPatches } from '../src/demo/fleet-patches.js';
import { Guest, trustKey } from '../src/engine/index.js';
import { Agent, type AgentOptions } from '../src/fleet/agent.js';
import { createFleet, type FleetConnection, joinFleet } from '../src/fleet/connection.js';
import { startNatsServer, type NatsServer } from '../src/fleet/server.js';
import type { HostStatus } from '../src/fleet/types.js';

/** A nats-server with the fleet's buckets, an admin connection, signed patches and a temp folder. */
export interface TestFleet {
  readonly server: NatsServer;
  readonly admin: FleetConnection;
  readonly keys: { privateKey: string; publicKey: string };
  readonly patches: Awaited<ReturnType<typeof fleetPatches>>;
  readonly dir: string;
  /** Starts a host: its own connection, guest (trusting the fleet's key) and agent. */
  host(id: string, ring: string, options?: Partial<AgentOptions> & { baseline?: 'account' | 'quota' | Uint8Array; connect?: { user: string; pass: string; inboxPrefix?: string } }): Promise<TestHost>;
  close(): Promise<void>;
}

/** A host of a test fleet: its agent, guest and connection. */
export interface TestHost {
  readonly agent: Agent;
  readonly guest: Guest;
  readonly fleet: FleetConnection;
  /** Stops the agent and drops its connection, as a host going away does. */
  stop(): Promise<void>;
}

export async function startTestFleet(options: { config?: string; presenceTtlMs?: number; adminUser?: { user: string; pass: string } } = {}): Promise<TestFleet> {
  const server = await startNatsServer(options.config ? { config: options.config } : {});
  const admin = await joinFleetOrCreate(server.url, options.presenceTtlMs ?? 2_000, options.adminUser);
  const keys = generateKeys();
  const patches = await fleetPatches(keys.privateKey);
  const dir = mkdtempSync(join(tmpdir(), 'fleet-test-'));
  const agents: Agent[] = [];
  const connections: FleetConnection[] = [admin];
  return {
    server,
    admin,
    keys,
    patches,
    dir,
    async host(id, ring, hostOptions = {}) {
      const baseline = hostOptions.baseline instanceof Uint8Array ? hostOptions.baseline : fleetBaselines[hostOptions.baseline ?? 'account']();
      const guest = await Guest.instantiate(baseline, {}, { policy: { trustedKeys: [await trustKey(keys.publicKey)] } });
      const fleet = await joinFleet({ servers: server.url, name: id, reconnectForever: true, ...(hostOptions.connect ?? {}) });
      connections.push(fleet);
      const agent = await Agent.start({ fleet, guest: guest.async, host: id, ring, heartbeatMs: 300, ...hostOptions });
      agents.push(agent);
      return {
        agent,
        guest,
        fleet,
        async stop() {
          await agent.close();
          await fleet.close();
        },
      };
    },
    async close() {
      await Promise.all(agents.map((a) => a.close().catch(() => {})));
      await Promise.all(connections.map((c) => (c.nc.isClosed() ? undefined : c.close())));
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function joinFleetOrCreate(url: string, presenceTtlMs: number, user?: { user: string; pass: string }): Promise<FleetConnection> {
  const { connectNats, openFleet } = await import('../src/fleet/connection.js');
  const nc = await connectNats({ servers: url, ...(user ?? {}) });
  await createFleet(nc, { presenceTtlMs });
  return openFleet(nc);
}

/** Waits (bounded) until a host's status in the fleet matches. */
export async function waitStatus(fleet: FleetConnection, host: string, match: (s: HostStatus) => boolean, timeout = 20_000): Promise<HostStatus> {
  return vi.waitFor(
    async () => {
      const entry = await fleet.status.get(host);
      const status = entry?.json<HostStatus>();
      if (!status || !match(status)) throw new Error(`${host}: ${JSON.stringify(status)}`);
      return status;
    },
    { timeout, interval: 50 },
  );
}
