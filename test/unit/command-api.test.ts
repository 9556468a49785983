// The command API v1: declared arguments (arity, usage, parsing, replies in each protocol's
// style, the types `run` sees), CommandError, per-command options, and COMMANDS_MODULE loading
// (module objects with hooks, timeouts, CommonJS projects, package names).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { CommandContext } from '../../src/commands/context.ts';
import { loadCommands } from '../../src/commands/load.ts';
import { defineCommand } from '../../src/commands/registry.ts';
import { CommandError, codes, type ReplyError, type TcpoolError } from '../../src/errors.ts';
import { encodeLineReply } from '../../src/protocol/line.ts';
import type { Reply } from '../../src/protocol/reply.ts';
import { encodeResp } from '../../src/protocol/resp.ts';
import { SharedStats } from '../../src/stats/counters.ts';

const b = (...words: string[]) => words.map((w) => Buffer.from(w));
const stats = SharedStats.create(1);
const ctx = { stats, workerId: 0 } as unknown as CommandContext;
const lineOf = (r: Reply) => String(encodeLineReply(r));
const wire = (r: Reply) => [lineOf(r), String(encodeResp(r, 2))];

const roll = defineCommand({
  name: 'roll',
  summary: 'Rolls dice.',
  args: [
    { name: 'dice', type: 'integer', min: 1, max: 100 },
    { name: 'mode', type: 'enum', values: ['sum', 'max'], optional: true },
    {
      name: 'opts',
      type: 'options',
      options: { seed: { type: 'integer' }, label: { type: 'string' } },
    },
  ],
  run: (_ctx, { dice, mode, opts }) => {
    // Compile-time checks of the inferred types: these assignments fail `tsc` if inference breaks.
    const d: number = dice;
    const m: 'sum' | 'max' | undefined = mode;
    const s: number | undefined = opts.seed;
    const l: string | undefined = opts.label;
    return `${d} ${m} ${s} ${l}`;
  },
});

