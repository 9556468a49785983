// Pub/sub beyond TCP: WebSocket clients subscribe with either subprotocol (each confirmation and
// each message one frame), the HTTP API publishes and reads PUBSUB but refuses SUBSCRIBE (a
// response cannot carry later messages), and a command's ctx.send replies arrive as frames of
// their own on a WebSocket and as "sent" in HTTP's JSON. TCP subscribers hear every transport.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { encodeRespRequest } from '../../src/protocol/resp.ts';
import { TestClient } from '../helpers/client.ts';
import { freePort, type ServerProcess, startServer } from '../helpers/server.ts';

const MODULE = new URL('../fixtures/pubsub-commands.ts', import.meta.url).pathname;

let server: ServerProcess;
let wsPort: number;
let httpPort: number;
before(async () => {
  wsPort = await freePort();
  httpPort = await freePort();
  server = await startServer({
    env: {
      THREAD_POOL_SIZE: '2',
      COMMANDS_MODULE: MODULE,
      WS_PORT: String(wsPort),
      HTTP_PORT: String(httpPort),
    },
  });
});
after(() => server.kill());

/** A WebSocket whose frames are queued as [binary, text] until taken with next(). */
async function openWs(protocol: 'tcpool.line' | 'resp3') {
  const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/`, protocol);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const frames: [boolean, string][] = [];
  let waiter: (() => void) | null = null;
  ws.on('message', (data: Buffer, binary: boolean) => {
    frames.push([binary, data.toString('latin1')]);
    waiter?.();
  });
  const next = async (): Promise<[boolean, string]> => {
    const deadline = Date.now() + 5000;
    while (frames.length === 0) {
      if (Date.now() > deadline) assert.fail('no WebSocket frame within 5 s');
      await new Promise<void>((r) => {
        waiter = r;
        setTimeout(r, 50);
      });
      waiter = null;
    }
    return frames.shift()!;
  };
  return { ws, next, send: (m: string | Buffer) => ws.send(m) };
}

async function http(name: string, args: unknown[]) {
  const res = await fetch(`http://127.0.0.1:${httpPort}/v1/commands/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ args }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Until PUBSUB NUMSUB (over HTTP) counts `n` subscribers of `channel` across workers. */
async function awaitSubscribers(channel: string, n: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const { body } = await http('PUBSUB', ['NUMSUB', channel]);
    if ((body.result as unknown[])[1] === n) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`${channel} never had ${n} subscribers`);
}

describe('pub/sub over WebSocket and HTTP', () => {
  test('WebSocket subscribers (tcpool.line and resp3) and a TCP one hear HTTP and WebSocket publishers', async () => {
    const line = await openWs('tcpool.line');
    const r3 = await openWs('resp3');
    const tcp = await TestClient.connect(server.port);
    line.send('SUBSCRIBE room other');
    assert.deepEqual(await line.next(), [false, 'SUBSCRIBE room 1']);
    assert.deepEqual(await line.next(), [false, 'SUBSCRIBE other 2']);
    r3.send(encodeRespRequest(['SUBSCRIBE', 'room']));
    assert.deepEqual(await r3.next(), [true, '>3\r\n$9\r\nsubscribe\r\n$4\r\nroom\r\n:1\r\n']);
    assert.equal(await tcp.request('SUBSCRIBE room'), 'SUBSCRIBE room 1');
    await awaitSubscribers('room', 3);

    const published = await http('PUBLISH', ['room', 'hi there']);
    assert.deepEqual(published, { status: 200, body: { result: 3 } });
    assert.deepEqual(await line.next(), [false, 'MESSAGE room hi there']);
    assert.deepEqual(await r3.next(), [
      true,
      '>3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$8\r\nhi there\r\n',
    ]);
    assert.equal(await tcp.readLine(), 'MESSAGE room hi there');

    // A WebSocket client publishes; a subscriber that publishes to itself gets the message as a
    // frame before its reply's frame, as Redis puts the message before PUBLISH's reply.
    r3.send(encodeRespRequest(['PUBLISH', 'room', 'from ws']));
    assert.deepEqual(await r3.next(), [
      true,
      '>3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$7\r\nfrom ws\r\n',
    ]);
    assert.deepEqual(await r3.next(), [true, ':3\r\n']);
    assert.deepEqual(await line.next(), [false, 'MESSAGE room from ws']);
    assert.equal(await tcp.readLine(), 'MESSAGE room from ws');

    // The line subprotocol keeps running commands while subscribed; closing unsubscribes.
    line.send('ECHO still here');
    assert.deepEqual(await line.next(), [false, 'still here']);
    line.ws.close();
    r3.ws.close();
    await awaitSubscribers('room', 1);
    tcp.close();
  });

  test('HTTP refuses SUBSCRIBE with 501 and a clear error; PUBSUB and PUBLISH work', async () => {
    for (const name of ['SUBSCRIBE', 'PSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE']) {
      const { status, body } = await http(name, ['x']);
      assert.equal(status, 501);
      assert.deepEqual(Object.keys(body), ['error']);
      const error = body.error as { code: string; message: string };
      assert.equal(error.code, 'ERR_NOT_SUPPORTED');
      assert.match(error.message, new RegExp(`^${name} is not supported: an HTTP response`));
      assert.match(error.message, /subscribe over RESP, the line protocol or a WebSocket/);
    }
    assert.deepEqual(await http('PUBLISH', ['nobody-listens', 'x']), {
      status: 200,
      body: { result: 0 },
    });
    assert.deepEqual(await http('PUBSUB', ['NUMPAT']), { status: 200, body: { result: 0 } });
  });

  test('ctx.send: frames of their own on a WebSocket, "sent" in the HTTP JSON, in order', async () => {
    const line = await openWs('tcpool.line');
    line.send('COUNTDOWN 3');
    assert.deepEqual(
      [await line.next(), await line.next(), await line.next()],
      [
        [false, '3'],
        [false, '2'],
        [false, '1'],
      ],
    );
    line.ws.close();
    assert.deepEqual(await http('COUNTDOWN', [3]), {
      status: 200,
      body: { sent: [3, 2], result: 1 },
    });
    const res = await fetch(`http://127.0.0.1:${httpPort}/v1/pipeline`, {
      method: 'POST',
      body: JSON.stringify([['COUNTDOWN', 2], ['PING']]),
    });
    assert.deepEqual(await res.json(), {
      results: [{ sent: [2], result: 1 }, { result: 'PONG' }],
    });
  });

  test('ctx.whenClosed runs when a WebSocket or an HTTP connection closes', async () => {
    const tcp = await TestClient.connect(server.port);
    assert.equal(await tcp.request('SUBSCRIBE farewells'), 'SUBSCRIBE farewells 1');
    await awaitSubscribers('farewells', 1);
    const line = await openWs('tcpool.line');
    line.send('FAREWELL');
    assert.deepEqual(await line.next(), [false, 'OK']);
    line.ws.close();
    assert.equal(await tcp.readLine(), 'MESSAGE farewells websocket left');
    // An HTTP request's session ends with its response; the hook waits for its connection.
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(
        `http://127.0.0.1:${httpPort}/v1/commands/FAREWELL`,
        { method: 'POST', agent: false, headers: { connection: 'close' } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(body, '{"result":"OK"}');
    assert.equal(await tcp.readLine(), 'MESSAGE farewells http left');
    tcp.close();
  });
});
