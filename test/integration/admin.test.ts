// The admin HTTP endpoint of a real server: probes (503 while starting and stopping), the JSON API
// and its JSON errors, tokens, /metrics checked by promtool and a strict OpenMetrics parser, and
// the start-up refusal of an unprotected public admin port.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { hashTokenSha256 } from '../../src/auth/tokens.ts';
import { encodeRespRequest } from '../../src/protocol/resp.ts';
import {
  type AdminServer,
  admin,
  parseOpenMetrics,
  pythonModule,
  startAdminServer,
  tool,
} from '../helpers/admin.ts';
import { TestClient } from '../helpers/client.ts';
import { BIN, cleanEnv, runTcpool, SERVER_EXEC, ServerProcess } from '../helpers/server.ts';

const GATED = new URL('../fixtures/gated-setup.js', import.meta.url).pathname;

/** Polls `probe` (every 20 ms, at most `tries` times) until it returns true. */
async function until(what: string, probe: () => Promise<boolean>, tries = 500): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await probe()) return;
    await sleep(20);
  }
  assert.fail(`${what}: not seen in ${tries} polls`);
}

const TOKEN = 'admin-secret-token';

describe('admin endpoint', () => {
  let server: AdminServer;
  before(async () => {
    server = await startAdminServer({ env: { AUTH_EXEMPT_NETWORKS: '127.0.0.1' } });
  });
  after(() => server.kill());

  test('/healthz and /readyz answer while serving', async () => {
    const health = await admin(server.adminPort, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.text, 'ok\n');
    const ready = await admin(server.adminPort, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.json, { status: 'serving' });
  });

  test('stats, clients (filtered, paged), kill, config; errors are JSON', async () => {
    const a = await TestClient.connect(server.port);
    const b = await TestClient.connect(server.port);
    assert.equal(await a.request('PING'), 'PONG');
    b.write(encodeRespRequest(['CLIENT', 'SETNAME', 'bee']));
    assert.equal(await b.readLine(), '+OK\r');

    const stats = (await admin(server.adminPort, 'GET', '/api/v1/stats')).json;
    assert.equal(stats.poolSize, 2);
    assert.equal(stats.active, 2);
    assert.ok(stats.commands >= 2);
    assert.equal(stats.workers.length, 2);
    const ping = stats.commandStats.find((c: { command: string }) => c.command === 'PING');
    assert.equal(ping.line, 1);

    const all = (await admin(server.adminPort, 'GET', '/api/v1/clients')).json;
    assert.equal(all.total, 2);
    const named = (await admin(server.adminPort, 'GET', '/api/v1/clients?name=bee')).json;
    assert.equal(named.total, 1);
    assert.equal(named.clients[0].protocol, 'resp');
    const page = (await admin(server.adminPort, 'GET', '/api/v1/clients?limit=1&offset=1')).json;
    assert.equal(page.clients.length, 1);
    assert.equal(page.total, 2);
    const bad = await admin(server.adminPort, 'GET', '/api/v1/clients?limit=0');
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json, {
      error: {
        code: 'ERR_BAD_ARGUMENT',
        message: 'Invalid limit "0": must be an integer from 1 to 1000',
      },
    });

    const id = named.clients[0].id;
    const killed = await admin(server.adminPort, 'POST', `/api/v1/clients/${id}/kill`);
    assert.deepEqual(killed.json, { killed: id });
    await b.waitClosed();
    const again = await admin(server.adminPort, 'POST', `/api/v1/clients/${id}/kill`);
    assert.equal(again.status, 404);
    assert.equal(again.json.error.message, `No client with id ${id}`);
    assert.equal(await a.request('PING'), 'PONG', 'the other client is untouched');
    a.close();

    const config = (await admin(server.adminPort, 'GET', '/api/v1/config')).json;
    assert.deepEqual(config.HOST, { value: '127.0.0.1', source: 'env' });
    assert.deepEqual(config.MAX_CONNECTIONS, { value: 10000, source: 'default' });

    const missing = await admin(server.adminPort, 'GET', '/api/v1/nothing');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json, {
      error: { code: 'ERR_ADMIN_NOT_FOUND', message: 'Not found: GET /api/v1/nothing' },
    });
    const noSize = await admin(server.adminPort, 'PUT', '/api/v1/pool', { body: { size: 'x' } });
    assert.equal(noSize.status, 400);
    const tooBig = await admin(server.adminPort, 'PUT', '/api/v1/pool', { body: { size: 65 } });
    assert.equal(tooBig.status, 400);
    assert.equal(
      tooBig.json.error.message,
      'Invalid pool size 65: must be an integer from 1 to 64 (THREAD_POOL_MAX)',
    );
  });

  test(
    '/metrics passes promtool and counts commands, errors, latency and bytes',
    tool('promtool', 'prometheus'),
    async () => {
      const c = await TestClient.connect(server.port);
      assert.equal(await c.request('ECHO hello'), 'hello');
      assert.equal(await c.request('NOPE'), 'ERROR: Unknown command');
      c.close();
      const r = await TestClient.connect(server.port);
      r.write(encodeRespRequest(['ECHO', 'x']));
      assert.equal(await r.readLine(), '$1\r');
      r.close();

      const res = await admin(server.adminPort, 'GET', '/metrics');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: res.text });
      assert.equal(lint.status, 0, `promtool: ${lint.stdout}${lint.stderr}`);
      const value = (series: string): number => {
        const line = res.text.split('\n').find((l) => l.startsWith(`${series} `));
        assert.ok(line, `${series} is exposed`);
        return Number(line.slice(series.length + 1));
      };
      assert.equal(value('tcpool_commands_total{command="ECHO",protocol="line"}'), 1);
      assert.equal(value('tcpool_commands_total{command="ECHO",protocol="resp"}'), 1);
      assert.equal(value('tcpool_command_errors_total{code="ERR_UNKNOWN_COMMAND"}'), 1);
      assert.equal(value('tcpool_command_duration_seconds_count{command="ECHO"}'), 2);
      assert.equal(value('tcpool_command_duration_seconds_bucket{command="ECHO",le="+Inf"}'), 2);
      assert.ok(value('tcpool_received_bytes_total') > 0);
      assert.ok(value('tcpool_sent_bytes_total') > 0);
      assert.equal(value('tcpool_pool_size'), 2);
      assert.equal(value('tcpool_connections_rejected_total{reason="max_connections"}'), 0);
      assert.equal(value('tcpool_auth_failures_total'), 0);
      assert.ok(value('tcpool_process_resident_memory_bytes') > 0);
      assert.ok(value('tcpool_worker_heap_used_bytes{worker="0"}') >= 0);

      const om = await admin(server.adminPort, 'GET', '/metrics', {
        headers: { accept: 'application/openmetrics-text; version=1.0.0' },
      });
      assert.match(om.headers.get('content-type')!, /^application\/openmetrics-text/);
      assert.match(om.text, /\n# EOF\n$/);
      assert.match(om.text, /^# TYPE tcpool_connections_accepted counter$/m);
    },
  );

  test(
    'OpenMetrics passes the strict parser of the Prometheus Python client and says what the text says',
    pythonModule('prometheus_client', 'python3-prometheus-client'),
    async () => {
      const c = await TestClient.connect(server.port);
      assert.equal(await c.request('ECHO om'), 'om');
      assert.equal(await c.request('NOPE'), 'ERROR: Unknown command');
      c.close();
      // The server sees the close in its own time: the scrapes wait for it, so that nothing
      // changes between them and tcpool's own figures must agree to the sample.
      const until = Date.now() + 5000;
      while (
        !/^tcpool_connections_active 0$/m.test(
          (await admin(server.adminPort, 'GET', '/metrics')).text,
        )
      ) {
        assert.ok(Date.now() < until, 'the closed client is still counted after 5 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const text = await admin(server.adminPort, 'GET', '/metrics');
      const om = await admin(server.adminPort, 'GET', '/metrics', {
        headers: { accept: 'application/openmetrics-text; version=1.0.0' },
      });
      assert.equal(
        om.headers.get('content-type'),
        'application/openmetrics-text; version=1.0.0; charset=utf-8',
      );
      const parsed = parseOpenMetrics(om.text);
      assert.ok(Array.isArray(parsed), `the parser rejects it: ${JSON.stringify(parsed)}`);
      const truncated = parseOpenMetrics(om.text.replace(/# EOF\n$/, ''));
      assert.deepEqual(truncated, { rejected: 'Missing # EOF at end' }, 'the parser is strict');

      const byName = new Map(parsed.map((f) => [f.name, f]));
      const accepted = byName.get('tcpool_connections_accepted');
      assert.equal(accepted?.type, 'counter');
      assert.equal(accepted.samples[0].name, 'tcpool_connections_accepted_total');
      assert.equal(byName.get('tcpool_command_duration_seconds')?.type, 'histogram');
      assert.equal(byName.get('tcpool_pool_size')?.type, 'gauge');

      // The same families as the Prometheus text (whose counters keep "_total" in the name) …
      const textTypes = new Map(
        [...text.text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]),
      );
      const omTypes = new Map(
        parsed.map((f) => [f.type === 'counter' ? `${f.name}_total` : f.name, f.type]),
      );
      assert.deepEqual(omTypes, textTypes);
      // … and the same values, but for what is sampled apart from the scrape (the process's
      // figures, and each worker's event loop and heap, sampled once a second by the worker).
      const textValues = new Map(
        text.text
          .split('\n')
          .filter((l) => l.startsWith('tcpool_'))
          .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]),
      );
      let compared = 0;
      for (const f of parsed) {
        if (/^tcpool_(process|nodejs|worker_event_loop|worker_heap)_/.test(f.name)) continue;
        for (const sample of f.samples) {
          const labels = Object.entries(sample.labels).map(([k, v]) => `${k}="${v}"`);
          const series = labels.length === 0 ? sample.name : `${sample.name}{${labels.join(',')}}`;
          assert.equal(sample.value, textValues.get(series), series);
          compared++;
        }
      }
      assert.ok(compared > 100, `compared ${compared} samples`);
      const echo = byName
        .get('tcpool_command_duration_seconds')!
        .samples.find((x) => x.name.endsWith('_count') && x.labels.command === 'ECHO');
      assert.ok(echo !== undefined && echo.value >= 1, 'ECHO is counted');
    },
  );

  test('drain: /readyz says 503, new connections are refused, existing clients are served', async () => {
    const kept = await TestClient.connect(server.port);
    assert.equal(await kept.request('PING'), 'PONG');
    const drained = await admin(server.adminPort, 'POST', '/api/v1/drain');
    assert.deepEqual(drained.json, { status: 'draining' });
    const ready = await admin(server.adminPort, 'GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.json, { status: 'draining' });
    await assert.rejects(TestClient.connect(server.port), /ECONNREFUSED/);
    assert.equal(await kept.request('PING'), 'PONG');
    // A worker added while drained does not accept either.
    const pool = await admin(server.adminPort, 'GET', '/api/v1/pool');
    const size = (pool.json as { size: number }).size;
    const grown = await admin(server.adminPort, 'PUT', '/api/v1/pool', {
      body: { size: size + 1 },
    });
    assert.equal(grown.status, 200);
    assert.equal((grown.json as { size: number }).size, size + 1);
    await assert.rejects(TestClient.connect(server.port), /ECONNREFUSED/);
    assert.equal(await kept.request('PING'), 'PONG');
    kept.close();
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  });
});

