// MAX_CONNECTIONS across workers, and back-pressure against a client that never reads.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { after, describe, test } from 'node:test';
import { parseStatsFull, TestClient } from '../helpers/client.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

const servers: ServerProcess[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.kill()));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
  return Number(kb) * 1024;
}

describe('limits', () => {
  test('MAX_CONNECTIONS is enforced across all workers; the one over gets an error and is counted', async () => {
    const server = await startServer({ env: { MAX_CONNECTIONS: '5', THREAD_POOL_SIZE: '3' } });
    servers.push(server);
    // The kernel picks each connection's worker. Until the 5 are spread over at least two
    // workers (so that no worker alone holds 5), the last one is swapped for a new one.
    const workerOf = async (c: TestClient) => parseStatsFull(await c.request('STATS FULL')).worker;
    const clients = await Promise.all(
      Array.from({ length: 5 }, () => TestClient.connect(server.port)),
    );
    const workers = await Promise.all(clients.map(workerOf));
    for (let swap = 0; swap < 30 && new Set(workers).size < 2; swap++) {
      clients[4].close();
      while ((await clients[0].request('STATS')) !== 'Active clients: 4') await sleep(10);
      clients[4] = await TestClient.connect(server.port);
      workers[4] = await workerOf(clients[4]);
    }
    const workersUsed = new Set(workers).size;
    assert.ok(workersUsed >= 2, 'the 5 clients are spread over at least two workers');
    // Every worker holds fewer than 5, so only a limit counted across workers refuses the 6th.
    const extra = await TestClient.connect(server.port);
    assert.equal(await extra.readLine(), 'ERROR: Too many connections');
    await extra.waitClosed();
    const stats = parseStatsFull(await clients[0].request('STATS FULL'));
    assert.equal(stats.active, 5);
    assert.equal(stats.rejected, 1);
    assert.equal(stats.workers.filter((w) => w.active > 0).length, workersUsed);
    assert.ok(stats.workers.every((w) => w.active < 5));
    await server.waitForLog(
      /\[WARN\] Connection rejected: 127\.0\.0\.1:\d+ \(Too many connections, limit 5\)/,
    );
    // A freed slot can be taken again.
    clients[4].close();
    let again: TestClient | null = null;
    for (let i = 0; i < 50 && again === null; i++) {
      const c = await TestClient.connect(server.port);
      const reply = await c.request('PING').catch(() => 'closed');
      if (reply === 'PONG') again = c;
      else await sleep(20);
    }
    assert.ok(again, 'a slot freed by a disconnect is reusable');
    assert.equal(await clients[0].request('STATS'), 'Active clients: 5');
    for (const c of [...clients, again]) c.close();
  });

  test('back-pressure: a client that writes without reading stops being read; memory stays bounded', async (t) => {
    const server = await startServer({ env: { THREAD_POOL_SIZE: '1' } });
    servers.push(server);
    const probe = await TestClient.connect(server.port);
    const helpLine = (await probe.request('HELP')) + '\n';
    const n = 1_000_000; // 5 MB of requests asking for 87 MB of replies
    const rssBefore = rssBytes(server.pid);

    const socket = createConnection({ port: server.port, host: '127.0.0.1' });
    await new Promise((r) => socket.once('connect', r));
    socket.pause(); // never read, for now
    socket.write(Buffer.from('HELP\n'.repeat(n)));

    // Wait until the server has stopped making progress on this client (bounded).
    let last = -1;
    let commands = 0;
    for (let i = 0; i < 100; i++) {
      await sleep(100);
      commands = parseStatsFull(await probe.request('STATS FULL')).commands;
      if (commands - last <= 1) break; // only the probe's own STATS was counted since
      last = commands;
    }
    assert.ok(commands < n / 2, `the server kept reading: ${commands} of ${n} requests processed`);
    const growth = rssBytes(server.pid) - rssBefore;
    t.diagnostic(
      `stalled after ${commands} of ${n} requests; server RSS grew by ${(growth / 1048576).toFixed(1)} MiB`,
    );
    // Without back-pressure the server would hold the 87 MB of replies itself.
    assert.ok(growth < 40 * 1024 * 1024, `server RSS grew by ${(growth / 1048576).toFixed(1)} MiB`);
    // The other clients of the same worker are still served meanwhile.
    assert.equal(await probe.request('PING'), 'PONG');

    // Now read: every reply arrives, in full and in order.
    let received = 0;
    let bad = false;
    const expected = Buffer.from(helpLine);
    let offset = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${received} of ${n * expected.length} bytes`)),
        60_000,
      );
      socket.on('data', (chunk: Buffer) => {
        for (let i = 0; i < chunk.length; i++) {
          if (chunk[i] !== expected[offset]) bad = true;
          offset = (offset + 1) % expected.length;
        }
        received += chunk.length;
        if (received >= n * expected.length) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.resume();
    });
    assert.equal(bad, false, 'replies arrived intact');
    assert.equal(received, n * expected.length);
    socket.destroy();
    probe.close();
  });
});
