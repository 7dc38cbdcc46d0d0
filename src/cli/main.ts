#!/usr/bin/env node
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { runProgram, toCommander } from './_command.js';
import agent from './agent.js';
import build from './build.js';
import demo from './demo.js';
import diff from './diff.js';
import fleet from './fleet.js';
import inspect from './inspect.js';
import keygen from './keygen.js';
import prepare from './prepare.js';
import { apply, revert, status } from './remote.js';
import serve from './serve.js';
import sign from './sign.js';
import verify from './verify.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

// A reader that stops early (`| head`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const program = new Command('wasm-hotpatch')
  .description('Hotpatch functions of running WebAssembly guests.')
  .version(version, '-v, --version')
  .addHelpText('after', '\nRun wasm-hotpatch <command> --help for its options and an example.\n');
for (const command of [prepare, build, diff, inspect, keygen, sign, verify, serve, apply, revert, status, demo, agent, fleet]) program.addCommand(toCommander(command));

await runProgram(program, process.argv.slice(2));
