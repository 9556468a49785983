// 10,000 connections that never send a byte take every place (default MAX_CONNECTIONS); 50 real
// clients then arrive. With the defaults, each real client is served: the oldest silent
// connection makes room (EVICT_SILENT_AFTER_MS, 5 s).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { ServerProcess } from '../helpers/server.ts';
import {
  type Peer,
  peer,
  report,
  sleep,
  startWithUlimit,
  statsFull,
  until,
} from '../helpers/stress.ts';

let server: ServerProcess | null = null;
const silent: Peer[] = [];
after(async () => {
  for (const p of silent) p.socket.destroy();
  await server?.kill();
});

test('10,000 silent connections plus 50 real clients', { timeout: 180_000 }, async () => {
  server = await startWithUlimit(20000);
  for (let i = 0; i < 10_000; i++) silent.push(await peer(server.port, false));
  await sleep(5500); // older than EVICT_SILENT_AFTER_MS
  let served = 0;
  let worstMs = 0;
  const real: Peer[] = []; // they stay connected, as real clients do
  for (let i = 0; i < 50; i++) {
    const t = Date.now();
    const c = await peer(server.port);
    c.socket.write('PING\n');
    await until(() => c.text().includes('\n') || c.closed, 5000, 'a reply').catch(() => {});
    if (c.text() === 'PONG\n') served++;
    worstMs = Math.max(worstMs, Date.now() - t);
    real.push(c);
  }
  await sleep(300);
  const stats = await statsFull(server.port);
  const silentClosed = silent.filter((p) => p.closed).length;
  report('silent-flood', {
    silent: silent.length,
    max_connections: 10000,
    real_served: `${served}/50`,
    worst_reply_ms: worstMs,
    silent_evictions: stats.silent_evictions,
    silent_closed: silentClosed,
    rejected: stats.rejected,
  });
  for (const c of real) c.socket.destroy();
  assert.equal(served, 50);
  assert.ok(stats.silent_evictions >= 50, `${stats.silent_evictions} evictions`);
});
