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

/** Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
const colors = (stream: NodeJS.WriteStream): boolean => stream.isTTY === true && !process.env.NO_COLOR;

const color = (format: Parameters<typeof styleText>[0], text: string, stream: NodeJS.WriteStream = process.stdout): string =>
  colors(stream) ? styleText(format, text, { validateStream: false }) : text;

/** Styles for command output; plain text when stdout is not a terminal or NO_COLOR is set. */
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

/** Reports an error as one line on stderr (or a JSON error object on stdout) and sets the exit code: 1 for usage, 2 otherwise. */
export function report(json: boolean, err: HotpatchError): void {
  if (json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
  else process.stderr.write(`${color('red', 'error', process.stderr)} ${err.code}: ${err.message}\n`);
  process.exitCode = err.code === 'E_USAGE' ? EXIT.usage : EXIT.error;
}

/**
 * Runs a command body, turning errors into one readable line (or a JSON error object) and an exit code.
 * Anything that is not a HotpatchError is a bug: E_INTERNAL, never passed off as bad input.
 */
export async function guard(json: boolean, body: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? EXIT.ok;
  } catch (error) {
    report(json, error instanceof HotpatchError ? error : internal(error));
  }
}

function internal(error: unknown): HotpatchError {
  const message = error instanceof Error ? error.message : String(error);
  return new HotpatchError('E_INTERNAL', `${message} (a bug in wasm-hotpatch; please report it with the command that caused it)`, { cause: error });
}
