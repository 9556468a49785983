// Many clients at once: the original's "one blocked client per worker" flaw must be gone.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { parseStatsFull, TestClient } from '../helpers/client.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

const servers: ServerProcess[] = [];
async function start(env: Record<string, string>) {
  const s = await startServer({ env });
  servers.push(s);
  return s;
}
after(async () => {
  await Promise.all(servers.map((s) => s.kill()));
});

describe('concurrency', () => {
  test('50 concurrent clients × 100 ECHOs: each gets exactly its own replies, in order', async () => {
    const server = await start({ THREAD_POOL_SIZE: '4' });
    const clients = await Promise.all(
      Array.from({ length: 50 }, () => TestClient.connect(server.port)),
    );
    await Promise.all(
      clients.map(async (c, id) => {
        // Half the clients pipeline everything, half go one request at a time.
        if (id % 2 === 0) {
          let batch = '';
          for (let i = 0; i < 100; i++) batch += `ECHO client-${id} msg-${i}\n`;
          c.write(batch);
          const lines = await c.readLines(100, 20_000);
          for (const [i, line] of lines.entries()) assert.equal(line, `client-${id} msg-${i}`);
        } else {
          for (let i = 0; i < 100; i++)
            assert.equal(await c.request(`ECHO client-${id} msg-${i}`), `client-${id} msg-${i}`);
        }
      }),
    );
    const probe = await TestClient.connect(server.port);
    const stats = parseStatsFull(await probe.request('STATS FULL'));
    assert.equal(stats.active, 51);
    assert.ok(stats.commands >= 5000, `commands counted: ${stats.commands}`);
    for (const c of clients) c.close();
    probe.close();
  });

  test('STATS counts clients spread over several workers', async () => {
    const server = await start({ THREAD_POOL_SIZE: '4' });
    const clients = await Promise.all(
      Array.from({ length: 40 }, () => TestClient.connect(server.port)),
    );
    // Every connection is counted once it has been served a request.
    await Promise.all(clients.map(async (c) => assert.equal(await c.request('PING'), 'PONG')));
    const replies = await Promise.all(clients.map((c) => c.request('STATS')));
    for (const r of replies) assert.equal(r, 'Active clients: 40');
    const full = parseStatsFull(await clients[0].request('STATS FULL'));
    assert.equal(full.workers.length, 4);
    const busyWorkers = full.workers.filter((w) => w.active > 0).length;
    assert.ok(
      busyWorkers >= 2,
      `clients on ${busyWorkers} worker(s): ${JSON.stringify(full.workers)}`,
    );
    assert.equal(
      full.workers.reduce((sum, w) => sum + w.active, 0),
      40,
    );
    for (const c of clients.slice(0, 10)) c.close();
    await Promise.all(clients.slice(0, 10).map((c) => c.closedPromise));
    // The server sees the closes asynchronously; poll briefly (bounded).
    let last = '';
    for (let i = 0; i < 50 && last !== 'Active clients: 30'; i++) {
      last = await clients[20].request('STATS');
      if (last !== 'Active clients: 30') await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(last, 'Active clients: 30');
    for (const c of clients) c.close();
  });

  test('1,000 simultaneous clients with THREAD_POOL_SIZE=1 are all served at once', async () => {
    const server = await start({ THREAD_POOL_SIZE: '1' });
    const clients: TestClient[] = [];
    for (let i = 0; i < 1000; i += 100) {
      clients.push(
        ...(await Promise.all(Array.from({ length: 100 }, () => TestClient.connect(server.port)))),
      );
    }
    // All 1,000 stay connected while every one of them is answered.
    const replies = await Promise.all(clients.map((c, i) => c.request(`ECHO ${i}`, 20_000)));
    for (const [i, r] of replies.entries()) assert.equal(r, String(i));
    assert.equal(await clients[999].request('STATS'), 'Active clients: 1000');
    // Held connections do not block a newcomer (the original's 5th client waited forever).
    const late = await TestClient.connect(server.port);
    assert.equal(await late.request('PING'), 'PONG');
    late.close();
    for (const c of clients) c.close();
  });
});
