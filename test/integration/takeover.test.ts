// Zero-downtime restart: a second tcpool joins the port with --takeover, the old one drains
// (tcpool ctl drain) and stops on SIGTERM, while clients keep connecting and asking (the churn of
// `tcpool bench --connect-rate`).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { type AdminServer, admin, startAdminServer } from '../helpers/admin.ts';
import { TestClient } from '../helpers/client.ts';
import { connectLoad } from '../helpers/connect-load.ts';
import { freePort, runTcpool } from '../helpers/server.ts';

const servers: AdminServer[] = [];
after(async () => {
  for (const s of servers) await s.kill();
});

function migrateReq(): string {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

test('--takeover: the new server joins the port, the old drains and exits; clients see no failure', async (t) => {
  const port = await freePort();
  const env = { PORT: String(port), THREAD_POOL_SIZE: '2' };
  const old = await startAdminServer({ env });
  servers.push(old);
  const traffic = connectLoad(port, 8);
  await new Promise((r) => setTimeout(r, 300));

  // A plain second start is refused: the port is taken.
  const plain = await runTcpool(['serve'], { env });
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, /^tcpool: Port \d+ is already in use/);
  const fresh = await startAdminServer({ env, args: ['--takeover'] });
  servers.push(fresh);
  await fresh.waitForLog(/Joined the port \(--takeover\)/);
  await new Promise((r) => setTimeout(r, 300));

  // The documented procedure: drain the old one (it stops accepting, serves what it has), then
  // SIGTERM.
  assert.equal((await admin(old.adminPort, 'POST', '/api/v1/drain')).status, 200);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(await old.stop(), { code: 0, signal: null });
  await new Promise((r) => setTimeout(r, 300));
  const result = await traffic.stop();

  assert.ok(result.connections > 50, `requests answered: ${result.connections}`);
  const c = await TestClient.connect(port);
  assert.equal(await c.request('PING'), 'PONG', 'the new server serves the port');
  c.close();
  const { ECONNRESET: resets = 0, ...lost } = result.reasons;
  assert.deepEqual(lost, {}, 'no reply lost, nothing refused, no error reply');
  if (migrateReq() === '1') {
    assert.equal(resets, 0, 'with tcp_migrate_req=1 not even a reset');
  } else {
    // Without it the kernel resets connections still queued on the old listener when it closes.
    t.diagnostic(
      `net.ipv4.tcp_migrate_req=${migrateReq()}: ${resets} connection(s) reset as the old listener closed`,
    );
  }
});

test('--takeover needs a port to join: PORT=0 is refused', async () => {
  const r = await runTcpool(['serve', '--takeover'], { env: { PORT: '0' } });
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    'tcpool: --takeover joins a port another tcpool serves: PORT must name it, not 0\n',
  );
});
