// deploy/: the systemd unit passes systemd-analyze verify, and the HAProxy configuration works
// with two real tcpool instances behind a real HAProxy: draining one moves the traffic to the
// other with no client error.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type AdminServer, admin, startAdminServer, tool } from '../helpers/admin.ts';
import { connectLoad } from '../helpers/connect-load.ts';
import { freePort } from '../helpers/server.ts';

const root = new URL('../../deploy/', import.meta.url);
const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup) await f();
});

test(
  'deploy/tcpool.service passes systemd-analyze verify with no warning',
  tool('systemd-analyze', 'systemd'),
  () => {
    const unit = new URL('tcpool.service', root).pathname;
    const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'no warning (an unknown key or a bad value is only a warning)');
    const text = readFileSync(unit, 'utf8');
    for (const line of [
      'ExecReload=/bin/kill -HUP $MAINPID',
      'LimitNOFILE=65536',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'DynamicUser=yes',
    ])
      assert.ok(text.includes(`\n${line}\n`), line);
  },
);

const connections = async (s: AdminServer): Promise<number> =>
  (await admin(s.adminPort, 'GET', '/api/v1/stats')).json.connections;

test(
  'deploy/haproxy.cfg: two tcpool instances behind HAProxy; draining one moves the traffic with no client error',
  tool('haproxy', 'haproxy'),
  async () => {
    // As deploy/haproxy.cfg says: DRAIN_DELAY_MS longer than HAProxy takes to see a 503.
    const env = {
      PROXY_PROTOCOL: 'v2',
      TRUSTED_PROXIES: '127.0.0.1',
      THREAD_POOL_SIZE: '1',
      DRAIN_DELAY_MS: '2500',
    };
    const one = await startAdminServer({ env });
    const two = await startAdminServer({ env });
    cleanup.push(
      () => one.kill(),
      () => two.kill(),
    );
    const front = await freePort();
    const ports: Record<string, number> = {
      '8080': front,
      '8081': one.port,
      '8082': two.port,
      '9465': one.adminPort,
      '9466': two.adminPort,
    };
    const cfg = readFileSync(new URL('haproxy.cfg', root), 'utf8').replace(
      /127\.0\.0\.1:(\d+)|port (\d+)/g,
      (_m, a, b) => (a ? `127.0.0.1:${ports[a]}` : `port ${ports[b]}`),
    );
    const file = join(mkdtempSync(join(tmpdir(), 'tcpool-deploy-')), 'haproxy.cfg');
    writeFileSync(file, cfg);
    const haproxy = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    haproxy.stderr.on('data', (d) => (log += d));
    haproxy.stdout.on('data', (d) => (log += d));
    const exited = new Promise((r) => haproxy.on('exit', r));
    cleanup.push(async () => {
      if (haproxy.exitCode === null) haproxy.kill('SIGTERM');
      await exited;
    });
    // Both instances up in HAProxy's eyes (rise 2 checks, 1 s apart).
    for (let i = 0; i < 60; i++) {
      if ((await connections(one)) >= 2 && (await connections(two)) >= 2) break;
      const probe = connectLoad(front, 1);
      await new Promise((r) => setTimeout(r, 100));
      await probe.stop();
    }

    const traffic = connectLoad(front, 6);
    cleanup.unshift(async () => void (await traffic.stop()));
    await new Promise((r) => setTimeout(r, 1500));
    const before = [await connections(one), await connections(two)];
    assert.ok(before[0] > 0 && before[1] > 0, `both instances serve: ${before}; ${log}`);
    // Returns once its listeners closed, DRAIN_DELAY_MS after /readyz turned 503.
    assert.equal((await admin(one.adminPort, 'POST', '/api/v1/drain')).status, 200);
    const drained = await connections(one);
    const twoBefore = await connections(two);
    await new Promise((r) => setTimeout(r, 1000));
    const result = await traffic.stop();
    assert.equal(await connections(one), drained, 'no new client reaches the drained instance');
    assert.ok((await connections(two)) > twoBefore, 'the other instance takes the traffic');
    assert.ok(result.connections > 50, `answered ${result.connections}`);
    assert.deepEqual(result.reasons, {}, `no client error (${log})`);
  },
);
