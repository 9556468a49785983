// 500 TLS clients that send the first 4 bytes of a ClientHello and stop, with MAX_CONNECTIONS=100:
// at most 100 are held, plain clients are refused with a reply (not reset), and every stalled
// one is closed by TLS_HANDSHAKE_TIMEOUT_MS (default 10 s).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { makeCerts } from '../helpers/certs.ts';
import { freePort, type ServerProcess } from '../helpers/server.ts';
import { type Peer, peer, report, sleep, startWithUlimit, statsFull } from '../helpers/stress.ts';

let server: ServerProcess | null = null;
after(() => server?.kill());

test('500 stalled TLS handshakes', { timeout: 120_000 }, async () => {
  const certs = makeCerts();
  const tlsPort = await freePort();
  server = await startWithUlimit(4096, {
    MAX_CONNECTIONS: '100',
    TLS_PORT: String(tlsPort),
    TLS_CERT: certs.serverCert,
    TLS_KEY: certs.serverKey,
  });
  const t0 = Date.now();
  const stalled: Peer[] = [];
  for (let i = 0; i < 500; i++) {
    const p = await peer(tlsPort);
    p.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00]));
    stalled.push(p);
  }
  await sleep(1000);
  const held = stalled.filter((p) => !p.closed).length;
  const plain: Peer[] = [];
  for (let i = 0; i < 20; i++) plain.push(await peer(server.port));
  for (const p of plain) p.socket.write('PING\n');
  await sleep(500);
  const plainRefused = plain.filter((p) => p.text() === 'ERROR: Too many connections\n').length;
  const plainReset = plain.filter((p) => p.error !== null).length;
  await Promise.all(stalled.map((p) => p.done));
  const allClosedS = (Date.now() - t0) / 1000;
  await sleep(200);
  const stats = await statsFull(server.port);
  report('tls-stall', {
    stalled: stalled.length,
    max_connections: 100,
    held_after_1s: held,
    plain_refused: `${plainRefused}/${plain.length}`,
    plain_resets: plainReset,
    all_closed_after_s: allClosedS.toFixed(1),
    tls_handshake_timeouts: stats.tls_handshake_timeouts,
    in_progress_after: stats.tls_handshakes_in_progress,
    rejected: stats.rejected,
  });
  assert.ok(held <= 100, `${held} held`);
  assert.equal(plainRefused, plain.length);
  assert.equal(plainReset, 0);
  assert.ok(allClosedS < 10 + 5, `closed after ${allClosedS} s`);
  assert.equal(stats.tls_handshakes_in_progress, 0);
});
