// Hot reload (SIGHUP, POST /api/v1/reload, tcpool ctl reload), live pool resizing and tcpool ctl,
// against a real server whose config file the test rewrites.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect } from 'node:tls';
import { after, describe, test } from 'node:test';
import { hashTokenSha256 } from '../../src/auth/tokens.ts';
import { type AdminServer, admin, startAdminServer } from '../helpers/admin.ts';
import { makeCerts } from '../helpers/certs.ts';
import { parseStatsFull, TestClient } from '../helpers/client.ts';
import { BIN, cleanEnv, freePort, runTcpool } from '../helpers/server.ts';

const servers: AdminServer[] = [];
after(async () => {
  for (const s of servers) await s.kill();
});

/** A server reading `config.txt` in its own directory, which the test rewrites. */
async function withConfig(lines: string[], env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tcpool-reload-'));
  const file = join(dir, 'config.txt');
  writeFileSync(file, `${lines.join('\n')}\n`);
  const server = await startAdminServer({ cwd: dir, env: { THREAD_POOL_SIZE: undefined, ...env } });
  servers.push(server);
  const write = (more: string[]) => writeFileSync(file, `${more.join('\n')}\n`);
  return { server, write, dir };
}

const ctl = (server: AdminServer, ...args: string[]) =>
  runTcpool(['ctl', '--port', String(server.adminPort), ...args]);

async function statsFull(port: number) {
  const c = await TestClient.connect(port);
  const s = parseStatsFull(await c.request('STATS FULL'));
  c.close();
  return s;
}

