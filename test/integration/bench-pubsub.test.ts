// `tcpool bench --pubsub` against real servers: every message counted at every subscriber across
// a server's workers, the same run against redis-server, and that it never hangs: a server that
// never confirms, or cuts subscribers off, ends the run with exit code 1 and says why.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { freePort, runTcpool, type ServerProcess, startServer } from '../helpers/server.ts';

const servers: ServerProcess[] = [];
let server: ServerProcess;
before(async () => {
  server = await startServer({ env: { THREAD_POOL_SIZE: '2' } });
  servers.push(server);
});
after(async () => {
  for (const s of servers) await s.kill();
});

const pubsub = (port: number, ...args: string[]) =>
  runTcpool(['bench', '--pubsub', '--port', String(port), ...args], { timeoutMs: 60_000 });

const hasRedis = spawnSync('sh', ['-c', 'command -v redis-server']).status === 0;
if (!hasRedis && process.env.CI) throw new Error('redis-server is not installed');

describe('tcpool bench --pubsub', () => {
  test('60 subscribers on 3 channels over 2 workers each get every message; JSON result', async () => {
    const r = await pubsub(
      server.port,
      '--subscribers',
      '60',
      '--channels',
      '3',
      '--messages',
      '300',
      '-t',
      '2',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const result = JSON.parse(r.stdout);
    assert.equal(result.published, 300);
    assert.equal(result.expected, 60 * 100);
    assert.equal(result.delivered, 60 * 100);
    assert.ok(result.deliveredPerSecond > 0 && result.publishedPerSecond > 0);
    assert.deepEqual([result.problems, result.ok], [[], true]);
  });

  test('a text report', async () => {
    const r = await pubsub(
      server.port,
      '--subscribers',
      '8',
      '--channels',
      '2',
      '--messages',
      '10',
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `target      127.0.0.1:${server.port} (resp) PUBLISH`);
    assert.equal(
      lines[1],
      'load        8 subscribers on 2 channel(s), 4 subscriber thread(s); 1 publisher, pipeline 500',
    );
    assert.match(lines[2], /^published {3}10 messages of 64 bytes = \d+ messages\/s$/);
    assert.match(lines[3], /^delivered {3}40 of 40 in \d+\.\d\d s = \d+ messages\/s$/);
  });

  test('the same run against redis-server', {
    skip: hasRedis ? false : 'redis-server not installed',
  }, async () => {
    const port = await freePort();
    const redis: ChildProcess = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    try {
      let r = await pubsub(port, '--subscribers', '20', '--messages', '40', '--json');
      // redis-server may take a moment to listen: one retry on a refused connection.
      if (r.code !== 0 && /ECONNREFUSED/.test(r.stderr + r.stdout)) {
        await new Promise((res) => setTimeout(res, 500));
        r = await pubsub(port, '--subscribers', '20', '--messages', '40', '--json');
      }
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const result = JSON.parse(r.stdout);
      assert.deepEqual([result.delivered, result.expected, result.ok], [200, 200, true]);
    } finally {
      redis.kill('SIGKILL');
    }
  });

  test('a server that never confirms the subscriptions is reported as stalled', async () => {
    const silent = createServer((s) => s.resume());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as { port: number }).port;
      const r = await pubsub(port, '--subscribers', '5', '--stall-timeout', '300', '--json');
      assert.equal(r.code, 1);
      assert.match(
        JSON.parse(r.stdout).problems.join(' '),
        /^stalled: 0 of 5 subscribed \(no progress for 300 ms\)$/,
      );
    } finally {
      silent.close();
    }
  });

  test('subscribers cut off by PUBSUB_OUTPUT_LIMIT_BYTES fail the run', async () => {
    const strict = await startServer({ env: { PUBSUB_OUTPUT_LIMIT_BYTES: '1' } });
    servers.push(strict);
    const r = await pubsub(strict.port, '--subscribers', '4', '--messages', '8', '--json');
    assert.equal(r.code, 1);
    const result = JSON.parse(r.stdout);
    assert.deepEqual(result.problems, ['a subscriber connection was closed by the server']);
    assert.ok(result.delivered < result.expected);
  });

  test('--messages below --channels is a usage error', async () => {
    const r = await pubsub(server.port, '--channels', '8', '--messages', '4');
    assert.deepEqual(
      [r.code, r.stderr],
      [2, 'tcpool: --messages (4) must be at least --channels (8)\n'],
    );
  });
});