describe('declared arguments', () => {
  test('arity and usage come from the declarations', () => {
    assert.equal(roll.name, 'ROLL');
    assert.equal(roll.usage, 'ROLL <dice> [sum|max] [seed=<integer>] [label=<string>]');
    assert.equal(roll.minArgs, 1);
    assert.equal(roll.maxArgs, Infinity);
    assert.equal(roll.args?.length, 3);
    const fixed = defineCommand({
      name: 'PAIR',
      args: [
        { name: 'a', type: 'string' },
        { name: 'b', type: 'bytes', optional: true },
      ],
      run: () => 'ok',
    });
    assert.deepEqual([fixed.minArgs, fixed.maxArgs, fixed.usage], [1, 2, 'PAIR <a> [<b>]']);
  });

  test('run gets typed values: enums as declared, options case-insensitive', () => {
    assert.equal(roll.run(ctx, b('3')), '3 undefined undefined undefined');
    assert.equal(roll.run(ctx, b('3', 'MAX', 'SEED=7', 'label=x=y')), '3 max 7 x=y');
    assert.equal(roll.run(ctx, b('100', 'seed=-2')), '100 undefined -2 undefined');
  });

  test('bad values get a reply naming the argument, in each protocol style', () => {
    assert.deepEqual(wire(roll.run(ctx, b('0')) as Reply), [
      "ERROR: Invalid 'dice' for 'ROLL': must be an integer from 1 to 100 (usage: ROLL <dice> [sum|max] [seed=<integer>] [label=<string>])\n",
      "-ERR invalid 'dice' for 'roll' command: must be an integer from 1 to 100\r\n",
    ]);
    for (const bad of [['1.5'], ['01'], ['x'], ['1e3'], ['101'], ['9007199254740993']])
      assert.equal((roll.run(ctx, b(...bad)) as ReplyError).code, codes.ERR_BAD_ARGUMENT, bad[0]);
    assert.match(
      String(encodeResp(roll.run(ctx, b('3', 'avg')) as Reply, 2)),
      /must be one of sum, max/,
    );
    assert.match(
      lineOf(roll.run(ctx, b('3', 'sum', 'color=red')) as Reply),
      /^ERROR: Unknown or repeated option 'color' for 'ROLL'/,
    );
    assert.match(
      String(encodeResp(roll.run(ctx, b('3', 'seed=1', 'seed=2')) as Reply, 2)),
      /^-ERR unknown or repeated option 'seed'/,
    );
    assert.match(String(encodeResp(roll.run(ctx, b('3', 'seed=x')) as Reply, 2)), /option 'seed'/);
  });

  test('variadic, rest and number arguments', () => {
    const sum = defineCommand({
      name: 'SUM',
      args: [{ name: 'values', type: 'number', variadic: true, min: 0 }],
      run: (_c, { values }) => values.reduce((x: number, y: number) => x + y, 0),
    });
    assert.deepEqual([sum.minArgs, sum.maxArgs, sum.usage], [1, Infinity, 'SUM <values> ...']);
    assert.equal(sum.run(ctx, b('1.5', '2', '.5', '1e1')), 14);
    assert.match(lineOf(sum.run(ctx, b('1', '-1')) as Reply), /at least 0/);
    assert.match(lineOf(sum.run(ctx, b('NaN')) as Reply), /Invalid 'values'/);
    const greet = defineCommand({
      name: 'GREET',
      args: [{ name: 'name', type: 'string', rest: true }],
      run: (_c, { name }) => `Hello, ${name}`,
    });
    // The only argument takes the rest: byte for byte on a line, joined over RESP.
    assert.equal(greet.restOfLine, true);
    assert.equal(greet.maxArgs, Infinity);
    assert.equal(greet.run(ctx, b('two', 'words')), 'Hello, two words');
    const tag = defineCommand({
      name: 'TAG',
      args: [
        { name: 'key', type: 'string', maxLength: 3 },
        { name: 'words', type: 'string', variadic: true, optional: true },
      ],
      run: (_c, { key, words }) => `${key}:${words.join('+')}`,
    });
    assert.equal(tag.restOfLine, false);
    assert.equal(tag.run(ctx, b('abc')), 'abc:');
    assert.equal(tag.run(ctx, b('abc', 'x', 'y')), 'abc:x+y');
    assert.match(lineOf(tag.run(ctx, b('abcd')) as Reply), /at most 3 bytes/);
  });

  test('bytes arrive as Buffers, untouched', () => {
    const put = defineCommand({
      name: 'PUT',
      args: [{ name: 'blob', type: 'bytes' }],
      run: (_c, { blob }) => blob.length,
    });
    assert.equal(put.run(ctx, [Buffer.from([0, 255, 13, 10])]), 4);
  });

  test('invalid declarations are refused with ERR_COMMAND_DEFINITION', () => {
    const bad = (args: unknown, why: RegExp) =>
      assert.throws(
        () => defineCommand({ name: 'X', args, run: () => 1 } as never),
        (e: TcpoolError) => e.code === codes.ERR_COMMAND_DEFINITION && why.test(e.message),
      );
    bad([{ name: 'a', type: 'float' }], /type must be/);
    bad(
      [
        { name: 'a', type: 'string', variadic: true },
        { name: 'b', type: 'string' },
      ],
      /last/,
    );
    bad(
      [
        { name: 'a', type: 'string', optional: true },
        { name: 'b', type: 'string' },
      ],
      /required/,
    );
    bad([{ name: 'a', type: 'integer', min: 5, max: 1 }], /min is above max/);
    bad([{ name: 'a', type: 'enum', values: [] }], /values/);
    bad(
      [
        { name: 'a', type: 'string' },
        { name: 'a', type: 'string' },
      ],
      /twice/,
    );
    bad(
      [
        { name: 'o', type: 'options', options: {} },
        { name: 'a', type: 'string' },
      ],
      /last/,
    );
    bad([{ name: 'a', type: 'integer', rest: true }], /rest needs/);
    assert.throws(
      () => defineCommand({ name: 'X', args: [], minArgs: 1, run: () => 1 } as never),
      /not both/,
    );
    assert.throws(() => defineCommand({ name: 'X', timeout: -1, run: () => 1 }), /timeout/);
    assert.throws(() => defineCommand({ name: 'X', cost: 1.5, run: () => 1 }), /cost/);
  });

  test('options: noAuth, timeout and cost are kept on the spec', () => {
    const spec = defineCommand({ name: 'OPEN', noAuth: true, timeout: 50, cost: 5, run: () => 1 });
    assert.deepEqual(
      [spec.noAuth, spec.flags.includes('no_auth'), spec.timeoutMs, spec.cost],
      [true, true, 50, 5],
    );
    const plain = defineCommand({ name: 'PLAIN', run: () => 1 });
    assert.deepEqual(
      [plain.noAuth, plain.timeoutMs, plain.cost, plain.args],
      [false, null, 1, null],
    );
    assert.equal(defineCommand(spec), spec, 'defining a spec again returns it');
  });
});

