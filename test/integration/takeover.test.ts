// Zero-downtime restart: a second tcpool joins the port with --takeover, the old one drains
// (tcpool ctl drain) and stops on SIGTERM, while clients keep connecting and asking.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { after, test } from 'node:test';
import { type AdminServer, admin, startAdminServer } from '../helpers/admin.ts';
import { TestClient } from '../helpers/client.ts';
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

/** Clients that each connect, PING, read PONG and close, in a loop, until stopped. */
function load(port: number, loops: number) {
  const failures: string[] = [];
  let answered = 0;
  let stop = false;
  const once = () =>
    new Promise<void>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port });
      let done = false;
      const fail = (why: string) => {
        if (done) return;
        done = true;
        failures.push(why);
        s.destroy();
        resolve();
      };
      s.setTimeout(5000, () => fail('no reply in 5 s'));
      s.on('connect', () => s.write('PING\n'));
      s.on('data', (d) => {
        if (done) return;
        done = true;
        if (d.toString() === 'PONG\n') answered++;
        else failures.push(`reply ${JSON.stringify(d.toString())}`);
        s.end();
        resolve();
      });
      s.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
      s.on('close', () => fail('closed without a reply'));
    });
  const running = Promise.all(
    Array.from({ length: loops }, async () => {
      while (!stop) await once();
    }),
  );
  return {
    failures,
    answered: () => answered,
    stop: async () => {
      stop = true;
      await running;
    },
  };
}

test('--takeover: the new server joins the port, the old drains and exits; clients see no failure', async (t) => {
  const port = await freePort();
  const env = { PORT: String(port), THREAD_POOL_SIZE: '2' };
  const old = await startAdminServer({ env });
  servers.push(old);
  const traffic = load(port, 8);
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
  await traffic.stop();

  assert.ok(traffic.answered() > 50, `requests answered: ${traffic.answered()}`);
  const c = await TestClient.connect(port);
  assert.equal(await c.request('PING'), 'PONG', 'the new server serves the port');
  c.close();
  const lost = traffic.failures.filter((f) => f !== 'ECONNRESET');
  assert.deepEqual(lost, [], 'no reply lost, nothing refused');
  if (migrateReq() === '1') {
    assert.deepEqual(traffic.failures, [], 'with tcp_migrate_req=1 not even a reset');
  } else {
    // Without it the kernel resets connections still queued on the old listener when it closes.
    t.diagnostic(
      `net.ipv4.tcp_migrate_req=${migrateReq()}: ${traffic.failures.length} connection(s) reset as the old listener closed`,
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
