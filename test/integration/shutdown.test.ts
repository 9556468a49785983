// Graceful shutdown on SIGINT and SIGTERM, with idle and busy clients.
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { after, describe, test } from 'node:test';
import { TestClient } from '../helpers/client.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

const COMMANDS = new URL('../fixtures/commands.js', import.meta.url).pathname;
const servers: ServerProcess[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.kill()));
});

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}

describe('graceful shutdown', () => {
  test('SIGTERM: idle clients close at once, busy ones get their replies, exit 0', async () => {
    const server = await startServer({
      env: { THREAD_POOL_SIZE: '2', COMMANDS_MODULE: COMMANDS, SHUTDOWN_TIMEOUT_MS: '15000' },
    });
    servers.push(server);
    const idle = await TestClient.connect(server.port);
    const slow = await TestClient.connect(server.port);
    const partial = await TestClient.connect(server.port);
    const pipelined = await TestClient.connect(server.port);
    for (const c of [idle, slow, partial, pipelined]) assert.equal(await c.request('PING'), 'PONG');

    // Each request goes in one write behind a PING: its PONG says the server has read them all
    // (a draining worker reads on only where a request is half-received or being answered).
    // SLOWECHO 3000 outlasts the idle client's close below (up to 1500 ms on a loaded machine).
    slow.write('PING\nSLOWECHO 3000 finished\n');
    partial.write('PING\nECHO part');
    pipelined.write('PING\nSLOWECHO 300 a\n' + 'PING\n'.repeat(500));
    for (const c of [slow, partial, pipelined]) assert.equal(await c.readLine(), 'PONG');
    const t0 = Date.now();
    process.kill(server.pid, 'SIGTERM');
    await server.waitForLog(/Received SIGTERM, shutting down server\.\.\./);

    await idle.waitClosed(2000);
    assert.ok(Date.now() - t0 < 1500, `idle client closed after ${Date.now() - t0} ms`);
    assert.equal(slow.closed, false, 'a busy client is not cut off');
    await server.waitForLog(/\[INFO\] Stopped accepting new connections\n/);
    assert.equal(
      await refused(server.port),
      true,
      'no new connections once every worker closed its listener',
    );

    partial.write('ial\n');
    assert.equal(await partial.readLine(), 'partial');
    await partial.waitClosed();
    assert.equal(await slow.readLine(5000), 'finished');
    await slow.waitClosed();
    const lines = await pipelined.readLines(501);
    assert.equal(lines[0], 'a');
    assert.ok(lines.slice(1).every((l) => l === 'PONG'));
    await pipelined.waitClosed();

    const { code } = await server.exited;
    assert.equal(code, 0);
    assert.match(server.stdout, /\[INFO\] Server stopped\. Total active clients at shutdown: 4\n/);
    assert.doesNotMatch(server.stdout, /Shutdown timeout/, 'every client finished on its own');
    assert.ok(Date.now() - t0 < 15_000, 'exited within SHUTDOWN_TIMEOUT_MS');
  });

  test('SIGINT: a client that never finishes its request is closed at SHUTDOWN_TIMEOUT_MS', async () => {
    const server = await startServer({ env: { SHUTDOWN_TIMEOUT_MS: '400' } });
    servers.push(server);
    const stuck = await TestClient.connect(server.port);
    assert.equal(await stuck.request('PING'), 'PONG');
    stuck.write('PING\nECHO never end'); // the PONG says the half request was read too
    assert.equal(await stuck.readLine(), 'PONG');
    const t0 = Date.now();
    const { code } = await server.stop('SIGINT');
    const took = Date.now() - t0;
    assert.equal(code, 0);
    assert.ok(took >= 350 && took < 400 + 5000, `shutdown took ${took} ms`);
    await stuck.waitClosed();
    assert.match(
      server.stdout,
      /\[WARN\] Shutdown timeout: closing 1 busy connection\(s\) on worker \d/,
    );
    assert.match(server.stdout, /Server stopped\. Total active clients at shutdown: 1\n/);
  });

  test('with no clients the server stops at once', async () => {
    const server = await startServer({ env: { SHUTDOWN_TIMEOUT_MS: '60000' } });
    servers.push(server);
    const t0 = Date.now();
    const { code } = await server.stop('SIGTERM');
    assert.equal(code, 0);
    // Not held for SHUTDOWN_TIMEOUT_MS, only for its own exit (slower under coverage, on CI).
    assert.ok(Date.now() - t0 < 10_000, `stopped after ${Date.now() - t0} ms`);
    assert.match(server.stdout, /Server stopped\. Total active clients at shutdown: 0\n$/);
  });

  test('a second signal exits immediately', async () => {
    const server = await startServer({ env: { SHUTDOWN_TIMEOUT_MS: '60000' } });
    servers.push(server);
    const stuck = await TestClient.connect(server.port);
    assert.equal(await stuck.request('PING'), 'PONG');
    stuck.write('PING\nECHO half'); // the PONG says the half request was read too
    assert.equal(await stuck.readLine(), 'PONG');
    process.kill(server.pid, 'SIGTERM');
    await server.waitForLog(/shutting down server/);
    const t0 = Date.now();
    const { code } = await server.stop('SIGINT', 15_000);
    // Not held for SHUTDOWN_TIMEOUT_MS (60 s) by the half request.
    assert.ok(Date.now() - t0 < 10_000, `exited ${Date.now() - t0} ms after the second signal`);
    assert.equal(code, 130);
    assert.match(server.stdout, /\[WARN\] Received SIGINT again: exiting immediately/);
    stuck.close();
  });
});
