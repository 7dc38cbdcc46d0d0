import { Command, CommanderError, Option } from 'commander';
import { HotpatchError } from '../errors.js';
import { EXIT, guard, report } from './_io.js';

/** One argument of a command: a positional, a string option or a flag. */
export interface ArgDef {
  readonly type: 'positional' | 'string' | 'boolean';
  readonly description: string;
  readonly required?: boolean;
  /** A one-letter short form (`o` for `-o`). */
  readonly alias?: string;
  /** The value's name in help (`--output <file>`); default `value`. */
  readonly value?: string;
}

/** The parsed arguments of a command, typed from its definitions; `json` is on every command. */
export type ArgsOf<A extends Record<string, ArgDef>> = {
  -readonly [K in keyof A]: A[K]['type'] extends 'boolean' ? boolean : A[K]['required'] extends true ? string : string | undefined;
} & { json: boolean };

/** A command: its help text, its arguments, and the body that returns an exit code. */
export interface CommandDef<A extends Record<string, ArgDef>> {
  readonly name: string;
  /** One line for the command list; the first sentence of `description` when absent. */
  readonly summary?: string;
  readonly description: string;
  readonly examples: readonly string[];
  readonly args: A;
  run(args: ArgsOf<A>): Promise<number | void>;
}

/** Declares a command; the identity function that gives `run` its typed arguments. */
export function defineCommand<const A extends Record<string, ArgDef>>(def: CommandDef<A>): CommandDef<A> {
  return def;
}

/** Any command definition, whatever its arguments (for lists of commands). */
export type AnyCommandDef = CommandDef<Record<string, ArgDef>>;

/** A group of commands under one name (`wasm-hotpatch fleet release …`): help text and its commands. */
export interface GroupDef {
  readonly name: string;
  /** One line for the command list; the first sentence of `description` when absent. */
  readonly summary?: string;
  readonly description: string;
  readonly commands: readonly AnyCommandDef[];
}

/** Declares a command group; the identity function, like {@link defineCommand}. */
export function defineGroup(def: GroupDef): GroupDef {
  return def;
}

const firstSentence = (text: string): string => text.replace(/\.\s.*$/s, '').replace(/\.$/, '');

const camel = (name: string): string => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Whether a flag was given: commander stores `--no-x` as `x: false` (default true), not as `noX`. */
const given = (options: Record<string, unknown>, name: string): boolean => (name.startsWith('no-') ? options[camel(name.slice(3))] === false : options[camel(name)] === true);

/** Commander settings every command shares: errors thrown (not printed, not exiting), suggestions on, no excess arguments. */
function strict(command: Command): Command {
  return command
    .exitOverride()
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .configureOutput({ outputError: () => {} })
    .configureHelp({ showGlobalOptions: false });
}

/**
 * Builds the commander command of a definition: every option checked, `--json` added, examples
 * after the options; a group becomes a command whose subcommands are built the same way.
 * `path` is how the command is called (`fleet release`), for the hint of its usage errors.
 */
export function toCommander(def: AnyCommandDef | GroupDef, path: string = def.name): Command {
  return 'commands' in def ? groupCommand(def, path) : leafCommand(def, path);
}

/** A group: its subcommands in help, an unknown one refused with the nearest name, none given a usage error after the help. */
function groupCommand(def: GroupDef, path: string): Command {
  const group = strict(new Command(def.name))
    .description(def.description)
    .summary(def.summary ?? firstSentence(def.description));
  for (const sub of def.commands) group.addCommand(toCommander(sub, `${path} ${sub.name}`));
  group.addHelpText('after', `\nRun wasm-hotpatch ${path} <command> --help for its options and an example.\n`);
  return group;
}

