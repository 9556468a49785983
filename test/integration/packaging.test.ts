// The package as a user installs it: "exports" (tcpool, tcpool/client, tcpool/testing) from an ES
// module and from CommonJS, the published types, and a TypeScript command module with
// import/export inside a CommonJS project, served through tcpool/testing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildDist } from '../helpers/build.ts';

/** A fresh CommonJS project with tcpool installed (linked, as `npm i ../tcpool` does). */
function project(): string {
  const root = buildDist();
  const dir = mkdtempSync(join(tmpdir(), 'tcpool-pkg-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', type: 'commonjs' }));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'tcpool'), 'dir');
  return dir;
}
const node = (dir: string, file: string) =>
  execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 30_000 });

test('exports: an ES module and a CommonJS file import tcpool, tcpool/client, tcpool/testing', () => {
  const dir = project();
  writeFileSync(
    join(dir, 'commands.ts'),
    `import { CommandError, defineCommand } from 'tcpool';
export default [
  defineCommand({
    name: 'GREET',
    args: [{ name: 'name', type: 'string', rest: true }],
    run: (_ctx, { name }) => {
      if (name === 'nobody') throw new CommandError('NOBODY', 'nobody to greet');
      return 'Hello, ' + name;
    },
  }),
];
`,
  );
  writeFileSync(
    join(dir, 'check.mjs'),
    `import { startTestServer } from 'tcpool/testing';
import { ServerError } from 'tcpool/client';
const server = await startTestServer({ commands: './commands.ts' });
const hello = await server.client.greet('two words');
const err = await server.client.greet('nobody').catch((e) => e instanceof ServerError && e.code + ' ' + e.message);
const line = await server.line('GREET you');
const loaded = /Commands module \\.\\/commands\\.ts loaded: GREET/.test(server.log);
const code = await server.stop();
console.log(JSON.stringify({ hello, err, line, loaded, code }));
`,
  );
  assert.deepEqual(JSON.parse(node(dir, 'check.mjs')), {
    hello: 'Hello, two words',
    err: 'NOBODY nobody to greet',
    line: 'Hello, you',
    loaded: true,
    code: 0,
  });
  writeFileSync(
    join(dir, 'check.cjs'),
    `const tcpool = require('tcpool');
const { createClient } = require('tcpool/client');
const { startTestServer } = require('tcpool/testing');
console.log([typeof tcpool.defineCommand, typeof tcpool.CommandError, typeof createClient, typeof startTestServer].join(' '));
`,
  );
  assert.equal(node(dir, 'check.cjs').trim(), 'function function function function');
});

test('types: published declarations type a command module and a typed client', () => {
  const dir = project();
  writeFileSync(
    join(dir, 'commands.mts'),
    `import { defineCommand, defineModule, type CommandDefinition } from 'tcpool';
export const raw: CommandDefinition = { name: 'RAW', run: (_ctx, args) => args.length };
export default defineModule({
  commands: [
    defineCommand({
      name: 'ADD',
      args: [{ name: 'a', type: 'integer' }, { name: 'b', type: 'integer' }],
      run: (_ctx, { a, b }) => a + b,
    }),
  ],
});
`,
  );
  writeFileSync(
    join(dir, 'use.mts'),
    `import { createClient } from 'tcpool/client';
import type commands from './commands.mts';
const client = createClient<typeof commands>({ port: 1 });
export const sum: Promise<number> = client.add(1, 2);
// @ts-expect-error ADD takes integers
client.add('1', 2);
`,
  );
  const tsc = new URL('../../node_modules/typescript/bin/tsc', import.meta.url).pathname;
  const out = (() => {
    try {
      return execFileSync(
        process.execPath,
        [
          tsc,
          '--noEmit',
          '--strict',
          '--module',
          'nodenext',
          '--moduleResolution',
          'nodenext',
          '--allowImportingTsExtensions',
          '--target',
          'es2023',
          '--types',
          'node',
          '--typeRoots',
          new URL('../../node_modules/@types', import.meta.url).pathname,
          '--skipLibCheck',
          'false',
          'commands.mts',
          'use.mts',
        ],
        { cwd: dir, encoding: 'utf8', env: { ...process.env, NODE_PATH: '' } },
      );
    } catch (err) {
      return String((err as { stdout: string }).stdout);
    }
  })();
  assert.equal(out, '');
});
