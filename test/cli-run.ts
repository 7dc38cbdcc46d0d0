// Runs the built command line as a user would, and answers with its exit code and output.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;

/** `wasm-hotpatch <args>` in a child process; colour off unless `env` says otherwise. */
export async function runCli(args: readonly string[], env: Record<string, string | undefined> = { NO_COLOR: '1' }): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
