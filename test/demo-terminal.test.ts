// The live demo in a real terminal (tmux), read back from the screen: the panel is drawn once at
// 80, 120 and 200 columns and after a resize, never repeated down the screen (issue 16).
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Terminal } from './terminal.js';

const HEADER = 'wasm-hotpatch live demo';

const count = (text: string, word: string): number => text.split(word).length - 1;

/**
 * Runs the demo in a terminal and reads the screen every 50 ms until it exits (bounded): every
 * screen shows the header at most once; `during` may act on the terminal while it runs.
 */
async function watchDemo(columns: number, rows: number, during?: (term: Terminal, screen: string) => void) {
  const term = new Terminal(columns, rows, 'node dist/cli/main.js demo --seconds 2');
  try {
    const screens: string[] = [];
    const deadline = Date.now() + 60_000;
    while (!term.exited()) {
      if (Date.now() > deadline) throw new Error(`the demo did not finish in 60 s; screen:\n${term.screen()}`);
      const screen = term.screen();
      expect(count(screen, HEADER), screen).toBeLessThanOrEqual(1);
      screens.push(screen);
      during?.(term, screen);
      await sleep(50);
    }
    return { screens, final: term.screen(), history: term.screen(true) };
  } finally {
    term.close();
  }
}

describe('the live demo in a terminal', () => {
  for (const [columns, rows] of [
    [80, 24],
    [120, 40],
    [200, 50],
  ] as const) {
    it(`draws its panel once at ${columns}×${rows}`, async () => {
      const { screens, final, history } = await watchDemo(columns, rows);
      // It ran as a live panel (seen mid-run with its counters), not as plain lines.
      expect(screens.some((s) => count(s, HEADER) === 1 && s.includes('requests/s') && !s.includes('summary'))).toBe(true);
      expect(count(history, HEADER), history).toBe(1);
      expect(final).toContain('dropped: 0');
      expect(count(history, 'applied  "fix-name-overflow"')).toBe(2);
      expect(count(history, 'reverted "fix-name-overflow"')).toBe(1);
      for (const line of history.split('\n')) expect(line.length).toBeLessThanOrEqual(columns);
    });
  }

  it('starts the panel again on a cleared screen when the terminal is resized', async () => {
    const after: string[] = [];
    const { final } = await watchDemo(200, 40, (term, screen) => {
      if (after.length > 0 || screen.includes('applied  "fix-name-overflow"')) {
        if (after.length === 0) term.resize(80, 24);
        after.push(term.screen());
      }
    });
    // Screens read after the resize (each already shows the header at most once): the panel is drawn again, at 80 columns.
    const redrawn = after.filter((s) => count(s, HEADER) === 1 && s.includes('requests/s') && !s.includes('summary'));
    expect(redrawn.length, after.join('\n----\n')).toBeGreaterThan(0);
    for (const line of redrawn.at(-1)!.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(final).toContain('dropped: 0');
  });
});
