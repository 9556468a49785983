// 100,000 connections that each connect, PING and close: none may fail, and memory must come back.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { peer, report, rssMb, sleep, startWithUlimit, until } from '../helpers/stress.ts';
import type { ServerProcess } from '../helpers/server.ts';

let server: ServerProcess | null = null;
after(() => server?.kill());

test('churn: 100,000 connect/PING/close', { timeout: 300_000 }, async () => {
  server = await startWithUlimit(4096);
  const port = server.port;
  const total = 100_000;
  const parallel = 50;
  const rssBefore = rssMb(server.pid);
  let done = 0;
  let failures = 0;
  const t0 = Date.now();
  const one = async (): Promise<void> => {
    try {
      const p = await peer(port);
      p.socket.write('PING\n');
      await until(() => p.bytes >= 5 || p.closed, 5000, 'PONG');
      if (p.text() !== 'PONG\n') failures++;
      p.socket.end();
      await p.done;
    } catch {
      failures++;
    }
  };
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (done < total) {
        done++;
        await one();
      }
    }),
  );
  const seconds = (Date.now() - t0) / 1000;
  const rssAfter = rssMb(server.pid);
  await sleep(10_000);
  const rssIdle = rssMb(server.pid);
  report('churn', {
    connections: total,
    parallel,
    failures,
    seconds: seconds.toFixed(1),
    per_s: Math.round(total / seconds),
    rss_before_mb: rssBefore,
    rss_after_mb: rssAfter,
    rss_after_10s_idle_mb: rssIdle,
  });
  assert.equal(failures, 0);
  assert.ok(rssIdle < rssBefore + 100, `RSS ${rssBefore} MB before, ${rssIdle} MB after 10 s idle`);
});