describe('hot reload', () => {
  test('every live key takes effect in every worker; restart-only keys are named and kept', async () => {
    const base = ['THREAD_POOL_SIZE=2', 'LOG_LEVEL=INFO'];
    const { server, write } = await withConfig(base);
    const old = await TestClient.connect(server.port);
    assert.equal(await old.request('PING'), 'PONG');

    const token = 'reload-token';
    write([
      'THREAD_POOL_SIZE=3',
      'LOG_LEVEL=WARN',
      'MAX_LINE_BYTES=64',
      `AUTH_TOKENS=${hashTokenSha256(token)}`,
      'IP_TABLE_SLOTS=128',
      'WS_PORT=65000', // not bound: restart-only
      'TRACING=yes',
    ]);
    const r = await ctl(server, 'reload');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      'Reloaded (changed: THREAD_POOL_SIZE, MAX_LINE_BYTES, LOG_LEVEL, AUTH_TOKENS); pool size 3\n' +
        'need a restart, left as they are: IP_TABLE_SLOTS, WS_PORT, TRACING\n',
    );
    // The connection from before the reload is kept, and was authenticated when it came.
    assert.equal(await old.request('PING'), 'PONG');
    // New connections, whatever worker takes them: AUTH is required, lines are limited to 64.
    for (let i = 0; i < 6; i++) {
      const c = await TestClient.connect(server.port);
      assert.equal(await c.request('PING'), 'ERROR: Authentication required');
      assert.equal(await c.request(`AUTH ${token}`), 'OK');
      assert.equal(await c.request('x'.repeat(100)), 'ERROR: Line too long');
      await c.waitClosed();
    }
    const full = await TestClient.connect(server.port);
    assert.equal(await full.request(`AUTH ${token}`), 'OK');
    const stats = parseStatsFull(await full.request('STATS FULL'));
    full.close();
    assert.equal(stats.workers.filter((w) => w.active >= 0).length, 3);
    // LOG_LEVEL=WARN: no more connection lines.
    const before = server.stdout.length;
    (await TestClient.connect(server.port)).close();
    await new Promise((res) => setTimeout(res, 300));
    assert.doesNotMatch(server.stdout.slice(before), /Client connected/);
    old.close();

    const status = (await admin(server.adminPort, 'GET', '/api/v1/config')).json;
    assert.deepEqual(status.IP_TABLE_SLOTS, { value: 65536, source: 'default' }, 'kept');
    assert.equal(status.MAX_LINE_BYTES.value, 64);
    assert.match(status.MAX_LINE_BYTES.source, /config\.txt:3$/);
  });

  test('an invalid file changes nothing; the error is the one start-up gives, and counted', async () => {
    const { server, write, dir } = await withConfig(['THREAD_POOL_SIZE=2', 'MAX_CONNECTIONS=100']);
    write(['THREAD_POOL_SIZE=2', 'MAX_CONNECTIONS=5', 'MAX_LINE_BYTES=lots']);
    const why =
      'Invalid MAX_LINE_BYTES "lots" (at config.txt:3): must be an integer from 16 to 67108864';
    const start = await runTcpool(['serve'], { cwd: dir, env: { PORT: '0' } });
    assert.deepEqual([start.code, start.stderr], [2, `tcpool: ${why}\n`], 'what start-up says');
    const r = await ctl(server, 'reload');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `tcpool: Reload failed, configuration unchanged: ${why}\n`);
    await server.waitForLog(
      /\[ERROR\] Reload failed, configuration unchanged: Invalid MAX_LINE_BYTES/,
    );
    const config = (await admin(server.adminPort, 'GET', '/api/v1/config')).json;
    assert.equal(config.MAX_CONNECTIONS.value, 100, 'the old configuration stays');
    const stats = (await admin(server.adminPort, 'GET', '/api/v1/stats')).json;
    assert.equal(stats.counters.reload_failures, 1);
    assert.equal(stats.counters.reloads, 0);
    const metrics = (await admin(server.adminPort, 'GET', '/metrics')).text;
    assert.match(metrics, /^tcpool_reload_failures_total 1$/m);
  });

  test('SIGHUP reloads; MAX_CONNECTIONS and rate limits apply at once', async () => {
    const { server, write } = await withConfig(['THREAD_POOL_SIZE=1']);
    const a = await TestClient.connect(server.port);
    assert.equal(await a.request('PING'), 'PONG');
    write(['THREAD_POOL_SIZE=1', 'MAX_CONNECTIONS=1', 'RATE_LIMIT=2', 'RATE_LIMIT_BURST=2']);
    process.kill(server.pid, 'SIGHUP');
    await server.waitForLog(
      /Configuration reloaded \(changed: MAX_CONNECTIONS, RATE_LIMIT, RATE_LIMIT_BURST\)/,
    );
    const b = await TestClient.connect(server.port);
    assert.equal(await b.readLine(), 'ERROR: Too many connections');
    // The only place is free once the server has seen it go; it logs that after freeing it.
    const gone = new RegExp(`Client disconnected: 127\\.0\\.0\\.1:${a.socket.localPort} `);
    assert.doesNotMatch(server.stdout, gone);
    a.close();
    await server.waitForLog(gone);
    const c = await TestClient.connect(server.port);
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await c.request('PING'));
    assert.deepEqual(replies.slice(0, 2), ['PONG', 'PONG']);
    assert.ok(replies.slice(2).includes('ERROR: Rate limit exceeded'), replies.join(','));
    c.close();
  });

  test('TLS certificate rotation: new handshakes get the new certificate, no restart', async () => {
    const one = makeCerts();
    const two = makeCerts();
    const tlsPort = await freePort();
    const conf = (c: typeof one) => [
      'THREAD_POOL_SIZE=2',
      `TLS_PORT=${tlsPort}`,
      `TLS_CERT=${c.serverCert}`,
      `TLS_KEY=${c.serverKey}`,
    ];
    const { server, write } = await withConfig(conf(one));
    const fingerprint = (ca: string) =>
      new Promise<string>((resolve, reject) => {
        const s = tlsConnect(
          { host: '127.0.0.1', port: tlsPort, ca: readFileSync(ca), servername: 'localhost' },
          () => {
            resolve(s.getPeerCertificate().fingerprint256);
            s.end();
          },
        );
        s.on('error', reject);
      });
    const first = await fingerprint(one.ca);
    write(conf(two));
    const r = await admin(server.adminPort, 'POST', '/api/v1/reload');
    assert.deepEqual(r.json.changed, ['TLS_CERT', 'TLS_KEY']);
    for (let i = 0; i < 4; i++) assert.notEqual(await fingerprint(two.ca), first);
  });

  test('20 reloads while tcpool bench runs: no errors', async () => {
    const { server, write } = await withConfig(['THREAD_POOL_SIZE=2']);
    const bench = spawn(
      process.execPath,
      [BIN, 'bench', '--port', String(server.port), '-c', '8', '-d', '3', '--json'],
      { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    bench.stdout.on('data', (d) => (out += d));
    bench.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((res) => bench.on('exit', res));
    await new Promise((res) => setTimeout(res, 300));
    for (let i = 0; i < 20; i++) {
      write([
        'THREAD_POOL_SIZE=2',
        `MAX_CONNECTIONS=${1000 + i}`,
        `LOG_LEVEL=${i % 2 ? 'WARN' : 'INFO'}`,
      ]);
      const r = await admin(server.adminPort, 'POST', '/api/v1/reload');
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.changed.includes('MAX_CONNECTIONS'));
    }
    assert.equal(await exited, 0, err);
    const result = JSON.parse(out);
    assert.equal(result.errors, 0);
    assert.ok(result.requests > 0);
    const stats = (await admin(server.adminPort, 'GET', '/api/v1/stats')).json;
    assert.equal(stats.counters.reloads, 20);
    const config = (await admin(server.adminPort, 'GET', '/api/v1/config')).json;
    assert.equal(config.MAX_CONNECTIONS.value, 1019);
  });
});

