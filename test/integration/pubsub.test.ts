// Pub/sub across workers over real sockets: Redis's replies in RESP2 (subscribe mode) and RESP3
// (push), the line protocol's SUBSCRIBE/MESSAGE lines, delivery in publish order to subscribers
// in every worker, PSUBSCRIBE, PUBSUB, ctx.publish, Redis clients, and the subscriber output
// limit (a subscriber that does not read is cut off; the others are not slowed).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { encodeRespRequest } from '../../src/protocol/resp.ts';
import { parseStatsFull, TestClient } from '../helpers/client.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

const resp = (...args: string[]) => encodeRespRequest(args);
const MODULE = new URL('../fixtures/pubsub-commands.ts', import.meta.url).pathname;

let server: ServerProcess;
before(async () => {
  server = await startServer({ env: { THREAD_POOL_SIZE: '4', COMMANDS_MODULE: MODULE } });
});
after(() => server.kill());

/** Until PUBSUB NUMSUB reports `n` subscribers of `channel` (counts cross workers a moment later). */
async function awaitSubscribers(c: TestClient, channel: string, n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const reply = await c.request(`PUBSUB NUMSUB ${channel}`);
    if (reply === `${channel} ${n}`) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`${channel} never had ${n} subscribers`);
}

/** The worker serving a line-protocol connection (STATS FULL's worker=). */
async function workerOf(c: TestClient): Promise<number> {
  return parseStatsFull(await c.request('STATS FULL')).worker;
}

describe('across workers', () => {
  test('every subscriber, in every worker, gets every message in publish order', async () => {
    // Connect until the subscribers span at least two workers (the kernel spreads connections).
    const subs: TestClient[] = [];
    const workers = new Set<number>();
    for (let i = 0; i < 40 && (subs.length < 12 || workers.size < 2); i++) {
      const c = await TestClient.connect(server.port);
      workers.add(await workerOf(c));
      subs.push(c);
    }
    assert.ok(workers.size >= 2, 'subscribers in several workers');
    for (const c of subs) assert.equal(await c.request('SUBSCRIBE feed'), 'SUBSCRIBE feed 1');
    const pub = await TestClient.connect(server.port);
    await awaitSubscribers(pub, 'feed', subs.length);
    const N = 200;
    pub.write(Array.from({ length: N }, (_, i) => `PUBLISH feed m${i}\n`).join(''));
    const counts = await pub.readLines(N);
    assert.deepEqual(
      new Set(counts),
      new Set([String(subs.length)]),
      'PUBLISH counts every worker',
    );
    const expected = Array.from({ length: N }, (_, i) => `MESSAGE feed m${i}`);
    for (const c of subs) assert.deepEqual(await c.readLines(N), expected);
    for (const c of [...subs, pub]) c.close();
  });

  test('a command publishes with ctx.publish; PSUBSCRIBE matches; PUBSUB sees every worker', async () => {
    const line = await TestClient.connect(server.port);
    const r = await TestClient.connect(server.port);
    r.write(resp('PSUBSCRIBE', 'lob*', 'x?[a-c]'));
    assert.equal(
      (
        await r.readBytes(Buffer.byteLength('*3\r\n$10\r\npsubscribe\r\n$4\r\nlob*\r\n:1\r\n'))
      ).toString(),
      '*3\r\n$10\r\npsubscribe\r\n$4\r\nlob*\r\n:1\r\n',
    );
    await r.readBytes(Buffer.byteLength('*3\r\n$10\r\npsubscribe\r\n$7\r\nx?[a-c]\r\n:2\r\n'));
    assert.equal(await line.request('SUBSCRIBE lobby'), 'SUBSCRIBE lobby 1');
    const other = await TestClient.connect(server.port);
    for (let i = 0; i < 200 && (await other.request('PUBSUB NUMPAT')) !== '2'; i++)
      await new Promise((res) => setTimeout(res, 10));
    await awaitSubscribers(other, 'lobby', 1);
    assert.equal(await other.request('PUBSUB CHANNELS lob?y'), 'lobby');
    assert.equal(await other.request('ANNOUNCE ann'), '2');
    assert.equal(await line.readLine(), 'MESSAGE lobby ann joined');
    const pm = '*4\r\n$8\r\npmessage\r\n$4\r\nlob*\r\n$5\r\nlobby\r\n$10\r\nann joined\r\n';
    assert.equal((await r.readBytes(pm.length)).toString(), pm);
    assert.equal(await other.request('PUBLISH xyb hi'), '1');
    const pm2 = '*4\r\n$8\r\npmessage\r\n$7\r\nx?[a-c]\r\n$3\r\nxyb\r\n$2\r\nhi\r\n';
    assert.equal((await r.readBytes(pm2.length)).toString(), pm2);
    assert.equal(await other.request('PUBLISH xyd hi'), '0');
    for (const c of [line, r, other]) c.close();
  });
});

