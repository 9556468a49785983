// Logs: the original's format, LOG_FILE appended, JSON lines, no interleaving across threads.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { TestClient } from '../helpers/client.ts';
import { spawn } from 'node:child_process';
import { BIN, cleanEnv, freePort, ServerProcess, startServer } from '../helpers/server.ts';

const COMMANDS = new URL('../fixtures/commands.js', import.meta.url).pathname;

const servers: ServerProcess[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.kill()));
});

const TEXT_LINE = /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(DEBUG|INFO|WARN|ERROR)\] \S.*$/;

describe('logging', () => {
  test('text lines from 4 workers never interleave; LOG_FILE is appended, not truncated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpool-log-'));
    const file = join(dir, 'tcpool.log');
    writeFileSync(file, 'earlier line\n');
    const server = await startServer({ env: { THREAD_POOL_SIZE: '4', LOG_FILE: file } });
    servers.push(server);
    const n = 300;
    const clients = await Promise.all(
      Array.from({ length: n }, () => TestClient.connect(server.port)),
    );
    await Promise.all(clients.map((c) => c.request('PING')));
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closedPromise));
    await server.waitForLog(/Client disconnected: .*\(Active: 0\)\n/);
    assert.equal((await server.stop()).code, 0);

    const lines = readFileSync(file, 'utf8').split('\n');
    assert.equal(lines[0], 'earlier line');
    assert.equal(lines.pop(), '');
    for (const line of lines.slice(1)) assert.match(line, TEXT_LINE);
    assert.equal(
      lines.filter((l) => /\[INFO\] Client connected: 127\.0\.0\.1:\d+ \(Active: \d+\)$/.test(l))
        .length,
      n,
    );
    assert.equal(
      lines.filter((l) => /\[INFO\] Client disconnected: 127\.0\.0\.1:\d+ \(Active: \d+\)$/.test(l))
        .length,
      n,
    );
    assert.equal(readFileSync(file, 'utf8'), 'earlier line\n' + server.stdout);
    // The original's start-up and shutdown lines, in order.
    const order = [
      /\[INFO\] Server starting on port 0$/,
      /\[INFO\] Thread pool size: 4$/,
      /\[INFO\] Max connections: 10000$/,
      /\[INFO\] Server listening on 127\.0\.0\.1:\d+$/,
      /\[INFO\] Received SIGTERM, shutting down server\.\.\.$/,
      /\[INFO\] Server stopped\. Total active clients at shutdown: 0$/,
    ];
    let at = 0;
    for (const re of order) {
      const found = lines.findIndex((l, i) => i >= at && re.test(l));
      assert.ok(found >= 0, `${re} after line ${at}`);
      at = found;
    }
  });

  test('LOG_FORMAT=json gives one object a line; LOG_LEVEL=DEBUG adds debug lines', async () => {
    const server = await startServer({ env: { LOG_FORMAT: 'json', LOG_LEVEL: 'debug' } });
    servers.push(server);
    const c = await TestClient.connect(server.port);
    assert.equal(await c.request('PING'), 'PONG');
    c.socket.resetAndDestroy();
    await server.waitForLog(/Client disconnected/);
    await server.stop();
    const entries = server.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { time: string; level: string; source: string | number; msg: string },
      );
    for (const e of entries) {
      assert.ok(!Number.isNaN(Date.parse(e.time)));
      assert.ok(['DEBUG', 'INFO', 'WARN', 'ERROR'].includes(e.level));
    }
    const connected = entries.find((e) => e.msg.startsWith('Client connected: 127.0.0.1:'));
    assert.ok(connected);
    assert.equal(typeof connected.source, 'number');
    assert.ok(
      entries.some(
        (e) => e.level === 'DEBUG' && /Client error: 127\.0\.0\.1:\d+: ECONNRESET/.test(e.msg),
      ),
    );
    assert.ok(
      entries.some((e) => e.source === 'supervisor' && e.msg.startsWith('Server stopped.')),
    );
  });

  test('LOG_LEVEL=ERROR keeps only errors', async () => {
    // Nothing announces the port at this level, so pick a free one and poll until it serves.
    const port = await freePort();
    const server = new ServerProcess(
      spawn(process.execPath, [BIN, 'serve', '--port', String(port), '--log-level', 'error'], {
        env: cleanEnv({ HOST: '127.0.0.1', THREAD_POOL_SIZE: '1', COMMANDS_MODULE: COMMANDS }),
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    servers.push(server);
    const c = await TestClient.whenServing(port);
    assert.equal(await c.request('THROW'), 'ERROR: Internal error');
    c.close();
    await server.waitForLog(/\[ERROR\] Command THROW failed/);
    await server.stop();
    const lines = server.stdout.trim().split('\n');
    assert.ok(lines.length > 0);
    for (const line of lines.filter((l) => l.startsWith('[')))
      assert.match(line, /^\[[^\]]+\] \[ERROR\] /);
  });

  test('IPv6 clients are logged as [addr]:port', async () => {
    const server = await startServer({ env: { HOST: '::1' } });
    servers.push(server);
    assert.match(server.stdout, /Server listening on \[::1\]:\d+/);
    const c = await TestClient.connect(server.port, '::1');
    assert.equal(await c.request('PING'), 'PONG');
    await server.waitForLog(/Client connected: \[::1\]:\d+ \(Active: 1\)/);
    c.close();
  });
});

