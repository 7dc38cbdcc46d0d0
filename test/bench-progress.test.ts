import { describe, expect, it } from 'vitest';
import { progressFor } from '../bench/_progress.js';

describe('benchmark progress', () => {
  it('writes one plain line per suite and case when the stream is not a terminal', () => {
    let written = '';
    const stream = {
      isTTY: false,
      write: (text: string) => {
        written += text;
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    const progress = progressFor(stream);
    progress.suite('cross-thread.bench.ts', 1, 2);
    progress.case('busy worker, poll every 256 iterations', 2);
    progress.step();
    progress.step();
    progress.done(12.34);
    expect(written).toBe('[1/2] cross-thread.bench.ts\n  cross-thread.bench.ts: busy worker, poll every 256 iterations (2 tasks)\n  cross-thread.bench.ts: done in 12.3 s\n');
    expect(written).not.toContain('\x1b[');
  });
});