describe('protocol forms', () => {
  test("RESP2: confirmations per channel, subscribe mode (PING answers Redis's pong array), UNSUBSCRIBE of all", async () => {
    const r = await TestClient.connect(server.port);
    r.write(resp('SUBSCRIBE', 'a', 'b'));
    const confirm =
      '*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n';
    assert.equal((await r.readBytes(confirm.length)).toString(), confirm);
    r.write(
      Buffer.concat([
        resp('ECHO', 'x'),
        resp('PING'),
        resp('PING', 'hi'),
        resp('UNSUBSCRIBE'),
        resp('ECHO', 'y'),
        resp('PING'),
      ]),
    );
    assert.equal(
      await r.readLine(),
      "-ERR Can't execute 'echo': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r",
    );
    // As redis-server 7 answers in subscribe mode: ["pong", ""] and ["pong", message].
    const pongs = '*2\r\n$4\r\npong\r\n$0\r\n\r\n*2\r\n$4\r\npong\r\n$2\r\nhi\r\n';
    assert.equal((await r.readBytes(pongs.length)).toString(), pongs);
    // Out of subscribe mode, PING is +PONG again.
    const gone =
      '*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n$1\r\ny\r\n+PONG\r\n';
    assert.equal((await r.readBytes(gone.length)).toString(), gone);
    r.write(resp('UNSUBSCRIBE'));
    const none = '*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n';
    assert.equal((await r.readBytes(none.length)).toString(), none);
    r.close();
  });

  test('RESP3: pushes, and other commands still run while subscribed', async () => {
    const r = await TestClient.connect(server.port);
    r.write(Buffer.concat([resp('HELLO', '3'), resp('PING')]));
    for (let i = 0; i < 100 && (await r.readLine()) !== '+PONG\r'; i++); // past the HELLO map
    r.write(Buffer.concat([resp('SUBSCRIBE', 'c3'), resp('ECHO', 'still'), resp('PING')]));
    const want = '>3\r\n$9\r\nsubscribe\r\n$2\r\nc3\r\n:1\r\n$5\r\nstill\r\n+PONG\r\n';
    assert.equal((await r.readBytes(want.length)).toString(), want);
    const p = await TestClient.connect(server.port);
    await awaitSubscribers(p, 'c3', 1);
    assert.equal(await p.request('PUBLISH c3 hello'), '1');
    const msg = '>3\r\n$7\r\nmessage\r\n$2\r\nc3\r\n$5\r\nhello\r\n';
    assert.equal((await r.readBytes(msg.length)).toString(), msg);
    r.close();
    p.close();
  });

  test('line protocol: payloads with newlines are escaped on one line', async () => {
    const s = await TestClient.connect(server.port);
    assert.equal(await s.request('SUBSCRIBE esc'), 'SUBSCRIBE esc 1');
    const p = await TestClient.connect(server.port);
    await awaitSubscribers(p, 'esc', 1);
    const r = await TestClient.connect(server.port);
    r.write(resp('PUBLISH', 'esc', 'a\nb\\c\rd'));
    assert.equal(await r.readLine(), ':1\r');
    r.close();
    assert.equal(await s.readLine(), 'MESSAGE esc a\\nb\\\\c\\rd');
    assert.equal(await s.request('UNSUBSCRIBE esc'), 'UNSUBSCRIBE esc 0');
    s.close();
    p.close();
  });

  test('Redis clients: ioredis and node-redis subscribe and receive', async () => {
    const io = new Redis({ port: server.port, host: '127.0.0.1' });
    const nr = createClient({ socket: { port: server.port, host: '127.0.0.1' } });
    await nr.connect();
    const got: string[] = [];
    const both = new Promise<void>((resolve) => {
      const check = () => got.length === 2 && resolve();
      io.on('message', (ch: string, m: string) => {
        got.push(`io ${ch} ${m}`);
        check();
      });
      void nr.subscribe('clients', (m: string) => {
        got.push(`nr clients ${m}`);
        check();
      });
    });
    await io.subscribe('clients');
    const pub = await TestClient.connect(server.port);
    await awaitSubscribers(pub, 'clients', 2);
    assert.equal(await pub.request('PUBLISH clients hi'), '2');
    await both;
    assert.deepEqual(got.sort(), ['io clients hi', 'nr clients hi']);
    io.disconnect();
    await nr.quit();
    pub.close();
  });
});

