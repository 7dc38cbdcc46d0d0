import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { styleText } from 'node:util';
import { HotpatchError } from '../errors.js';

/** Exit codes every command uses (documented in the README). */
export const EXIT = { ok: 0, usage: 1, error: 2, notHotpatchable: 3 } as const;

/**
 * Reads an input file.
 * @throws HotpatchError E_IO
 */
export function readInput(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (cause) {
    throw new HotpatchError('E_IO', `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
}

/**
 * Writes an output file atomically: a temporary file in the same folder, then a rename, so a
 * failure never leaves a partial output behind.
 * @throws HotpatchError E_IO
 */
export function writeOutput(path: string, bytes: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (cause) {
    rmSync(tmp, { force: true });
    throw new HotpatchError('E_IO', `cannot write ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
}

const color = (format: Parameters<typeof styleText>[0], text: string): string =>
  process.stdout.isTTY && !process.env.NO_COLOR ? styleText(format, text) : text;

export const paint = {
  ok: (t: string) => color('green', t),
  bad: (t: string) => color('red', t),
  dim: (t: string) => color('dim', t),
  bold: (t: string) => color('bold', t),
};

/** Prints a result: JSON for machines with `--json`, text for people otherwise. */
export function emit(json: boolean, data: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text()}\n`);
}

/**
 * Runs a command body, turning errors into one readable line (or a JSON error object) and an exit code.
 */
export async function guard(json: boolean, body: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? EXIT.ok;
  } catch (error) {
    const err = error instanceof HotpatchError ? error : new HotpatchError('E_USAGE', (error as Error).message ?? String(error), { cause: error });
    if (json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
    else process.stderr.write(`${paint.bad('error')} ${err.code}: ${err.message}\n`);
    process.exitCode = err.code === 'E_USAGE' ? EXIT.usage : EXIT.error;
  }
}
