// A real terminal for tests: tmux, read back with capture-pane.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const root = new URL('..', import.meta.url).pathname;

/** A real terminal: a tmux server of our own (nothing of the user's sessions is touched) running one command in the repository root. */
export class Terminal {
  readonly socket = `hotpatch-test-${randomBytes(4).toString('hex')}`;

  constructor(columns: number, rows: number, command: string, env: Record<string, string> = { NO_COLOR: '' }) {
    // One command queue: the options hold before the demo can exit. The pane stays readable after
    // it exits; a clear screen is not copied into history, so history shows what is left to read.
    const options = [
      ['remain-on-exit', 'on'],
      ['scroll-on-clear', 'off'],
    ].flatMap(([name, value]) => ['set-option', '-g', name!, value!, ';']);
    this.tmux(
      '-f',
      '/dev/null',
      'start-server',
      ';',
      ...options,
      'new-session',
      '-d',
      '-x',
      String(columns),
      '-y',
      String(rows),
      '-c',
      root,
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      command,
    );
  }

  /** Runs a tmux command against this terminal's server. */
  tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }

  /** The visible screen, or with `all` the history above it too (tmux's "Pane is dead" line scrolls the screen by one); with `escapes`, colours as escape sequences. */
  screen(all = false, escapes = false): string {
    return this.tmux('capture-pane', '-p', ...(all ? ['-S', '-'] : []), ...(escapes ? ['-e'] : []));
  }

  /** Whether the command has exited. */
  exited(): boolean {
    return this.tmux('display-message', '-p', '#{pane_dead}').trim() === '1';
  }

  /** Resizes the terminal, as a user dragging the window would. */
  resize(columns: number, rows: number): void {
    this.tmux('resize-window', '-x', String(columns), '-y', String(rows));
  }

  /** Ends the tmux server and the command with it. */
  close(): void {
    this.tmux('kill-server');
  }

  /** Waits (bounded) until the command has exited; the pane stays readable. */
  async waitForExit(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.exited()) {
      if (Date.now() > deadline) throw new Error(`still running after ${timeoutMs} ms; screen:\n${this.screen()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
