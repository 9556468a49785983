// More clients than file descriptors: with `ulimit -n 1024` and the default MAX_CONNECTIONS
// (10,000), 3,000 clients each send PING. Every one gets PONG or "Too many connections"; none is
// reset, and the WARN at start-up names the numbers.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { ServerProcess } from '../helpers/server.ts';
import { type Peer, peer, report, sleep, startWithUlimit, statsFull } from '../helpers/stress.ts';

let server: ServerProcess | null = null;
after(() => server?.kill());

test('fd exhaustion: 3,000 clients against ulimit -n 1024', { timeout: 120_000 }, async () => {
  server = await startWithUlimit(1024);
  const warning = await server.waitForLog(
    /\[WARN\] (MAX_CONNECTIONS .*serving at most (\d+) connections.*)/,
  );
  const cap = Number(warning[2]);
  const clients: Peer[] = [];
  for (let i = 0; i < 3000; i++) clients.push(await peer(server.port));
  for (const c of clients) c.socket.write('PING\n');
  await sleep(3000);
  const served = clients.filter((c) => c.text() === 'PONG\n').length;
  const refused = clients.filter((c) => c.text() === 'ERROR: Too many connections\n').length;
  // A reset is the server's doing. A refused client whose PING is written after it has read the
  // refusal and its FIN fails in its own socket (EPIPE, "ended by the other party"): past 16
  // refusals waiting for first bytes, a refusal is sent at once, and the last clients see it
  // before this loop reaches them.
  const resets = clients.filter((c) => c.error !== null && c.error.code !== 'EPIPE').length;
  const silent = clients.length - served - refused;
  for (const c of clients) c.socket.destroy();
  await sleep(500);
  const stats = await statsFull(server.port);
  report('fd-exhaustion', {
    ulimit_n: 1024,
    max_connections: 10000,
    effective_max: cap,
    clients: clients.length,
    served,
    refused,
    resets,
    no_reply: silent,
    rejected_counter: stats.rejected,
    accept_errors: stats.accept_errors,
  });
  assert.equal(resets, 0);
  assert.equal(silent, 0);
  assert.equal(served, cap);
  assert.equal(refused, clients.length - cap);
});
