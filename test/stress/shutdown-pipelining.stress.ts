// SIGTERM while 50 clients pipeline PINGs as fast as they can: the server exits 0, and every
// client gets whole replies, in order, then a clean EOF: no reset.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { ServerProcess } from '../helpers/server.ts';
import { type Peer, peer, report, sleep, startWithUlimit, until } from '../helpers/stress.ts';

let server: ServerProcess | null = null;
after(() => server?.kill());

test('shutdown under continuous pipelining', { timeout: 120_000 }, async () => {
  server = await startWithUlimit(4096, { SHUTDOWN_TIMEOUT_MS: '30000' });
  const clients: Peer[] = [];
  for (let i = 0; i < 50; i++) clients.push(await peer(server.port));
  // Each is served once first: a connection still in the accept queue when the listener closes
  // is reset by the kernel, whatever the server does.
  for (const c of clients) c.socket.write('PING\n');
  await until(() => clients.every((c) => c.bytes >= 5), 10_000, 'first replies');
  const batch = 'PING\n'.repeat(200);
  let pumping = true;
  // As fast as TCP lets them, but yielding: while the server reads and drops input (its
  // lingering close) the kernel takes every write at once, and a loop that never returns would
  // keep this process from reading the server's replies and FIN at all.
  const pump = (c: Peer): void => {
    for (let i = 0; i < 64; i++) {
      if (!pumping || c.socket.writableEnded || c.socket.destroyed) return;
      if (!c.socket.write(batch)) {
        c.socket.once('drain', () => pump(c));
        return;
      }
    }
    setImmediate(() => pump(c));
  };
  for (const c of clients) pump(c);
  await sleep(2000);
  const t0 = Date.now();
  process.kill(server.pid, 'SIGTERM');
  await Promise.all(clients.map((c) => c.done));
  const allClosedMs = Date.now() - t0;
  pumping = false;
  const { code } = await server.exited;
  const exitMs = Date.now() - t0;
  const resets = clients.filter((c) => c.error?.code === 'ECONNRESET').length;
  const errors = clients.filter((c) => c.error !== null).length;
  const whole = clients.filter((c) => /^(PONG\n)+$/.test(c.text())).length;
  const replies = clients.reduce((n, c) => n + c.bytes / 5, 0);
  report('shutdown-pipelining', {
    clients: clients.length,
    exit_code: code ?? 'signal',
    all_closed_ms: allClosedMs,
    exit_ms: exitMs,
    resets,
    other_errors: errors - resets,
    whole_replies: `${whole}/${clients.length}`,
    replies_total: replies,
  });
  assert.equal(code, 0);
  assert.equal(errors, 0);
  assert.equal(whole, clients.length);
});
