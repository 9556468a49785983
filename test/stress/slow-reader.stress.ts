// Clients that ask for far more than they read. (a) one client pipelines requests for 200 MB of
// replies and never reads; (b) with 3,000 idle clients connected, 5 clients each pipeline 60 KB
// of CLIENT LIST (an asynchronous command, ~600 KB a reply) and never read. Unsent replies per
// connection must stay within OUTPUT_HIGH_WATER_BYTES plus one reply, so the server's memory
// stays flat.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { ServerProcess } from '../helpers/server.ts';
import { type Peer, peer, report, rssMb, sleep, startWithUlimit } from '../helpers/stress.ts';

let server: ServerProcess | null = null;
const idle: Peer[] = [];
after(async () => {
  for (const p of idle) p.socket.destroy();
  await server?.kill();
});

const CLIENT_LIST = '*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n';

test('slow readers: 200 MB unread, and CLIENT LIST pipelined by 5 non-readers', {
  timeout: 180_000,
}, async () => {
  server = await startWithUlimit(20000, { THREAD_POOL_SIZE: '2' });
  const pid = server.pid;
  const rssStart = rssMb(pid);
  // (a) ECHO of 1,000 bytes, 200,000 times: 200 MB of replies, never read.
  const hog = await peer(server.port, false);
  hog.socket.pause();
  const echo = `ECHO ${'x'.repeat(1000)}\n`;
  let asked = 0;
  const pump = (): void => {
    while (asked < 200_000 && hog.socket.write(echo)) asked++;
    if (asked < 200_000) hog.socket.once('drain', pump);
  };
  pump();
  let peakA = rssStart;
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    peakA = Math.max(peakA, rssMb(pid));
  }
  const askedA = asked;
  hog.socket.destroy();
  await sleep(1000);
  // (b) 3,000 idle clients, then 5 that pipeline CLIENT LIST without reading.
  for (let i = 0; i < 3000; i++) idle.push(await peer(server.port, false));
  for (const p of idle) p.socket.write('PING\n');
  await sleep(1000);
  const rssB = rssMb(pid);
  const listers = await Promise.all(Array.from({ length: 5 }, () => peer(server!.port, false)));
  const requests = Math.floor(60_000 / CLIENT_LIST.length);
  for (const l of listers) {
    l.socket.pause();
    l.socket.write(CLIENT_LIST.repeat(requests));
  }
  let peakB = rssB;
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    peakB = Math.max(peakB, rssMb(pid));
  }
  const alive = listers.filter((l) => !l.closed).length;
  report('slow-reader', {
    rss_start_mb: rssStart,
    a_requests_written: askedA,
    a_peak_rss_mb: peakA,
    b_idle_clients: idle.length,
    b_rss_before_mb: rssB,
    b_peak_rss_mb: peakB,
    b_list_requests_each: requests,
    b_listers_still_connected: alive,
  });
  assert.ok(peakA < rssStart + 150, `(a) RSS ${rssStart} -> ${peakA} MB`);
  assert.ok(peakB < rssB + 150, `(b) RSS ${rssB} -> ${peakB} MB`);
  for (const l of listers) l.socket.destroy();
});