describe('live pool resizing and tcpool ctl', () => {
  test('ctl pool grows and shrinks; STATS FULL follows; retiring workers serve their clients', async () => {
    const server = await startAdminServer({
      env: { THREAD_POOL_SIZE: '4', DRAIN_TIMEOUT_MS: '60000' },
    });
    servers.push(server);
    // One client on every worker (the kernel spreads them; keep connecting until each has one).
    const clients: TestClient[] = [];
    const served = new Set<number>(); // the workers serving a client, asked on its connection
    for (let i = 0; i < 200 && served.size < 4; i++) {
      const c = await TestClient.connect(server.port);
      clients.push(c);
      served.add(parseStatsFull(await c.request('STATS FULL')).worker);
    }
    assert.equal(served.size, 4, 'a client on every worker');
    const shrink = await ctl(server, 'pool', '1');
    assert.equal(shrink.code, 0, shrink.stderr);
    // Workers left without a client have retired already; the others serve theirs on.
    assert.match(shrink.stdout, /^Pool size 1 \(max 64(, [1-3] retiring)?\)\n$/);
    assert.equal((await statsFull(server.port)).workers.length >= 1, true);
    assert.match(
      (await TestClient.connect(server.port).then((c) => c.request('STATS FULL'))) ?? '',
      / workers=1 /,
    );
    // Every client, on a retiring worker or not, is still served.
    for (const c of clients) assert.equal(await c.request('PING'), 'PONG');
    for (const c of clients) c.close();
    // Workers 1 to 3 retire as their clients leave, in any order.
    for (const i of [1, 2, 3]) await server.waitForLog(new RegExp(`Worker ${i} retired`));

    const grow = await ctl(server, '--json', 'pool', '3');
    assert.equal(grow.code, 0, grow.stderr);
    assert.deepEqual(JSON.parse(grow.stdout), { size: 3, max: 64, retiring: 0, autoscale: null });
    const c = await TestClient.connect(server.port);
    assert.match(await c.request('STATS FULL'), / workers=3 /);
    c.close();

    const status = await ctl(server, 'status');
    assert.equal(status.code, 0);
    assert.match(status.stdout, /pool: 3 worker\(s\) \(max 64\)/);
    assert.match(status.stdout, /^0 +serving /m);

    const tooMany = await ctl(server, 'pool', '100');
    assert.equal(tooMany.code, 2);
    assert.equal(
      tooMany.stderr,
      'tcpool: Invalid pool size 100: must be an integer from 1 to 64 (THREAD_POOL_MAX)\n',
    );
  });

  test('a retiring worker closes the clients left after DRAIN_TIMEOUT_MS, as shutdown does', async () => {
    const server = await startAdminServer({
      env: { THREAD_POOL_SIZE: '2', DRAIN_TIMEOUT_MS: '300' },
    });
    servers.push(server);
    const clients: TestClient[] = [];
    let onWorker1 = 0;
    for (let i = 0; i < 100 && onWorker1 === 0; i++) {
      const c = await TestClient.connect(server.port);
      clients.push(c);
      // Asked on the client's own connection: the worker that serves it (a count of worker 1's
      // connections could include a STATS connection closed a moment ago).
      if (parseStatsFull(await c.request('STATS FULL')).worker === 1) onWorker1++;
    }
    assert.equal(onWorker1, 1, 'a client landed on worker 1');
    assert.equal((await ctl(server, 'pool', '1')).code, 0);
    await server.waitForLog(/Worker 1 retired/);
    // The server has closed them; their FINs may still be on the way to this process (bounded).
    for (let i = 0; i < 100 && !clients.some((c) => c.closed); i++) await sleep(20);
    const closed = clients.filter((c) => c.closed).length;
    assert.ok(closed > 0, 'the clients of the retired worker were closed');
    for (const c of clients.filter((x) => !x.closed)) assert.equal(await c.request('PING'), 'PONG');
    for (const c of clients) c.close();
  });

  test('ctl: the admin API unreachable exits 1 with one line; a bad option exits 2', async () => {
    const port = await freePort();
    const r = await runTcpool(['ctl', '--port', String(port), 'status']);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `tcpool: Could not connect to the admin API at 127.0.0.1:${port}: ECONNREFUSED\n`,
    );
    const bad = await runTcpool(['ctl', 'explode']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'tcpool: Unknown action "explode" (see tcpool ctl --help)\n');
  });
});
