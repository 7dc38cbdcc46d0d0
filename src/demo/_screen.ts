import ansiEscapes from 'ansi-escapes';
import { createLogUpdate } from 'log-update';
import { styleText } from 'node:util';
import wrapAnsi from 'wrap-ansi';

/** Where the demo writes: a terminal gets a panel redrawn in place, anything else plain lines. */
export type DemoStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };

/** The demo's output: a live panel in a terminal, each event and a counter line a second otherwise. */
export interface Screen {
  /** Styles text when the output is a colour terminal; plain otherwise. */
  paint(format: Parameters<typeof styleText>[0], text: string): string;
  /** Shows the panel (header, counters) and the events so far; `plain` is the counters' one-line form for pipes, printed once a second. */
  draw(panel: readonly string[], events: readonly string[], plain: string, final?: boolean): void;
  /** Leaves the panel where it is and writes text below it. */
  finish(text: string): void;
}

/**
 * A screen for `out`. In a terminal the panel is drawn by log-update, which wraps every line to
 * the terminal's width and erases exactly the rows it drew, so nothing repeats at any width
 * (issue 16: moving the cursor up by the number of lines printed broke on wrapped lines). After a
 * resize the terminal may have re-wrapped those rows itself, so the panel starts again on a
 * cleared screen rather than erasing a count of rows that no longer holds.
 */
export function createScreen(out: DemoStream): Screen {
  const tty = out.isTTY === true;
  const colour = tty && !process.env.NO_COLOR;
  const paint: Screen['paint'] = (format, text) => (colour ? styleText(format, text, { validateStream: false }) : text);
  if (!tty) return plainScreen(out, paint);

  let render = createLogUpdate(out);
  let resized = false;
  const onResize = (): void => {
    resized = true;
  };
  (out as NodeJS.WriteStream).on?.('resize', onResize);
  return {
    paint,
    draw(panel, events) {
      if (resized) {
        resized = false;
        render.done();
        out.write(ansiEscapes.clearViewport);
        render = createLogUpdate(out);
      }
      render(fitScreen(panel, events, out.columns ?? 80, out.rows ?? 24));
    },
    finish(text) {
      render.done();
      (out as NodeJS.WriteStream).off?.('resize', onResize);
      out.write(
        text
          .split('\n')
          .map((line) => hang(line, out.columns ?? 80, 21))
          .join('\n'),
      );
    },
  };
}

/**
 * The panel and as many of the latest events as fit the terminal's height: log-update can erase
 * only rows still on the screen, so a frame taller than the screen would repeat as it scrolls.
 */
function fitScreen(panel: readonly string[], events: readonly string[], width: number, rows: number): string {
  const lines = panel.flatMap((line) => hang(line, width, 4).split('\n'));
  const blocks = events.map((e) => hang(`  ${e}`, width, 11).split('\n'));
  let room = rows - 1 - lines.length;
  let shown = 0;
  while (shown < blocks.length && blocks[blocks.length - 1 - shown]!.length <= room - (shown + 1 < blocks.length ? 1 : 0)) {
    room -= blocks[blocks.length - 1 - shown]!.length;
    shown++;
  }
  const hidden = blocks.length - shown;
  return [...lines, ...(hidden > 0 ? [`  … ${hidden} earlier event${hidden === 1 ? '' : 's'}`] : []), ...blocks.slice(hidden).flat()].join('\n');
}

/** Wraps a line at word boundaries to the width, continuation lines indented under its text. */
function hang(line: string, width: number, indent: number): string {
  if (width <= indent + 20) return line; // too narrow to indent: log-update's hard wrap is all that fits
  const [first = '', ...rest] = wrapAnsi(line, width, { hard: true, trim: false }).split('\n');
  if (rest.length === 0) return first;
  const tail = wrapAnsi(rest.map((part) => part.trim()).join(' '), width - indent, { hard: true });
  return [first, ...tail.split('\n').map((l) => `${' '.repeat(indent)}${l}`)].join('\n');
}

function plainScreen(out: DemoStream, paint: Screen['paint']): Screen {
  let printed = 0;
  let lastLine = performance.now();
  return {
    paint,
    draw(_panel, events, plain, final = false) {
      for (; printed < events.length; printed++) out.write(`${events[printed]}\n`);
      const now = performance.now();
      if (final || now - lastLine >= 1000) {
        out.write(`${plain}\n`);
        lastLine = now;
      }
    },
    finish(text) {
      out.write(text);
    },
  };
}