function leafCommand<A extends Record<string, ArgDef>>(def: CommandDef<A>, path: string): Command {
  const command = strict(new Command(def.name))
    .description(def.description)
    .summary(def.summary ?? firstSentence(def.description));
  for (const [name, arg] of Object.entries(def.args)) {
    if (arg.type === 'positional') {
      command.argument(arg.required ? `<${name}>` : `[${name}]`, arg.description);
      continue;
    }
    const flags = `${arg.alias ? `-${arg.alias}, ` : ''}--${name}${arg.type === 'string' ? ` <${arg.value ?? 'value'}>` : ''}`;
    // Required options are checked in the action, after commander has refused unknown ones: a
    // mistyped `--out` must be named as such, not reported as a missing `--output`.
    command.addOption(new Option(flags, arg.description));
  }
  command.option('--json', 'print the result (or the error) as JSON');
  command.addHelpText('after', `\nExample${def.examples.length > 1 ? 's' : ''}:\n${def.examples.map((e) => shellLines(e, 80)).join('\n')}\n`);
  command.action(async (...values: unknown[]) => {
    const options = command.opts();
    const args: Record<string, unknown> = { json: options.json === true };
    const missing = Object.entries(def.args).find(([name, arg]) => arg.type === 'string' && arg.required && options[camel(name)] === undefined);
    if (missing) {
      const [name, arg] = missing;
      const option = `${arg.alias ? `-${arg.alias}, ` : ''}--${name} <${arg.value ?? 'value'}>`;
      report(args.json as boolean, new HotpatchError('E_USAGE', `missing ${option}: ${arg.description}; see wasm-hotpatch ${path} --help`));
      return;
    }
    let position = 0;
    for (const [name, arg] of Object.entries(def.args)) {
      if (arg.type === 'positional') args[name] = values[position++];
      else args[name] = arg.type === 'boolean' ? given(options, name) : options[camel(name)];
    }
    await guard(args.json as boolean, () => def.run(args as ArgsOf<A>));
  });
  return command;
}

/**
 * Runs a program of commands: an unknown command or option, a missing value or a stray argument is
 * a usage error (exit 1) naming it, with the nearest spelling when there is one.
 */
export async function runProgram(program: Command, argv: readonly string[]): Promise<void> {
  strict(program);
  const inherit = (parent: Command): void => {
    for (const command of parent.commands) {
      command.copyInheritedSettings(parent);
      inherit(command);
    }
  };
  inherit(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // `commander.help` is help shown because no command was given: a usage error, after the help.
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') {
      process.exitCode = 0;
      return;
    }
    if (error.code === 'commander.help') {
      process.exitCode = EXIT.usage;
      return;
    }
    const message = error.message
      .replace(/^error: /, '')
      .replace(/\.$/, '')
      .replace(/\n\(Did you mean (.*)\?\)$/s, ' (did you mean $1?)');
    const path = commandPath(program, argv);
    const hint = `; see wasm-hotpatch ${path.map((name) => `${name} `).join('')}--help`;
    report(argv.includes('--json'), new HotpatchError('E_USAGE', `${message}${hint}`, { cause: error }));
  }
}

/** The names of the command (and subcommand) an argument list calls, outermost first; options are skipped. */
function commandPath(program: Command, argv: readonly string[]): string[] {
  const path: string[] = [];
  let current = program;
  for (const arg of argv) {
    if (arg.startsWith('-')) continue;
    const next = current.commands.find((c) => c.name() === arg);
    if (!next) break;
    path.push(arg);
    current = next;
  }
  return path;
}

/** An example command, indented, broken into lines of at most `width` columns with shell continuations. */
function shellLines(example: string, width: number): string {
  const lines: string[] = [];
  let line = '  ';
  // An option stays on one line with its value.
  const words = example.split(' ').reduce<string[]>((acc, word) => {
    const last = acc.at(-1);
    if (last?.startsWith('-') && !last.includes(' ') && !word.startsWith('-')) acc[acc.length - 1] = `${last} ${word}`;
    else acc.push(word);
    return acc;
  }, []);
  for (const word of words) {
    if (line.trim() !== '' && line.length + 1 + word.length + 2 > width) {
      lines.push(`${line} \\`);
      line = '      ';
    }
    line += line.trim() === '' ? word : ` ${word}`;
  }
  return [...lines, line].join('\n');
}
