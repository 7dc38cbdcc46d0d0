/**
 * Makes request data safe for a log line: control characters (newlines, escape sequences) are
 * written as `\xNN`, and the line is cut at `max` characters, so a request cannot forge or hide lines.
 */
export function escapeForLog(text: string, max = 200): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** A request target as it may be logged: the path only (a query string may carry a token), escaped. */
export function loggablePath(url: string | undefined): string {
  const raw = url ?? '';
  const query = raw.indexOf('?');
  return escapeForLog(query === -1 ? raw : `${raw.slice(0, query)}?…`);
}

/**
 * A log that writes at most `perSecond` lines a second and then one line saying how many it
 * dropped: a flood of refused requests cannot flood the log.
 */
export function throttledLog(write: (line: string) => void, perSecond = 20): (line: string) => void {
  let windowStart = 0;
  let written = 0;
  let dropped = 0;
  return (line) => {
    const now = performance.now();
    if (now - windowStart >= 1000) {
      if (dropped > 0) write(`(${dropped} log lines dropped: too many in one second)`);
      windowStart = now;
      written = 0;
      dropped = 0;
    }
    if (written < perSecond) {
      written++;
      write(line);
    } else dropped++;
  };
}
