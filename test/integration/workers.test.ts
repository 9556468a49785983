// Worker failure and replacement, and command handler failures that must not kill a worker.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { parseStatsFull, TestClient } from '../helpers/client.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

const COMMANDS = new URL('../fixtures/commands.js', import.meta.url).pathname;
const servers: ServerProcess[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.kill()));
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects until there is a client on each of the first `workers` workers (bounded). */
async function clientsOnEveryWorker(
  port: number,
  workers: number,
): Promise<Map<number, TestClient>> {
  const byWorker = new Map<number, TestClient>();
  const spare: TestClient[] = [];
  for (let i = 0; i < 200 && byWorker.size < workers; i++) {
    const c = await TestClient.connect(port);
    const w = parseStatsFull(await c.request('STATS FULL')).worker;
    if (byWorker.has(w)) spare.push(c);
    else byWorker.set(w, c);
  }
  for (const c of spare) c.close();
  assert.equal(byWorker.size, workers, 'the kernel spread connections over every worker');
  return byWorker;
}

describe('workers', () => {
  test('a crashed worker is logged, counted and replaced while the others keep serving', async () => {
    const server = await startServer({ env: { THREAD_POOL_SIZE: '2', COMMANDS_MODULE: COMMANDS } });
    servers.push(server);
    const byWorker = await clientsOnEveryWorker(server.port, 2);
    const victim = byWorker.get(0)!;
    const survivor = byWorker.get(1)!;
    // The survivor streams requests across the crash and must see every reply.
    let served = 0;
    let stop = false;
    const streaming = (async () => {
      while (!stop) {
        assert.equal(await survivor.request(`ECHO ${served}`), String(served));
        served++;
      }
    })();
    await sleep(50);
    assert.equal(await victim.request('CRASH'), 'crashing');
    await victim.waitClosed();
    await server.waitForLog(
      /\[ERROR\] Worker 0 exited unexpectedly \(Error: worker crash requested by test\); \d+ client\(s\) dropped; restarting/,
    );
    await server.waitForLog(/\[INFO\] Worker 0 restarted/);
    await sleep(50);
    stop = true;
    await streaming;
    assert.ok(served > 10, `survivor served ${served} requests across the crash`);

    const stats = parseStatsFull(await survivor.request('STATS FULL'));
    assert.equal(stats.restarts, 1);
    assert.equal(stats.active, 1, 'the dropped client no longer counts as active');
    // The replacement takes new connections again.
    const again = await clientsOnEveryWorker(server.port, 2);
    for (const c of again.values()) {
      assert.equal(await c.request('PING'), 'PONG');
      c.close();
    }
    survivor.close();
  });

  test('a command that throws or fails asynchronously gets an error reply; the worker lives on', async () => {
    const server = await startServer({ env: { THREAD_POOL_SIZE: '1', COMMANDS_MODULE: COMMANDS } });
    servers.push(server);
    const c = await TestClient.connect(server.port);
    assert.equal(await c.request('THROW'), 'ERROR: Internal error');
    await server.waitForLog(
      /\[ERROR\] Command THROW failed for 127\.0\.0\.1:\d+: Error: handler bug/,
    );
    assert.equal(await c.request('PING'), 'PONG');
    assert.equal(parseStatsFull(await c.request('STATS FULL')).restarts, 0);
    c.close();
  });

  test('asynchronous commands keep replies in request order', async () => {
    const server = await startServer({ env: { THREAD_POOL_SIZE: '1', COMMANDS_MODULE: COMMANDS } });
    servers.push(server);
    const c = await TestClient.connect(server.port);
    c.write('SLOWECHO 80 first\nPING\nSLOWECHO 5 second\nGREET you\n');
    assert.deepEqual(await c.readLines(4), ['first', 'PONG', 'second', 'Hello, you']);
    c.close();
  });
});
