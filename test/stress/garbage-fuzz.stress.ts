// Garbage fuzz of a running server: 20 connections for 60 s send random bytes, random valid and
// broken RESP (arrays, inline requests, MULTI/EXEC, async commands) and random lines, in random
// pieces, reconnecting whenever the server closes one. Meanwhile a RESP client and a line client
// that behave check every reply, in order. Afterwards no worker may have restarted (STATS FULL),
// nothing may have been logged as an internal error, and the server still answers PING.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { encodeRespRequest } from '../../src/protocol/resp.ts';
import { parseStatsFull, TestClient } from '../helpers/client.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

const SECONDS = Number(process.env.FUZZ_SECONDS ?? 60);
const CONNECTIONS = 20;
const SEED = Number(process.env.FUZZ_SEED ?? 0x6a7b);

let state = SEED >>> 0 || 1;
function rand(n: number): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) % n;
}

const resp = (...args: (string | Buffer)[]) => encodeRespRequest(args);
const VALID = [
  () => resp('PING'),
  () => resp('ECHO', randomBytes(rand(64))),
  () => resp('CLIENT', 'LIST'),
  () => resp('HELLO', '3'),
  () => resp('INFO'),
  () => Buffer.concat([resp('MULTI'), resp('ECHO', 'x'), resp('CLIENT', 'LIST'), resp('EXEC')]),
  () => resp('MULTI'),
  () => resp('EXEC'),
  () => resp('COMMAND', 'DOCS'),
  () => Buffer.from('PING\r\n'),
  () => Buffer.from('ECHO "a b\\x41" \'c\'\r\n\r\n'),
  () => Buffer.from('STATS FULL\n'),
  () => Buffer.from('ECHO hello world\n'),
  () => Buffer.from('HELP\n'),
];
const BROKEN = [
  () => Buffer.from(`*${rand(100_000_000)}\r\n`),
  () => Buffer.from(`*1\r\n$${rand(1 << 30)}\r\n`),
  () => Buffer.from('*2\r\n$4\r\nECHO\r\n$3\r\nabcd\r\n'),
  () => Buffer.from('ECHO "unclosed\r\n'),
  () => Buffer.from(`*1\r\n$-${rand(10)}\r\n`),
  () => Buffer.concat([Buffer.from('*'), randomBytes(rand(20))]),
  () => Buffer.alloc(1 + rand(70_000), 0x41), // a line over MAX_LINE_BYTES, or nearly
  () => resp('MULTI', 'x'),
];

function garbage(): Buffer {
  const r = rand(10);
  if (r < 3) return randomBytes(1 + rand(rand(20) === 0 ? 65_536 : 512));
  if (r < 7) return VALID[rand(VALID.length)]();
  const b = BROKEN[rand(BROKEN.length)]();
  if (rand(3) === 0 && b.length > 0) b[rand(b.length)] = rand(256);
  return b;
}

const totals = { connections: 0, bytesSent: 0, bytesReceived: 0, closedByServer: 0 };

/** One garbage connection after another until the deadline. */
async function garbageLoop(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const socket: Socket = createConnection({ port, host: '127.0.0.1' });
    totals.connections++;
    let closed = false;
    socket.on('data', (d: Buffer) => (totals.bytesReceived += d.length));
    socket.on('error', () => {});
    const closedP = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('close', () => (closed = true));
    await new Promise<void>((resolve) => {
      socket.once('connect', resolve);
      socket.once('error', resolve);
    });
    const writes = 1 + rand(40);
    for (let w = 0; w < writes && !closed && Date.now() < deadline; w++) {
      const bytes = garbage();
      totals.bytesSent += bytes.length;
      // Random pieces, so that requests are split anywhere.
      let at = 0;
      while (at < bytes.length && !closed) {
        const n = 1 + rand(bytes.length - at);
        socket.write(bytes.subarray(at, at + n));
        at += n;
        if (rand(4) === 0) await new Promise((r) => setTimeout(r, rand(5)));
      }
    }
    if (closed) totals.closedByServer++;
    if (rand(2) === 0) socket.end();
    else socket.destroy();
    await Promise.race([closedP, new Promise((r) => setTimeout(r, 1000))]);
    socket.destroy();
  }
}

/** Well-behaved clients: each batch's replies must come back exactly, in order. */
async function goodLoop(port: number, deadline: number, counts: { resp: number; line: number }) {
  const r = await TestClient.connect(port);
  const l = await TestClient.connect(port);
  let n = 0;
  while (Date.now() < deadline) {
    const words = Array.from({ length: 20 }, () => `good-${n++}`);
    r.write(
      Buffer.concat([
        ...words.map((w) => resp('ECHO', w)),
        resp('MULTI'),
        resp('ECHO', 'in'),
        resp('EXEC'),
        Buffer.from('ECHO inline\r\n'),
      ]),
    );
    const expected =
      words.map((w) => `$${w.length}\r\n${w}\r\n`).join('') +
      '+OK\r\n+QUEUED\r\n*1\r\n$2\r\nin\r\n$6\r\ninline\r\n';
    const got = (await r.readBytes(Buffer.byteLength(expected), 30_000)).toString();
    assert.equal(got, expected);
    counts.resp += words.length + 4;
    l.write(words.map((w) => `ECHO ${w}\n`).join(''));
    assert.deepEqual(await l.readLines(words.length, 30_000), words);
    counts.line += words.length;
  }
  r.close();
  l.close();
}

let server: ServerProcess;
after(async () => {
  await server?.kill();
});

test('garbage from 20 connections for 60 s: no restart, no internal error, good clients served in order', async () => {
  server = await startServer({ env: { THREAD_POOL_SIZE: '2' } });
  const started = Date.now();
  const deadline = started + SECONDS * 1000;
  const counts = { resp: 0, line: 0 };
  await Promise.all([
    goodLoop(server.port, deadline, counts),
    ...Array.from({ length: CONNECTIONS }, () => garbageLoop(server.port, deadline)),
  ]);
  const c = await TestClient.connect(server.port);
  assert.equal(await c.request('PING'), 'PONG');
  const stats = parseStatsFull(await c.request('STATS FULL'));
  c.close();
  const internalErrors = server.stdout.split('\n').filter((l) => /\[ERROR\]/.test(l));
  console.log(
    `STRESS garbage-fuzz: seconds=${((Date.now() - started) / 1000).toFixed(0)} connections=${totals.connections} ` +
      `bytes_sent=${totals.bytesSent} bytes_received=${totals.bytesReceived} closed_by_server=${totals.closedByServer} ` +
      `good_resp_replies=${counts.resp} good_line_replies=${counts.line} server_commands=${stats.commands} ` +
      `restarts=${stats.restarts} internal_errors=${internalErrors.length} ping_after=PONG seed=${SEED}`,
  );
  assert.equal(stats.restarts, 0);
  assert.deepEqual(internalErrors, []);
  assert.ok(counts.resp > 0 && counts.line > 0);
  assert.equal(server.child.exitCode, null, 'the server is still running');
});