describe('admin tokens', () => {
  test('off loopback without ADMIN_TOKENS, start-up fails with exit 2 and says why', async () => {
    const r = await runTcpool(['serve'], {
      env: { PORT: '0', ADMIN_PORT: '0', ADMIN_HOST: '0.0.0.0' },
    });
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'tcpool: Invalid ADMIN_HOST "0.0.0.0" (from environment variable ADMIN_HOST): the admin endpoint off loopback needs ADMIN_TOKENS (make one with tcpool hash-token), or ADMIN_PORT=off\n',
    );
  });

  test('with ADMIN_TOKENS every request but the probes needs the token', async () => {
    const server = await startAdminServer({ env: { ADMIN_TOKENS: hashTokenSha256(TOKEN) } });
    try {
      assert.equal((await admin(server.adminPort, 'GET', '/healthz')).status, 200);
      assert.equal((await admin(server.adminPort, 'GET', '/readyz')).status, 200);
      for (const path of ['/metrics', '/api/v1/stats']) {
        const none = await admin(server.adminPort, 'GET', path);
        assert.equal(none.status, 401, path);
        assert.deepEqual(none.json, {
          error: {
            code: 'ERR_ADMIN_AUTH',
            message: 'Admin API: a valid token is required (Authorization: Bearer <token>)',
          },
        });
        const wrong = await admin(server.adminPort, 'GET', path, { token: 'nope' });
        assert.equal(wrong.status, 401, path);
        assert.equal((await admin(server.adminPort, 'GET', path, { token: TOKEN })).status, 200);
      }
      const config = (await admin(server.adminPort, 'GET', '/api/v1/config', { token: TOKEN }))
        .json;
      assert.deepEqual(config.ADMIN_TOKENS, { value: '(1 hash, redacted)', source: 'env' });
    } finally {
      await server.kill();
    }
  });
});

