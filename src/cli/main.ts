#!/usr/bin/env node
import { defineCommand, runMain } from 'citty';
import { createRequire } from 'node:module';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

const main = defineCommand({
  meta: { name: 'wasm-hotpatch', version, description: 'Hotpatch functions of running WebAssembly guests.' },
  subCommands: {
    prepare: () => import('./prepare.js').then((m) => m.default),
    build: () => import('./build.js').then((m) => m.default),
    diff: () => import('./diff.js').then((m) => m.default),
    inspect: () => import('./inspect.js').then((m) => m.default),
    keygen: () => import('./keygen.js').then((m) => m.default),
    sign: () => import('./sign.js').then((m) => m.default),
    verify: () => import('./verify.js').then((m) => m.default),
    serve: () => import('./serve.js').then((m) => m.default),
    apply: () => import('./remote.js').then((m) => m.apply),
    revert: () => import('./remote.js').then((m) => m.revert),
    status: () => import('./remote.js').then((m) => m.status),
    demo: () => import('./demo.js').then((m) => m.default),
    fleet: () => import('./fleet.js').then((m) => m.default),
    agent: () => import('./agent.js').then((m) => m.default),
  },
});

await runMain(main);