test('a subscriber that does not read is cut off at PUBSUB_OUTPUT_LIMIT_BYTES; nobody else waits', async () => {
  const limited = await startServer({
    env: { THREAD_POOL_SIZE: '2', PUBSUB_OUTPUT_LIMIT_BYTES: '1048576' },
  });
  try {
    const stuck = await TestClient.connect(limited.port);
    assert.equal(await stuck.request('SUBSCRIBE big'), 'SUBSCRIBE big 1');
    stuck.socket.pause(); // never reads again
    const reader = await TestClient.connect(limited.port);
    assert.equal(await reader.request('SUBSCRIBE big'), 'SUBSCRIBE big 1');
    const pub = await TestClient.connect(limited.port);
    await awaitSubscribers(pub, 'big', 2);
    const payload = 'x'.repeat(16 * 1024);
    const N = 2000; // 32 MB: far more than the kernel's socket buffers hold for the stuck one
    const received = reader.readLines(N, 60_000); // reads as the messages come
    const counts: string[] = [];
    const t0 = Date.now();
    for (let batch = 0; batch < N / 100; batch++) {
      pub.write(`PUBLISH big ${payload}\n`.repeat(100));
      counts.push(...(await pub.readLines(100, 30_000)));
    }
    assert.ok(Date.now() - t0 < 30_000, 'the publisher was never held up');
    assert.equal(counts[0], '2');
    assert.equal(counts[N - 1], '1', 'the stuck subscriber was cut off on the way');
    const lines = await received;
    assert.ok(lines.every((l) => l === `MESSAGE big ${payload}`));
    const stats = await pub.request('STATS FULL');
    assert.match(stats, /pubsub_output_disconnects=1\b/);
    await limited.waitForLog(
      /Subscriber \S+ disconnected: its unsent messages would pass PUBSUB_OUTPUT_LIMIT_BYTES/,
    );
    for (const c of [stuck, reader, pub]) c.close();
  } finally {
    await limited.kill();
  }
});

test('IDLE_TIMEOUT_MS closes a silent client but not a subscriber (as Redis)', async () => {
  const idle = await startServer({ env: { IDLE_TIMEOUT_MS: '300' } });
  try {
    const sub = await TestClient.connect(idle.port);
    assert.equal(await sub.request('SUBSCRIBE quiet'), 'SUBSCRIBE quiet 1');
    const silent = await TestClient.connect(idle.port);
    assert.equal(await silent.request('PING'), 'PONG');
    await silent.closedPromise; // the sweep closes it once 300 ms pass without a byte from it
    await new Promise((r) => setTimeout(r, 400)); // the subscriber has been silent as long
    const pub = await TestClient.connect(idle.port);
    assert.equal(await pub.request('PUBLISH quiet still here'), '1');
    assert.equal(await sub.readLine(), 'MESSAGE quiet still here');
    for (const c of [sub, pub]) c.close();
  } finally {
    await idle.kill();
  }
});
