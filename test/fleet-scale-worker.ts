// A process of simulated hosts for the scale and fault run (test/fleet-scale.ts): each host has
// its own connection, guest, agent and store. Prints "ready" once every host has reported, and its
// connections' message counts on SIGTERM.
import { startHosts, stopHosts } from '../src/demo/fleet-hosts.js';

const spec = JSON.parse(process.argv[2]!) as { servers: string; publicKey: string; prefix: string; rings: { name: string; hosts: number }[]; store: string; heartbeatMs: number };
const hosts = await startHosts({
  servers: spec.servers,
  publicKey: spec.publicKey,
  prefix: spec.prefix,
  rings: spec.rings,
  quotaEvery: 10,
  agent: { heartbeatMs: spec.heartbeatMs, store: spec.store, applyOptions: { watch: { traps: 1 } } },
});
process.stdout.write(`ready ${hosts.length}\n`);
process.once('SIGTERM', async () => {
  const stats = hosts.map((h) => h.fleet.nc.stats());
  const sum = (k: 'inMsgs' | 'outMsgs' | 'inBytes' | 'outBytes') => stats.reduce((n, s) => n + s[k], 0);
  await stopHosts(hosts);
  process.stdout.write(`${JSON.stringify({ hosts: hosts.length, inMsgs: sum('inMsgs'), outMsgs: sum('outMsgs'), inBytes: sum('inBytes'), outBytes: sum('outBytes') })}\n`);
  process.exit(0);
});
