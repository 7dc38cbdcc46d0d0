import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;

describe('npm run demo:fleet', () => {
  it("a bad patch caught by the test ring's gate and rolled back, then the fix through every ring; plain lines when piped", async () => {
    const { stdout } = await run(process.execPath, ['dist/demo/fleet.js'], { cwd: root, env: { ...process.env, NO_COLOR: '1', DEMO_FLEET_HOSTS: '12' }, timeout: 120_000 });
    expect(stdout).toMatch(/release bad-1 paused at ring test: ring test: \d+ hosts? failed/);
    expect(stdout).toContain('rings early, broad and last never got it');
    expect(stdout).toMatch(/fix-1: promoted ring last .*release complete/);
    expect(stdout).toContain('compliant 12 of 12 eligible hosts (100.0%)');
    expect(stdout).toMatch(/^lost 0 /m);
    expect(stdout).not.toContain('\x1b[');
  });
});
