// Log sinks that fail must not hold the server. (1) stdout a pipe nobody reads, under connection
// churn (80,000 connections): RSS stays bounded, the lines past LOG_BUFFER_BYTES are dropped and
// counted, and SIGTERM
// exits within SHUTDOWN_TIMEOUT_MS. (2) LOG_FILE=/dev/full: one notice on stderr, counted, and
// serving (a tcpool bench run) unaffected.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TestClient } from '../helpers/client.ts';
import { BIN, cleanEnv, runTcpool, ServerProcess } from '../helpers/server.ts';

const CHURN = 80_000;
const PARALLEL = 100;
const SHUTDOWN_TIMEOUT_MS = 2000;

const servers: ServerProcess[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.kill()));
});

const rssMb = (pid: number): number =>
  Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024);

/**
 * A server on PORT=0. When its stdout is not read, it tells its port in a LOG_FILE instead (no
 * port guessed free, which another process could take meanwhile).
 */
async function start(env: Record<string, string>, readStdout: boolean): Promise<ServerProcess> {
  const log = join(mkdtempSync(join(tmpdir(), 'tcpool-log-sink-')), 'tcpool.log');
  const server = new ServerProcess(
    spawn(process.execPath, [BIN, 'serve'], {
      env: cleanEnv({
        PORT: '0',
        HOST: '127.0.0.1',
        THREAD_POOL_SIZE: '2',
        ...(readStdout ? {} : { LOG_FILE: log }),
        ...env,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  servers.push(server);
  if (readStdout) {
    server.port = Number((await server.waitForLog(/Server listening on \S+:(\d+)/, 20_000))[1]);
    return server;
  }
  server.child.stdout!.pause();
  for (let i = 0; i < 200 && server.port === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const m = /Server listening on \S+:(\d+)/.exec(
      readFileSync(log, { encoding: 'utf8', flag: 'a+' }),
    );
    if (m) server.port = Number(m[1]);
  }
  assert.ok(server.port !== 0, `server did not listen; stderr: ${server.stderr}`);
  return server;
}

/** `total` connections that each connect, PING and close, `PARALLEL` at a time. */
async function churn(port: number, total: number): Promise<number> {
  let started = 0;
  let failures = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (started < total) {
        started++;
        try {
          const c = await TestClient.connect(port);
          if ((await c.request('PING')) !== 'PONG') failures++;
          c.close();
          await c.closedPromise;
        } catch {
          failures++;
        }
      }
    }),
  );
  return failures;
}

async function counters(port: number): Promise<Record<string, number>> {
  const c = await TestClient.connect(port);
  const line = await c.request('STATS FULL');
  c.close();
  return Object.fromEntries(
    line.split(' ').map((kv) => [kv.split('=')[0], Number(kv.split('=')[1])]),
  );
}

/** RSS before and after CHURN connections, once the first 5,000 have filled pipe and queue. */
async function rssOverChurn(server: ServerProcess) {
  const warmFailures = await churn(server.port, 5000);
  const before = rssMb(server.pid);
  const t0 = Date.now();
  const failures = await churn(server.port, CHURN);
  const seconds = (Date.now() - t0) / 1000;
  return { before, after: rssMb(server.pid), seconds, failures: warmFailures + failures };
}

test('log sinks: an unread stdout pipe and LOG_FILE=/dev/full', { timeout: 300_000 }, async () => {
  // (0) Control: the same churn with stdout read, for the RSS that churn costs anyway.
  const control = await start({}, true);
  const controlRss = await rssOverChurn(control);
  await control.stop();
  // (1) stdout nobody reads. The first 5,000 connections fill the pipe and the queue.
  const blocked = await start({ SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) }, false);
  const rss = await rssOverChurn(blocked);
  const stats = await counters(blocked.port);
  const signalled = Date.now();
  // A server that never exits is killed after 10 s more (and the figures say so).
  const { code } = await blocked
    .stop('SIGTERM', SHUTDOWN_TIMEOUT_MS + 10_000)
    .catch(() => ({ code: null }));
  const exitMs = Date.now() - signalled;

  // (2) LOG_FILE=/dev/full, stdout read as usual.
  const full = await start({ LOG_FILE: '/dev/full' }, true);
  const fullFailures = await churn(full.port, 5000);
  const bench = await runTcpool(
    ['bench', '--port', String(full.port), '-c', '20', '-P', '4', '-n', '100000', '--json'],
    { timeoutMs: 120_000 },
  );
  const benchResult = JSON.parse(bench.stdout) as { rps: number; errors: number; ok: boolean };
  const fullStats = await counters(full.port);
  const fullExit = await full.stop();
  const notices = full.stderr.match(/cannot write LOG_FILE \/dev\/full \(ENOSPC\)/g)?.length ?? 0;

  console.log(
    `STRESS log-sink: churn=${CHURN} parallel=${PARALLEL} churn_s=${rss.seconds.toFixed(1)} ` +
      `failures=${rss.failures + controlRss.failures} rss_before_mb=${rss.before} ` +
      `rss_after_mb=${rss.after} rss_growth_mb=${rss.after - rss.before} ` +
      `control_rss_growth_mb=${controlRss.after - controlRss.before} ` +
      `lines_dropped=${stats.log_lines_dropped} ` +
      `sigterm_exit_ms=${exitMs} shutdown_timeout_ms=${SHUTDOWN_TIMEOUT_MS} exit_code=${code} ` +
      `devfull_notices=${notices} devfull_write_errors=${fullStats.log_write_errors} ` +
      `devfull_lines_dropped=${fullStats.log_lines_dropped} devfull_failures=${fullFailures} ` +
      `devfull_bench_rps=${Math.round(benchResult.rps)} devfull_bench_errors=${benchResult.errors}`,
  );
  assert.equal(rss.failures + controlRss.failures, 0);
  // 80,000 connections log about 12 MB: none of it may stay queued, so the RSS grows no more than
  // with a reader (V8's heaps grow under churn either way).
  const growth = rss.after - rss.before;
  const controlGrowth = controlRss.after - controlRss.before;
  assert.ok(growth < controlGrowth + 6, `RSS +${growth} MB unread, +${controlGrowth} MB read`);
  assert.ok(stats.log_lines_dropped >= CHURN, `log_lines_dropped=${stats.log_lines_dropped}`);
  assert.equal(code, 0);
  assert.ok(exitMs < SHUTDOWN_TIMEOUT_MS + 1500, `exit ${exitMs} ms after SIGTERM`);
  assert.equal(notices, 1, full.stderr);
  assert.ok(fullStats.log_write_errors > 0);
  assert.equal(fullFailures, 0);
  assert.ok(benchResult.ok && benchResult.errors === 0, bench.stdout);
  assert.equal(fullExit.code, 0);
});