describe('readiness across the life of the server', () => {
  test('/readyz is 503 "starting" until every worker listens, 200 serving, 503 "stopping"', async () => {
    // Each worker's module setup waits for the gate file: the pool is held in its start-up
    // for as long as the test needs, with no timing involved.
    const dir = mkdtempSync(join(tmpdir(), 'tcpool-ready-'));
    const gate = join(dir, 'gate');
    const child = spawn(SERVER_EXEC, [BIN, 'serve'], {
      env: cleanEnv({
        PORT: '0',
        HOST: '127.0.0.1',
        THREAD_POOL_SIZE: '2',
        ADMIN_PORT: '0',
        COMMANDS_MODULE: GATED,
        DRAIN_DELAY_MS: '3000',
        TCPOOL_TEST_GATE: gate,
      }),
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerProcess(child);
    try {
      const m = await server.waitForLog(/Admin API listening on http:\/\/[^:]+:(\d+)\//);
      const port = Number(m[1]);
      const starting = await admin(port, 'GET', '/readyz');
      assert.equal(starting.status, 503);
      assert.deepEqual(starting.json, { status: 'starting' });
      assert.equal((await admin(port, 'GET', '/healthz')).status, 200, 'alive while starting');
      const metrics = await admin(port, 'GET', '/metrics');
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /^tcpool_ready 0$/m);
      assert.doesNotMatch(server.stdout, /Server listening/, 'no worker listens yet');

      writeFileSync(gate, '');
      await until('/readyz 200', async () => (await admin(port, 'GET', '/readyz')).status === 200);
      assert.match(server.stdout, /Server listening on \S+:\d+/);
      const serving = await admin(port, 'GET', '/readyz');
      assert.deepEqual(serving.json, { status: 'serving' });
      assert.match((await admin(port, 'GET', '/metrics')).text, /^tcpool_ready 1$/m);

      // SIGTERM with DRAIN_DELAY_MS: not ready at once, while the listeners stay open a while.
      process.kill(server.pid, 'SIGTERM');
      await until('/readyz 503', async () => (await admin(port, 'GET', '/readyz')).status === 503);
      const stopping = await admin(port, 'GET', '/readyz');
      assert.deepEqual(stopping.json, { status: 'stopping' });
      // One SIGTERM only (a second one exits at once): the log says when it has stopped.
      await server.waitForLog(/Server stopped/);
      const exit = await Promise.race([server.exited, sleep(10_000, 'still running')]);
      assert.deepEqual(exit, { code: 0, signal: null });
    } finally {
      writeFileSync(gate, '');
      await server.kill();
    }
  });
});
