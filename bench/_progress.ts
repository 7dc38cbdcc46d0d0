// Progress while suites run, on stderr: a live bar on a terminal (cli-progress), plain lines
// otherwise (CI logs, pipes), so a minute-long suite never looks hung.
import { Presets, SingleBar } from 'cli-progress';

/** What the runner and the harness report as they go. */
export interface Progress {
  /** A suite starts: `index` of `count` (1-based). */
  suite(file: string, index: number, count: number): void;
  /** A case of the current suite starts, with the number of timed tasks it will run. */
  case(name: string, steps: number): void;
  /** One timed task of the current case finished. */
  step(): void;
  /** The current suite finished. */
  done(seconds: number): void;
}

/** Reports nothing: the harness's default, so suites imported elsewhere (tests) stay quiet. */
const silent: Progress = { suite() {}, case() {}, step() {}, done() {} };
let current: Progress = silent;

/** The progress reporter suites report to now. */
export const progress = (): Progress => current;

/** Sets where progress goes (the runner does, once). */
export function reportProgressTo(p: Progress): void {
  current = p;
}

/** A reporter for `stream`: a bar when it is a terminal, one line per suite and case when not. */
export function progressFor(stream: NodeJS.WriteStream): Progress {
  let suite = '';
  if (!stream.isTTY) {
    return {
      suite(file, index, count) {
        suite = file;
        stream.write(`[${index}/${count}] ${file}\n`);
      },
      case(name, steps) {
        stream.write(`  ${suite}: ${name} (${steps} tasks)\n`);
      },
      step() {},
      done(seconds) {
        stream.write(`  ${suite}: done in ${seconds.toFixed(1)} s\n`);
      },
    };
  }
  const bar = new SingleBar({ stream, format: '{suite} {bar} {value}/{total} · {case}', hideCursor: true, clearOnComplete: true, barsize: 24 }, Presets.shades_classic);
  let active = false;
  return {
    suite(file, index, count) {
      suite = `[${index}/${count}] ${file}`;
      bar.start(1, 0, { suite, case: 'starting' });
      active = true;
    },
    case(name, steps) {
      if (!active) return;
      bar.setTotal(steps);
      bar.update(0, { case: name });
    },
    step() {
      if (active) bar.increment();
    },
    done(seconds) {
      if (active) bar.stop();
      active = false;
      stream.write(`${suite} done in ${seconds.toFixed(1)} s\n`);
    },
  };
}
