// `tcpool bench` against a real server: both protocols, open loop, idle connections, the chart,
// and that it never hangs: a stalled or closed connection ends the run with exit code 1.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestClient } from '../helpers/client.ts';
import { connectLoad } from '../helpers/connect-load.ts';
import {
  BIN,
  cleanEnv,
  freePort,
  runTcpool,
  type ServerProcess,
  startServer,
} from '../helpers/server.ts';

const COMMANDS = new URL('../fixtures/commands.js', import.meta.url).pathname;
let server: ServerProcess;
before(async () => {
  server = await startServer({ env: { COMMANDS_MODULE: COMMANDS } });
});
after(async () => {
  await server.kill();
});

const bench = (...args: string[]) =>
  runTcpool(['bench', '--port', String(server.port), ...args], { timeoutMs: 60_000 });

describe('tcpool bench', () => {
  test('line protocol, closed loop, JSON result', async () => {
    const r = await bench('-c', '10', '-P', '4', '-n', '20000', '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.requests, 20000);
    assert.equal(result.errors, 0);
    assert.ok(result.rps > 0);
    for (const k of ['p50', 'p90', 'p99', 'p99.9', 'max']) assert.ok(result.latencyUs[k] > 0, k);
    assert.ok(
      result.latencyUs.p50 <= result.latencyUs.p99 && result.latencyUs.p99 <= result.latencyUs.max,
    );
    assert.deepEqual(result.problems, []);
  });

  test('RESP with two client threads, and a text report', async () => {
    const r = await bench(
      '-c',
      '8',
      '-P',
      '8',
      '-n',
      '16000',
      '--protocol',
      'resp',
      '--command',
      'ECHO hello',
      '-t',
      '2',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^target {6}127\.0\.0\.1:\d+ \(resp\) "ECHO hello"$/m);
    assert.match(r.stdout, /^requests {4}16000 in [\d.]+ s = \d+ req\/s, errors 0$/m);
    assert.match(r.stdout, /^latency {5}p50 \S+ {2}p90 \S+ {2}p99 \S+ {2}p99\.9 \S+ {2}max \S+$/m);
  });

  test('open loop at a fixed rate, with idle connections that must still answer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpool-bench-'));
    const chart = join(dir, 'latency.svg');
    const r = await bench(
      '-c',
      '5',
      '--rate',
      '2000',
      '-d',
      '1',
      '--idle',
      '200',
      '--json',
      '--chart',
      chart,
    );
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.ok(
      result.requests >= 1500 && result.requests <= 2100,
      `sent on schedule: ${result.requests}`,
    );
    assert.deepEqual(result.idle, { requested: 200, open: 200, answered: 200 });
    const svg = readFileSync(chart, 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<path d="M[\d.]+,[\d.]+( L[\d.]+,[\d.]+)+"/);
    assert.match(svg, />99\.9%</);
  });

  test('error replies are counted and fail the run', async () => {
    const r = await bench('-c', '2', '-n', '100', '--command', 'NOSUCH', '--json');
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).errors, 100);
  });

  test('a stalled server is reported, not waited on forever', async () => {
    const r = await bench(
      '-c',
      '2',
      '-n',
      '4',
      '--command',
      'SLOWECHO 60000 x',
      '--stall-timeout',
      '300',
      '--json',
    );
    assert.equal(r.code, 1);
    const result = JSON.parse(r.stdout);
    assert.match(
      result.problems.join(' '),
      /stalled: no reply for 300 ms with 2 request\(s\) outstanding/,
    );
  });

  test('a server that closes connections is reported', async () => {
    const closer = createServer((s) => s.destroy());
    await new Promise<void>((r) => closer.listen(0, '127.0.0.1', r));
    const port = (closer.address() as { port: number }).port;
    try {
      const r = await runTcpool(
        ['bench', '--port', String(port), '-c', '2', '-n', '10', '--json'],
        { timeoutMs: 30_000 },
      );
      assert.equal(r.code, 1);
      assert.match(JSON.parse(r.stdout).problems.join(' '), /closed a connection|connection error/);
    } finally {
      closer.close();
    }
  });

  test('--connect-rate: a new connection per request, counted by the server', async () => {
    const observer = await TestClient.connect(server.port);
    const stats = async () =>
      Number(/ connections=(\d+)/.exec(await observer.request('STATS FULL'))?.[1] ?? Number.NaN);
    const before = await stats();
    const r = await bench('--connect-rate', '-c', '5', '-n', '300', '--protocol', 'resp', '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.connections, 300);
    assert.equal(result.errors, 0);
    assert.equal(result.failed, 0);
    assert.equal(result.errorReplies, 0);
    assert.deepEqual(result.reasons, {});
    assert.ok(result.perSecond > 0);
    assert.ok(result.latencyUs.p50 > 0 && result.latencyUs.p50 <= result.latencyUs.max);
    assert.equal((await stats()) - before, 300, 'each request came on its own connection');
    observer.close();
    const text = await bench('--connect-rate', '-c', '2', '-n', '20');
    assert.match(
      text.stdout,
      /connections 20 in [\d.]+ s = \d+ conn\/s, errors 0 \(failed connects 0, error replies 0\)$/m,
    );
    assert.doesNotMatch(text.stdout, /failures|problems/);
  });

  test('--connect-rate counts error replies apart from failed connects', async () => {
    const r = await bench('--connect-rate', '-c', '2', '-n', '12', '--command', 'NOPE', '--json');
    assert.equal(r.code, 1);
    const result = JSON.parse(r.stdout);
    assert.deepEqual(
      [result.connections, result.errors, result.failed, result.errorReplies, result.reasons],
      [0, 12, 0, 12, { 'error reply': 12 }],
    );
    assert.deepEqual(result.problems, ['error reply: ERROR: Unknown command']);
    const text = await bench('--connect-rate', '-c', '1', '-n', '3', '--command', 'NOPE');
    assert.equal(text.code, 1);
    assert.match(text.stdout, /errors 3 \(failed connects 0, error replies 3\)$/m);
    assert.match(text.stdout, /^failures {4}error reply ×3$/m);
  });

  test('--connect-rate -d: runs for the duration, then reports', async () => {
    const r = await bench('--connect-rate', '-c', '2', '-d', '1', '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.ok(result.elapsedSeconds >= 1, `elapsed ${result.elapsedSeconds}`);
    assert.ok(result.connections > 0);
    assert.equal(result.failed, 0);
  });

  test('--connect-rate -d: SIGINT ends the run early and it reports what it has', async () => {
    const observer = await TestClient.connect(server.port);
    const served = async () =>
      Number(/ connections=(\d+)/.exec(await observer.request('STATS FULL'))?.[1] ?? Number.NaN);
    const before = await served();
    const child = spawn(
      process.execPath,
      [
        BIN,
        'bench',
        '--port',
        String(server.port),
        '--connect-rate',
        '-c',
        '2',
        '-d',
        '60',
        '--json',
      ],
      { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const exit = new Promise<number | null>((r) => child.on('exit', r));
    try {
      // Bounded: 500 polls of 10 ms for the loops to have made a few connections.
      for (let i = 0; i < 500 && (await served()) - before < 10; i++) await sleep(10);
      process.kill(child.pid!, 'SIGINT');
      assert.equal(await Promise.race([exit, sleep(20_000, 'still running')]), 0);
      const result = JSON.parse(out);
      assert.ok(result.connections >= 10, `connections ${result.connections}`);
      assert.ok(result.elapsedSeconds < 60, `elapsed ${result.elapsedSeconds}`);
      assert.deepEqual([result.failed, result.errorReplies], [0, 0]);
    } finally {
      observer.close();
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    }
  });

  test('runConnectRate stops when its signal is aborted (what the tests and the storm use)', async () => {
    const load = connectLoad(server.port, 2);
    const observer = await TestClient.connect(server.port);
    const served = async () =>
      Number(/ connections=(\d+)/.exec(await observer.request('STATS FULL'))?.[1] ?? Number.NaN);
    const before = await served();
    // Bounded: 200 polls of 10 ms for the loops to have made a few connections.
    for (let i = 0; i < 200 && (await served()) - before < 10; i++) await sleep(10);
    const result = await load.stop();
    observer.close();
    assert.ok(result.connections >= 10, `connections ${result.connections}`);
    assert.deepEqual([result.failed, result.errorReplies], [0, 0]);
  });

  test('--connect-rate against a server that closes at once: failed connects, by reason', async () => {
    const closer = createServer((s) => s.end());
    await new Promise<void>((r) => closer.listen(0, '127.0.0.1', r));
    try {
      const port = (closer.address() as { port: number }).port;
      const r = await runTcpool(
        ['bench', '--port', String(port), '--connect-rate', '-c', '2', '-n', '6', '--json'],
        { timeoutMs: 30_000 },
      );
      assert.equal(r.code, 1);
      const result = JSON.parse(r.stdout);
      assert.deepEqual([result.failed, result.errorReplies], [6, 0]);
      assert.deepEqual(result.reasons, { 'closed before its reply': 6 });
    } finally {
      closer.close();
    }
  });

  test('--connect-rate against a port nobody listens on: exit 1, the reason', async () => {
    const port = await freePort();
    const r = await runTcpool(
      ['bench', '--port', String(port), '--connect-rate', '-c', '2', '-n', '10', '--json'],
      { timeoutMs: 30_000 },
    );
    assert.equal(r.code, 1);
    const result = JSON.parse(r.stdout);
    assert.equal(result.errors, 10);
    assert.deepEqual([result.failed, result.errorReplies], [10, 0]);
    assert.deepEqual(result.reasons, { ECONNREFUSED: 10 });
    assert.deepEqual(result.problems, ['ECONNREFUSED']);
  });

  test('--help says what --connect-rate counts', async () => {
    const r = await runTcpool(['bench', '--help']);
    assert.equal(r.code, 0);
    assert.match(
      r.stdout,
      /^ {2}--connect-rate +a new connection per request \(-c loops; default -n 10000, or -d seconds\)$/m,
    );
    assert.match(r.stdout, /error replies are counted apart, by reason\.$/m);
    assert.match(r.stdout, /^SIGINT \(Ctrl-C\) ends a --connect-rate run early/m);
  });

  test('bad options exit 2 with a message', async () => {
    const r = await bench('--protocol', 'http');
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'tcpool: Invalid --protocol "http": must be line or resp\n');
  });

  test('an unwritable --chart path is refused before the run, in one line', async () => {
    const r = await bench('-n', '50000', '--chart', '/no/such/dir/latency.svg');
    assert.deepEqual(
      [r.code, r.stdout, r.stderr],
      [2, '', 'tcpool: Cannot write --chart /no/such/dir/latency.svg: ENOENT\n'],
    );
  });
});
