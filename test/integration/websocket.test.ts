// WebSocket: subprotocols, the origin allow-list, the message size limit, ping/pong keep-alive,
// back-pressure, TLS, the port shared with HTTP, and clients nobody here wrote (Python's
// websockets, a real Chromium page). What every transport shares is in test/conformance/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { makeCerts } from '../helpers/certs.ts';
import { hasChromium, launchChromium } from '../helpers/browser.ts';
import { freePort, SERVER_RUNTIME, type ServerProcess, startServer } from '../helpers/server.ts';

/** A peer .ci/run installs; in CI its absence fails the test instead of skipping it. */
function peer(found: boolean, what: string): { skip: string | false } {
  if (!found && process.env.CI) throw new Error(`${what} is not installed`);
  return { skip: found ? false : `${what} not installed` };
}

const servers: ServerProcess[] = [];
after(async () => {
  for (const s of servers) await s.kill();
});

async function start(env: Record<string, string> = {}) {
  const wsPort = await freePort();
  const server = await startServer({ env: { WS_PORT: String(wsPort), ...env } });
  servers.push(server);
  return { server, wsPort };
}

function open(
  url: string,
  protocols: string | string[] = [],
  options: WebSocket.ClientOptions = {},
) {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** Sends each message and collects as many replies, with whether each was a binary frame. */
function exchange(ws: WebSocket, messages: (string | Buffer)[], expect = messages.length) {
  return new Promise<[boolean, string][]>((resolve) => {
    const replies: [boolean, string][] = [];
    const onMessage = (data: Buffer, binary: boolean) => {
      replies.push([binary, data.toString()]);
      if (replies.length === expect) {
        ws.off('message', onMessage);
        resolve(replies);
      }
    };
    ws.on('message', onMessage);
    for (const m of messages) ws.send(m);
  });
}

const stats = async (ws: WebSocket) => {
  const [[, line]] = await exchange(ws, ['STATS FULL']);
  return Object.fromEntries(line.split(' ').map((kv) => kv.split('='))) as Record<string, string>;
};

describe('WebSocket', () => {
  test('tcpool.line: a text frame is one request, its reply one text frame', async () => {
    const { wsPort } = await start();
    const ws = await open(`ws://127.0.0.1:${wsPort}/`, 'tcpool.line');
    assert.equal(ws.protocol, 'tcpool.line');
    const replies = await exchange(ws, ['PING', 'ECHO two  spaces', 'TIME', 'HELLO 3', 'QUIT']);
    assert.deepEqual(replies.slice(0, 2), [
      [false, 'PONG'],
      [false, 'two  spaces'],
    ]);
    assert.match(replies[2][1], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    assert.deepEqual(replies.slice(3), [
      [false, 'ERROR: Unknown command'],
      [false, 'Goodbye'],
    ]);
    await new Promise((resolve) => ws.once('close', resolve));
  });

  test('no subprotocol is tcpool.line; resp3 is RESP in binary frames, RESP3 from the start', async () => {
    const { wsPort } = await start();
    const plain = await open(`ws://127.0.0.1:${wsPort}/`);
    assert.deepEqual(await exchange(plain, ['PING']), [[false, 'PONG']]);
    plain.close();
    const ws = await open(`ws://127.0.0.1:${wsPort}/`, ['nope', 'resp3']);
    assert.equal(ws.protocol, 'resp3');
    const pipelined = Buffer.from(
      '*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$3\r\na\nb\r\n*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*1\r\n$4\r\nTIME\r\n',
    );
    const replies = await exchange(ws, [pipelined], 4);
    assert.deepEqual(replies.slice(0, 2), [
      [true, '+PONG\r\n'],
      [true, '$3\r\na\nb\r\n'],
    ]);
    assert.match(replies[2][1], /^%8\r\n\$6\r\nserver\r\n\$6\r\ntcpool\r\n/);
    assert.match(replies[3][1], /^\*2\r\n\$10\r\n\d{10}\r\n\$\d\r\n\d+\r\n$/);
    ws.close();
  });

  test('WS_ALLOWED_ORIGINS: other browser origins are refused (403), counted', async () => {
    const { wsPort } = await start({ WS_ALLOWED_ORIGINS: 'https://app.example' });
    const good = await open(`ws://127.0.0.1:${wsPort}/`, [], { origin: 'https://app.example' });
    good.close();
    await assert.rejects(
      open(`ws://127.0.0.1:${wsPort}/`, [], { origin: 'https://evil.example' }),
      /HTTP 403/,
    );
    const noOrigin = await open(`ws://127.0.0.1:${wsPort}/`); // not a browser
    assert.equal((await stats(noOrigin)).ws_origin_rejections, '1');
    noOrigin.close();
  });

  test('a message over WS_MAX_MESSAGE_BYTES closes the client with 1009, counted', async () => {
    const { wsPort } = await start({ WS_MAX_MESSAGE_BYTES: '1024' });
    const ws = await open(`ws://127.0.0.1:${wsPort}/`);
    assert.deepEqual(await exchange(ws, [`ECHO ${'x'.repeat(1000)}`]), [
      [false, `${'x'.repeat(1000)}`],
    ]);
    const code = new Promise((resolve) => ws.once('close', resolve));
    ws.send(`ECHO ${'x'.repeat(2000)}`);
    assert.equal(await code, 1009);
    const other = await open(`ws://127.0.0.1:${wsPort}/`);
    assert.equal((await stats(other)).ws_oversized_messages, '1');
    other.close();
  });

  test('ping/pong: a client that stops answering pings is closed, counted', async () => {
    // Long enough that a loaded machine answering late (a pause of the test or a worker) is not
    // taken for a client that stopped answering.
    const PING_MS = 750;
    const { wsPort } = await start({ WS_PING_INTERVAL_MS: String(PING_MS) });
    const answering = await open(`ws://127.0.0.1:${wsPort}/`);
    const silent = await open(`ws://127.0.0.1:${wsPort}/`, [], { autoPong: false });
    let pings = 0;
    silent.on('ping', () => pings++);
    const t0 = Date.now();
    await new Promise((resolve) => silent.once('close', resolve));
    assert.ok(pings >= 1, 'it was pinged');
    // Closed at the second round after it connected: bounded.
    assert.ok(Date.now() - t0 < 2 * PING_MS + 3000, `closed after ${Date.now() - t0} ms`);
    await sleep(2 * PING_MS + 100); // two more rounds: the answering client stays
    assert.equal(answering.readyState, WebSocket.OPEN);
    assert.equal((await stats(answering)).ws_ping_timeouts, '1');
    answering.close();
  });

  test('back-pressure: a client that does not read is not read either, and loses nothing', {
    // docs/PERFORMANCE.md (Bun): pausing an upgraded socket is not always honoured there.
    skip: SERVER_RUNTIME === 'bun' ? 'Bun: WebSocket back-pressure is not reliable' : false,
  }, async () => {
    const { wsPort } = await start({ OUTPUT_HIGH_WATER_BYTES: '65536' });
    const ws = await open(`ws://127.0.0.1:${wsPort}/`);
    const raw = (ws as unknown as { _socket: import('node:net').Socket })._socket;
    raw.pause(); // stop reading replies
    const payload = 'y'.repeat(60_000);
    // 24 MB of requests, and as much of replies owed: far more than loopback's socket buffers
    // take in. With 12 MB, a busy machine's kernel once took in all but 0.9 MB: the server's
    // send buffer (~4.3 MB of replies before its own passed OUTPUT_HIGH_WATER_BYTES), its
    // receive buffer and this client's send buffer, which the kernel grows to several MB each.
    const count = 400;
    for (let i = 0; i < count; i++) ws.send(`ECHO ${payload}`);
    await sleep(500);
    // The server stopped reading: most requests still sit unsent in this client's buffers.
    // (Without back-pressure the server reads them all, and this is about 0.)
    assert.ok(ws.bufferedAmount > 5_000_000, `client buffered ${ws.bufferedAmount} bytes`);
    let n = 0;
    const all = new Promise<void>((resolve) =>
      ws.on('message', (d: Buffer) => {
        assert.equal(d.length, payload.length);
        if (++n === count) resolve();
      }),
    );
    raw.resume();
    await all;
    ws.close();
  });

  test('wss:// with WS_TLS, through the same certificate settings', async () => {
    const certs = makeCerts();
    const { wsPort } = await start({
      WS_TLS: 'yes',
      TLS_CERT: certs.serverCert,
      TLS_KEY: certs.serverKey,
    });
    const ws = await open(`wss://127.0.0.1:${wsPort}/`, 'tcpool.line', {
      ca: readFileSync(certs.ca),
    });
    assert.deepEqual(await exchange(ws, ['ECHO over tls']), [[false, 'over tls']]);
    ws.close();
  });

  test('WS_PORT = HTTP_PORT: WebSockets at /ws, the HTTP API beside them', async () => {
    const port = await freePort();
    const server = await startServer({ env: { WS_PORT: String(port), HTTP_PORT: String(port) } });
    servers.push(server);
    const ws = await open(`ws://127.0.0.1:${port}/ws`);
    assert.deepEqual(await exchange(ws, ['PING']), [[false, 'PONG']]);
    ws.close();
    await assert.rejects(open(`ws://127.0.0.1:${port}/elsewhere`), /HTTP 404/);
    const res = await fetch(`http://127.0.0.1:${port}/v1/commands/PING`, { method: 'POST' });
    assert.deepEqual(await res.json(), { result: 'PONG' });
  });

  const python = '/usr/bin/python3';
  const hasWebsockets =
    existsSync(python) && spawnSync(python, ['-c', 'import websockets']).status === 0;
  test(
    "Python's websockets (a client nobody here wrote) in both subprotocols",
    peer(hasWebsockets, 'python3-websockets'),
    async () => {
      const { wsPort } = await start();
      const script = `
import asyncio, sys, websockets
async def main():
    async with websockets.connect('ws://127.0.0.1:${wsPort}/', subprotocols=['tcpool.line']) as ws:
        for request in ['PING', 'ECHO from python', 'TIME']:
            await ws.send(request)
            print(await ws.recv())
    async with websockets.connect('ws://127.0.0.1:${wsPort}/', subprotocols=['resp3']) as ws:
        await ws.send(b'*2\\r\\n$4\\r\\nECHO\\r\\n$5\\r\\nbytes\\r\\n')
        print(repr(await ws.recv()))
asyncio.run(main())
`;
      const r = spawnSync(python, ['-c', script], { encoding: 'utf8', timeout: 15_000 });
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines[0], 'PONG');
      assert.equal(lines[1], 'from python');
      assert.match(lines[2], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      assert.equal(lines[3], "b'$5\\r\\nbytes\\r\\n'");
    },
  );

  test(
    'a real browser page (Chromium) opens a WebSocket and runs PING, ECHO and TIME',
    peer(hasChromium, 'chromium'),
    async () => {
      const page = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!doctype html><title>tcpool</title>');
      });
      await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
      const origin = `http://127.0.0.1:${(page.address() as { port: number }).port}`;
      const { wsPort } = await start({ WS_ALLOWED_ORIGINS: origin });
      const browser = await launchChromium();
      try {
        const tab = await browser.newPage();
        await tab.goto(origin);
        const replies = await tab.evaluate(
          (url) =>
            new Promise<string[]>((resolve, reject) => {
              const ws = new WebSocket(url, 'tcpool.line');
              const got: string[] = [];
              ws.onerror = () => reject(new Error('WebSocket error'));
              ws.onmessage = (e) => {
                got.push(String(e.data));
                if (got.length === 3) {
                  ws.close();
                  resolve(got);
                }
              };
              ws.onopen = () => {
                for (const r of ['PING', 'ECHO from the browser', 'TIME']) ws.send(r);
              };
            }),
          `ws://127.0.0.1:${wsPort}/`,
        );
        assert.equal(replies[0], 'PONG');
        assert.equal(replies[1], 'from the browser');
        assert.match(replies[2], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      } finally {
        await browser.close();
        page.close();
      }
    },
  );
});
