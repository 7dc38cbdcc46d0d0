import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HotpatchError } from '../errors.js';
import { BUCKETS, checkName } from './types.js';

/** One user of the fleet's NATS server, as a credentials file holds it. */
export interface FleetCredential {
  readonly role: 'controller' | 'agent';
  /** For agents: the host id this credential may report as. */
  readonly host?: string;
  readonly user: string;
  readonly pass: string;
  /** Agents: the inbox prefix their permissions allow (pass it to the connection). */
  readonly inboxPrefix?: string;
}

/** What `fleetCredentials` makes: the server's authorization block and each user's credential. */
export interface FleetAuthorization {
  /** A nats-server configuration fragment (`authorization { users = [...] }`), passwords in clear: keep it 0600. */
  readonly config: string;
  readonly controller: FleetCredential;
  readonly agents: readonly FleetCredential[];
}

const secret = (): string => randomBytes(24).toString('base64url');

/** What an agent for `host` may publish: reads of desired state and patches, writes of its own keys only. */
export function agentPermissions(host: string): { publish: string[]; subscribe: string[] } {
  const readable = [`KV_${BUCKETS.desired}`, `OBJ_${BUCKETS.patches}`];
  const opened = [...readable, `KV_${BUCKETS.status}`, `KV_${BUCKETS.presence}`];
  return {
    publish: [
      `$KV.${BUCKETS.status}.${host}`,
      `$KV.${BUCKETS.presence}.${host}`,
      `fleet.audit.host.${host}`,
      '$JS.API.INFO',
      ...opened.map((s) => `$JS.API.STREAM.INFO.${s}`),
      ...readable.flatMap((s) => [
        `$JS.API.CONSUMER.CREATE.${s}`,
        `$JS.API.CONSUMER.CREATE.${s}.>`,
        `$JS.API.CONSUMER.DELETE.${s}.>`,
        `$JS.API.CONSUMER.INFO.${s}.>`,
        `$JS.API.DIRECT.GET.${s}.>`,
        `$JS.API.STREAM.MSG.GET.${s}`,
      ]),
      '$JS.FC.>',
    ],
    subscribe: [`_INBOX_${host}.>`],
  };
}

const list = (items: readonly string[]): string => `[${items.map((s) => JSON.stringify(s)).join(', ')}]`;

/**
 * Makes per-role credentials for a fleet: one controller (which also serves the operator's
 * commands: it alone writes desired state and releases) and one agent per host, each agent allowed
 * to read desired state and patches and to write only its own status and heartbeat.
 * @throws HotpatchError E_USAGE (a host id that is not a plain name)
 */
export function fleetCredentials(hosts: readonly string[]): FleetAuthorization {
  const controller: FleetCredential = { role: 'controller', user: 'fleet-controller', pass: secret() };
  const agents = hosts.map((host): FleetCredential => ({ role: 'agent', host: checkName('host id', host), user: `agent-${host}`, pass: secret(), inboxPrefix: `_INBOX_${host}` }));
  const users = [
    `    { user: ${JSON.stringify(controller.user)}, password: ${JSON.stringify(controller.pass)}, permissions: { publish: ">", subscribe: ">" } }`,
    ...agents.map((a) => {
      const p = agentPermissions(a.host!);
      return `    { user: ${JSON.stringify(a.user)}, password: ${JSON.stringify(a.pass)}, permissions: { publish: { allow: ${list(p.publish)} }, subscribe: { allow: ${list(p.subscribe)} } } }`;
    }),
  ];
  return { config: `# wasm-hotpatch fleet: per-role users (made by \`wasm-hotpatch fleet init\`)\nauthorization {\n  users = [\n${users.join(',\n')}\n  ]\n}\n`, controller, agents };
}

/**
 * `fleet init`: makes credentials for the hosts and writes them under `dir` (owner-only):
 * `server.conf` for nats-server (`nats-server -js -c <dir>/server.conf`), `controller.json`,
 * and `agents/<host>.json`; the files hold passwords.
 * @throws HotpatchError E_USAGE (bad host id), E_IO
 */
export function initFleet(dir: string, hosts: readonly string[], servers = 'nats://127.0.0.1:4222'): { files: string[]; authorization: FleetAuthorization } {
  const authorization = fleetCredentials(hosts);
  const files: string[] = [];
  try {
    mkdirSync(join(dir, 'agents'), { recursive: true, mode: 0o700 });
    const write = (name: string, text: string): void => {
      writeFileSync(join(dir, name), text, { mode: 0o600 });
      files.push(join(dir, name));
    };
    write('server.conf', `${authorization.config}jetstream {\n  store_dir: ${JSON.stringify(join(dir, 'jetstream'))}\n}\n`);
    write('controller.json', `${JSON.stringify({ servers, ...authorization.controller }, null, 2)}\n`);
    for (const agent of authorization.agents) write(join('agents', `${agent.host}.json`), `${JSON.stringify({ servers, ...agent }, null, 2)}\n`);
  } catch (cause) {
    throw new HotpatchError('E_IO', `cannot write the fleet's credentials to ${dir}: ${(cause as Error).message}`, { cause });
  }
  return { files, authorization };
}