describe('CommandError', () => {
  test('line: ERROR: message; RESP: the code word first', () => {
    const e = new CommandError('NOTFOUND', 'no such user');
    assert.deepEqual(wire(e), ['ERROR: no such user\n', '-NOTFOUND no such user\r\n']);
    assert.equal(e.code, codes.ERR_COMMAND);
    assert.equal(e.replyCode, 'NOTFOUND');
    assert.equal(e.status, 400);
    assert.equal(new CommandError('GONE', 'x', { status: 410 }).status, 410);
    assert.equal(encodeResp(new CommandError('BAD', 'two\r\nlines'), 3), '-BAD two lines\r\n');
    assert.throws(() => new CommandError('not found', 'x'), TypeError);
  });
});

/** Writes a module into a fresh folder (with the given package.json) and loads it. */
function moduleDir(pkg: object | null): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcpool-mod-'));
  if (pkg !== null) writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg));
  return dir;
}
const srcIndex = pathToFileURL(new URL('../../src/index.ts', import.meta.url).pathname).href;

describe('COMMANDS_MODULE loading', () => {
  test('a module object: commands, setup before use, teardown bounded by its timeout', async () => {
    const dir = moduleDir({ type: 'module' });
    const file = join(dir, 'mod.ts');
    writeFileSync(
      file,
      `import { defineCommand, defineModule, CommandError } from '${srcIndex}';
let pool: string | null = null;
export const events: string[] = [];
export default defineModule({
  async setup(worker) { pool = 'pool-of-' + worker.id; events.push('setup'); },
  async teardown() { events.push('teardown'); pool = null; },
  commands: [
    defineCommand({ name: 'POOL', run: () => pool }),
    defineCommand({ name: 'FAIL', args: [{ name: 'sync', type: 'enum', values: ['sync', 'async'] }],
      run: async (_c, { sync }) => { if (sync === 'sync') throw new CommandError('NOPE', 'said no'); await null; throw new CommandError('LATER', 'said no later'); } }),
    defineCommand({ name: 'SLOW', timeout: 30, run: () => new Promise((r) => setTimeout(() => r('late'), 300)) }),
    defineCommand({ name: 'SLOWDEFAULT', run: () => new Promise((r) => setTimeout(() => r('late'), 300)) }),
    defineCommand({ name: 'BUG', run: () => { throw new Error('bug'); } }),
  ],
});
`,
    );
    const loaded = await loadCommands(file, 40);
    assert.deepEqual(
      loaded.commands.map((c) => c.name),
      ['POOL', 'FAIL', 'SLOW', 'SLOWDEFAULT', 'BUG'],
    );
    const { events } = (await import(pathToFileURL(file).href)) as { events: string[] };
    const run = (name: string, ...args: string[]) =>
      loaded.registry.lookup(name)!.run(ctx, b(...args));
    assert.equal(run('POOL'), null);
    await loaded.setup({ id: 3, config: {} as never, log: console });
    assert.equal(run('POOL'), 'pool-of-3');
    assert.equal(encodeResp((await run('FAIL', 'sync')) as Reply, 2), '-NOPE said no\r\n');
    assert.equal(encodeResp((await run('FAIL', 'async')) as Reply, 2), '-LATER said no later\r\n');
    const before = stats.snapshot().totals.command_timeouts;
    const t0 = Date.now();
    assert.deepEqual(wire((await run('SLOW')) as Reply), [
      'ERROR: Command SLOW timed out after 30 ms\n',
      "-ERR command 'slow' timed out after 30 ms\r\n",
    ]);
    assert.match(lineOf((await run('SLOWDEFAULT')) as Reply), /after 40 ms/);
    assert.ok(Date.now() - t0 < 250, 'timeouts answered before the late results');
    assert.equal(stats.snapshot().totals.command_timeouts, before + 2);
    assert.throws(
      () => run('BUG'),
      /bug/,
      'other errors still reach the connection (Internal error)',
    );
    const logged: string[] = [];
    await loaded.teardown(1000, (m) => logged.push(m));
    assert.deepEqual(events, ['setup', 'teardown']);
    assert.deepEqual(logged, []);
  });

  test('a failing setup names the module; a slow teardown is abandoned and logged', async () => {
    const dir = moduleDir(null);
    const file = join(dir, 'hooks.mjs');
    writeFileSync(
      file,
      `export default { commands: [], setup() { throw new Error('no database at db:5432'); },
        teardown: () => new Promise(() => {}) };`,
    );
    const loaded = await loadCommands(file);
    await assert.rejects(
      loaded.setup({ id: 0, config: {} as never, log: console }),
      (e: TcpoolError) =>
        e.code === codes.ERR_COMMANDS_SETUP &&
        e.message === `COMMANDS_MODULE ${file}: setup failed in worker 0: no database at db:5432`,
    );
    const logged: string[] = [];
    await loaded.teardown(20, (m) => logged.push(m));
    assert.deepEqual(logged, [`COMMANDS_MODULE ${file}: teardown did not finish within 20 ms`]);
  });

  test('CommonJS projects: .ts and .js with import/export, module.exports, .cts', async () => {
    const dir = moduleDir({ name: 'cjs-project', type: 'commonjs' });
    const cases: [string, string][] = [
      ['esm.ts', `const n: number = 1;\nexport default [{ name: 'ESMTS', run: () => n }];\n`],
      ['esm.js', `export default [{ name: 'ESMJS', run: () => 2 }];\n`],
      ['cjs.ts', `const n: number = 3;\nmodule.exports = [{ name: 'CJSTS', run: () => n }];\n`],
      ['cjs.cts', `module.exports = { commands: [{ name: 'CTS', run: () => 4 }] };\n`],
      ['both.js', `module.exports = { default: [{ name: 'TSCOUT', run: () => 5 }] };\n`],
    ];
    for (const [name, source] of cases) writeFileSync(join(dir, name), source);
    const results = [];
    for (const [name] of cases) {
      const { commands } = await loadCommands(join(dir, name));
      results.push([commands[0].name, commands[0].run(ctx, [])]);
    }
    assert.deepEqual(results, [
      ['ESMTS', 1],
      ['ESMJS', 2],
      ['CJSTS', 3],
      ['CTS', 4],
      ['TSCOUT', 5],
    ]);
  });

  test('a package name resolves from the working directory', async (t) => {
    const dir = moduleDir({ name: 'app' });
    const pkg = join(dir, 'node_modules', 'my-commands');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({ name: 'my-commands', type: 'module', exports: './index.js' }),
    );
    writeFileSync(join(pkg, 'index.js'), `export default [{ name: 'FROMPKG', run: () => 'pkg' }];`);
    const cwd = process.cwd();
    process.chdir(dir);
    t.after(() => process.chdir(cwd));
    const { commands } = await loadCommands('my-commands');
    assert.equal(commands[0].run(ctx, []), 'pkg');
    await assert.rejects(loadCommands('no-such-package'), (e: TcpoolError) =>
      e.message.startsWith('COMMANDS_MODULE no-such-package: cannot load it'),
    );
  });

  test('a default export of the wrong shape is refused', async () => {
    const dir = moduleDir({ type: 'module' });
    const file = join(dir, 'bad.js');
    writeFileSync(file, 'export default { commands: [], setup: 5 };');
    await assert.rejects(loadCommands(file), /setup must be a function/);
    writeFileSync(join(dir, 'bad2.js'), 'export default 42;');
    await assert.rejects(loadCommands(join(dir, 'bad2.js')), /default export must be/);
  });
});
