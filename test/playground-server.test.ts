import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeys } from '../src/build/sign.js';
import { startPlayground } from '../src/playground/server.js';

// `npm run playground` as the README runs it, then what it serves and what it refuses.
const root = new URL('..', import.meta.url).pathname;
const run = promisify(execFile);
let server: ChildProcess;
let url: URL;

/** A request with a Host header of our choosing (fetch will not send a foreign one). */
function get(path: string, host = url.host, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: url.port, path, method, headers: { host } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.end();
  });
}

/** The playground's command with arguments it must refuse: its exit code and stderr. */
async function failing(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run('npx', ['tsx', 'src/playground/main.ts', ...args], { cwd: root, timeout: 30_000 });
  } catch (error) {
    return error as { code: number; stderr: string };
  }
  throw new Error(`playground ${args.join(' ')} did not fail`);
}

beforeAll(async () => {
  server = spawn('npm', ['run', '--silent', 'playground', '--', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  let out = '';
  const started = new Promise<URL>((resolve, reject) => {
    server.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const found = /playground on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (found) resolve(new URL(found[1]!));
    });
    server.once('exit', (code) => reject(new Error(`playground exited (${code}): ${out}`)));
  });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no URL within 30 s: ${out}`)), 30_000).unref());
  url = await Promise.race([started, timeout]);
});

afterAll(async () => {
  if (server?.exitCode === null) {
    const exited = once(server, 'exit');
    process.kill(-server.pid!, 'SIGTERM'); // npm and the node it started, by their group
    await exited;
  }
});

describe('npm run playground', () => {
  it('serves the page, its bundles and the service, under a strict content policy', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('<script type="module" src="/page.js">');
    expect(page.headers['content-security-policy']).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(page.headers['cross-origin-embedder-policy']).toBe('require-corp');
    const worker = await get('/worker.js');
    expect(worker.headers['content-type']).toMatch(/^text\/javascript/);
    expect(worker.body.toString()).not.toMatch(/from ['"]fflate['"]/); // bundled, not a bare import
    const baseline = await get('/service.baseline.wasm');
    expect(baseline.headers['content-type']).toBe('application/wasm');
    expect(baseline.body.subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
    const config = JSON.parse((await get('/config.json')).body.toString());
    expect(config.trustedKeys).toHaveLength(1);
    expect(config.trustedKeys[0]).toContain('BEGIN PUBLIC KEY');
  });

  it('answers only under its own name, only GET, only what it serves', async () => {
    expect((await get('/', `evil.example:${url.port}`)).status).toBe(421);
    expect((await get('/', url.host, 'POST')).status).toBe(405);
    expect((await get('/../package.json')).status).toBe(404);
    expect((await get('/src/playground/server.ts')).status).toBe(404);
  });

  it('refuses a trusted key that is not one, and unknown flags', async () => {
    const bad = await failing(['--trust', '/dev/null']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^E_BAD_SIGNATURE: not an Ed25519 public key/);
    const flag = await failing(['--prot', '1']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^E_USAGE: Unknown option '--prot'/);
  });

  it('trusts the keys given beside the session key', async () => {
    const release = generateKeys();
    const playground = await startPlayground({ trustedKeys: [release.publicKey] });
    try {
      const config = await (await fetch(new URL('/config.json', playground.url))).json();
      expect(config.trustedKeys).toHaveLength(2);
      expect(config.trustedKeys[1]).toBe(release.publicKey);
    } finally {
      await playground.close();
    }
  });
});