/** STATS FULL's counters as numbers. */
async function counters(port: number): Promise<Record<string, number>> {
  const c = await TestClient.connect(port);
  const line = await c.request('STATS FULL');
  c.close();
  return Object.fromEntries(
    line.split(' ').map((kv) => {
      const [k, v] = kv.split('=');
      return [k, Number(v)];
    }),
  );
}

/** Opens and closes `n` connections, `batch` at a time: two log lines each. */
async function churn(port: number, n: number, batch = 100): Promise<void> {
  for (let done = 0; done < n; done += batch) {
    const clients = await Promise.all(
      Array.from({ length: Math.min(batch, n - done) }, () => TestClient.connect(port)),
    );
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closedPromise));
  }
}

/**
 * A server whose stdout nobody reads: it tells its port (PORT=0) in LOG_FILE instead, so that no
 * port has to be guessed free (another process could take it meanwhile).
 */
async function startUnread(env: Record<string, string>): Promise<ServerProcess> {
  const log = join(mkdtempSync(join(tmpdir(), 'tcpool-unread-')), 'tcpool.log');
  const server = new ServerProcess(
    spawn(process.execPath, [BIN, 'serve'], {
      env: cleanEnv({ PORT: '0', HOST: '127.0.0.1', THREAD_POOL_SIZE: '1', LOG_FILE: log, ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  servers.push(server);
  server.child.stdout!.pause(); // no reader: the pipe (64 KiB) and then the log buffer fill up
  for (let i = 0; i < 100 && server.port === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const m = /Server listening on \S+:(\d+)/.exec(
      readFileSync(log, { encoding: 'utf8', flag: 'a+' }),
    );
    if (m) server.port = Number(m[1]);
  }
  assert.ok(server.port !== 0, `server did not listen; stderr: ${server.stderr}`);
  return server;
}

describe('log sinks never hold the server', () => {
  test('LOG_FILE=/dev/full: one notice on stderr, counted, serving unaffected', async () => {
    const server = await startServer({ env: { LOG_FILE: '/dev/full' } });
    servers.push(server);
    await churn(server.port, 50, 25);
    const c = await TestClient.connect(server.port);
    assert.equal(await c.request('PING'), 'PONG');
    c.close();
    await server.waitForLog(/Client disconnected: .*\(Active: 0\)\n/);
    // "(Active: 0)" may be an earlier batch's line: the server may still be seeing the last
    // closes, and logging (and dropping, and counting) their lines.
    let stats = await counters(server.port);
    for (const until = Date.now() + 5000; stats.log_lines_dropped < 100 && Date.now() < until; ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      stats = await counters(server.port);
    }
    assert.ok(stats.log_write_errors > 1, `log_write_errors=${stats.log_write_errors}`);
    assert.ok(stats.log_lines_dropped >= 100, `log_lines_dropped=${stats.log_lines_dropped}`);
    assert.equal((await server.stop()).code, 0);
    assert.equal(
      server.stderr,
      'tcpool: cannot write LOG_FILE /dev/full (ENOSPC): its lines are dropped and counted (log_write_errors, log_lines_dropped) until a write succeeds\n',
    );
    // stdout still has every line.
    assert.match(
      server.stdout,
      /\[INFO\] Server stopped\. Total active clients at shutdown: \d+\n$/,
    );
  });

  test('SIGUSR1 reopens LOG_FILE (logrotate moved it away)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpool-rotate-'));
    const file = join(dir, 'tcpool.log');
    const server = await startServer({ env: { LOG_FILE: file } });
    servers.push(server);
    renameSync(file, `${file}.1`);
    process.kill(server.pid, 'SIGUSR1');
    await server.waitForLog(/\[INFO\] Received SIGUSR1: log file reopened\n/);
    const c = await TestClient.connect(server.port);
    assert.equal(await c.request('PING'), 'PONG');
    c.close();
    await server.waitForLog(/Client disconnected/);
    assert.equal((await server.stop()).code, 0);
    const before = readFileSync(`${file}.1`, 'utf8');
    const after = readFileSync(file, 'utf8');
    assert.match(before, /\[INFO\] Server listening on/);
    assert.doesNotMatch(before, /Client connected/);
    assert.match(after, /^\[[^\]]+\] \[INFO\] Received SIGUSR1: log file reopened\n/);
    assert.match(after, /Client connected: 127\.0\.0\.1:\d+/);
    assert.equal(before + after, server.stdout);
  });

  test('stdout a pipe nobody reads: lines dropped and counted, SIGTERM exits within SHUTDOWN_TIMEOUT_MS', async () => {
    const server = await startUnread({ LOG_BUFFER_BYTES: '65536', SHUTDOWN_TIMEOUT_MS: '1000' });
    const { port } = server;
    await churn(port, 3000); // about 6,000 lines, 400 KiB of log
    const stats = await counters(port);
    assert.ok(stats.log_lines_dropped > 1000, `log_lines_dropped=${stats.log_lines_dropped}`);
    assert.equal(await (await TestClient.connect(port)).request('PING'), 'PONG');
    const started = Date.now();
    const { code } = await server.stop('SIGTERM', 10_000);
    const ms = Date.now() - started;
    assert.equal(code, 0);
    // SHUTDOWN_TIMEOUT_MS and the exit itself (slow under coverage, on a loaded machine): bounded.
    assert.ok(ms < 1000 + 5000, `exited ${ms} ms after SIGTERM`);
    assert.match(server.stderr, /tcpool: stdout did not take the queued log within 1000 ms/);
  });

  test('a reader that comes back gets one notice of what was dropped', async () => {
    const server = await startUnread({ LOG_BUFFER_BYTES: '65536' });
    const { port } = server;
    await churn(port, 2000);
    assert.ok((await counters(port)).log_lines_dropped > 0);
    server.child.stdout!.resume();
    const m = await server.waitForLog(
      /\[WARN\] (\d+) log line\(s\) dropped: stdout was not being read \(more than LOG_BUFFER_BYTES=65536 queued\)\n/,
    );
    // Read after the notice: with a reader back, nothing more is dropped, so the two agree.
    assert.equal(Number(m[1]), (await counters(port)).log_lines_dropped);
    assert.equal((await server.stop()).code, 0);
    assert.equal(server.stdout.match(/log line\(s\) dropped/g)?.length, 1);
  });
});
