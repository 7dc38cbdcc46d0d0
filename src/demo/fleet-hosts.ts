import { Guest, trustKey } from '../engine/index.js';
import { Agent, type AgentOptions } from '../fleet/agent.js';
import { type FleetConnection, joinFleet } from '../fleet/connection.js';
import { AccountClient, type AccountExports } from './account-service.js';
import { fleetBaselines } from './fleet-patches.js';

/** One simulated host: its own connection, guest and agent, in this process. */
export interface SimHost {
  readonly id: string;
  readonly ring: string;
  readonly kind: 'account' | 'quota';
  readonly guest: Guest;
  readonly agent: Agent;
  readonly fleet: FleetConnection;
  /** Requests answered and trapped (account hosts under load). */
  answered: number;
  trapped: number;
}

/** Options of `startHosts`. */
export interface SimHostsOptions {
  readonly servers: string;
  readonly publicKey: string;
  /** Hosts per ring, in ring order; every `quotaEvery`-th host runs the quota baseline instead. */
  readonly rings: readonly { readonly name: string; readonly hosts: number }[];
  readonly quotaEvery?: number;
  readonly prefix?: string;
  readonly agent?: Partial<Pick<AgentOptions, 'heartbeatMs' | 'applyOptions' | 'store'>>;
  /** Credentials per host (from `fleetCredentials`), when the server requires them. */
  readonly credentials?: (host: string) => { user: string; pass: string; inboxPrefix?: string } | undefined;
}

/** Starts hosts: each a guest trusting `publicKey`, an agent with its own connection, and a ring. */
export async function startHosts(options: SimHostsOptions): Promise<SimHost[]> {
  const key = await trustKey(options.publicKey);
  const baselines = { account: fleetBaselines.account(), quota: fleetBaselines.quota() };
  const modules = { account: await WebAssembly.compile(baselines.account as Uint8Array<ArrayBuffer>), quota: await WebAssembly.compile(baselines.quota as Uint8Array<ArrayBuffer>) };
  const hosts: SimHost[] = [];
  let n = 0;
  for (const ring of options.rings) {
    for (let i = 0; i < ring.hosts; i++, n++) {
      const kind = options.quotaEvery && n % options.quotaEvery === options.quotaEvery - 1 ? 'quota' : 'account';
      const id = `${options.prefix ?? 'host'}-${String(n + 1).padStart(3, '0')}`;
      // The module is compiled once and shared; Guest.instantiate checks bytes, adopt takes a module
      // (and the bytes, from which a baseline prepared with derived originals rebuilds them).
      const guest = Guest.adopt(await WebAssembly.instantiate(modules[kind], {}), modules[kind], { baselineBytes: baselines[kind], policy: { trustedKeys: [key] } });
      if (kind === 'account') (guest.exports as unknown as AccountExports).init();
      const fleet = await joinFleet({ servers: options.servers, name: id, reconnectForever: true, ...(options.credentials?.(id) ?? {}) });
      const { store, ...agentOptions } = options.agent ?? {};
      // A folder given for all hosts holds one store per host.
      const own = typeof store === 'string' ? { store: `${store}/${id}` } : store ? { store } : {};
      const agent = await Agent.start({ fleet, guest: guest.async, host: id, ring: ring.name, labels: { kind }, heartbeatMs: 1_000, ...agentOptions, ...own });
      hosts.push({ id, ring: ring.name, kind, guest, agent, fleet, answered: 0, trapped: 0 });
    }
  }
  return hosts;
}

/** Serves ordinary account requests on every account host, `perTick` each every `everyMs`, until stopped. */
export function drive(hosts: readonly SimHost[], everyMs = 20, perTick = 4): { stop(): void; readonly requests: number } {
  let requests = 0;
  let n = 0;
  const clients = hosts.filter((h) => h.kind === 'account').map((h) => ({ host: h, client: new AccountClient(h.guest.exports as unknown as AccountExports) }));
  const timer = setInterval(() => {
    for (const { host, client } of clients) {
      for (let i = 0; i < perTick; i++, n++) {
        requests++;
        try {
          client.ordinary(n);
          host.answered++;
        } catch (error) {
          if (!(error instanceof WebAssembly.RuntimeError)) throw error;
          host.trapped++;
        }
      }
    }
  }, everyMs);
  return {
    stop: () => clearInterval(timer),
    get requests() {
      return requests;
    },
  };
}

/** Requests a guest counted that its client never saw answered or trapped: state lost across patches would show here. */
export function lostRequests(host: SimHost): number {
  if (host.kind !== 'account') return 0;
  return (host.guest.exports as unknown as AccountExports).requests_served() - host.answered - host.trapped;
}

/** Stops every host's agent and connection. */
export async function stopHosts(hosts: readonly SimHost[]): Promise<void> {
  await Promise.all(
    hosts.map(async (h) => {
      await h.agent.close();
      await h.fleet.close();
    }),
  );
}
