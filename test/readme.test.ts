// The README's commands, run as the README shows them: the demo (the main job) and the example.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;

describe('the README', () => {
  it('demo: requests keep flowing, none dropped, no escalation while patched, state kept', async () => {
    const { stdout } = await run(process.execPath, ['dist/cli/main.js', 'demo', '--seconds', '2', '--json'], { cwd: root });
    const summary = JSON.parse(stdout);
    expect(summary.dropped).toBe(0);
    expect(summary.served).toBeGreaterThan(10_000);
    expect(summary.exploitsSucceeded.unpatched).toBeGreaterThan(0);
    expect(summary.exploitsSucceeded.patched).toBe(0);
    expect(summary.bankTotalKept).toBe(true);
    expect(summary.ranUntilStopped).toBe(true);
    expect(summary.applyLatencyUs.trials).toBeGreaterThanOrEqual(1000);
  });

  it('demo in plain output (not a TTY) reports each switch and the summary', async () => {
    const { stdout } = await run(process.execPath, ['dist/cli/main.js', 'demo', '--seconds', '1.5'], { cwd: root, env: { ...process.env, NO_COLOR: '1' } });
    expect(stdout).toMatch(/applied {2}"fix-name-overflow" in the running guest: acknowledged in .* at a (safepoint|interrupt)\); bank balanced/); // a loaded machine may interrupt the guest before its next safepoint
    expect(stdout).toMatch(/reverted "fix-name-overflow" in the running guest: .*bank balanced/);
    expect(stdout).toContain('dropped: 0');
    expect(stdout).not.toContain('\x1b[');
  });

  it('example: the exploit works, stops when patched, and comes back when reverted', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'patches/account-service/example.ts'], { cwd: root });
    expect(stdout).toContain('exploit as user 5 (unpatched):     WORKS');
    expect(stdout).toContain('exploit as user 6 (patched):       refused');
    expect(stdout).toContain('exploit as user 7 (reverted):      WORKS again');
  });
});
