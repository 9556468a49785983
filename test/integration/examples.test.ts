// The example projects under examples/, each run as its own `npm test` against the package as
// installed: dist/ built, and the example's node_modules/tcpool linked to this checkout (what
// `npm install` does with its "tcpool": "file:../.." dependency).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildDist } from '../helpers/build.ts';

const examples = new URL('../../examples/', import.meta.url).pathname;

for (const name of readdirSync(examples)) {
  const dir = join(examples, name);
  if (!existsSync(join(dir, 'package.json'))) continue;
  test(`examples/${name}: npm test`, async () => {
    buildDist();
    const link = join(dir, 'node_modules', 'tcpool');
    if (!existsSync(link) && !lstatSync(link, { throwIfNoEntry: false })) {
      mkdirSync(join(dir, 'node_modules'), { recursive: true });
      symlinkSync('../../..', link, 'dir');
    }
    // Run as a user runs it, outside this test run's own reporting.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const run = spawnSync(
      process.execPath,
      ['--test', '--test-concurrency=1', '--test-reporter=tap', 'test/*.test.ts'],
      { cwd: dir, env, encoding: 'utf8', timeout: 180_000 },
    );
    const output = `${run.stdout}\n${run.stderr}`;
    assert.equal(run.status, 0, output);
    assert.match(output, /# fail 0\n/, output);
    // Tests that need a missing peer skip locally (and fail in CI): something must have run or
    // skipped.
    const count = (what: string) =>
      Number(output.match(new RegExp(`# ${what} (\\d+)\n`))?.[1] ?? 0);
    assert.ok(count('pass') + count('skipped') > 0, output);
  });
}
