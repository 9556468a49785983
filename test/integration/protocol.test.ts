// The line protocol over real sockets against a real server process.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TestClient } from '../helpers/client.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

let server: ServerProcess;
before(async () => {
  server = await startServer({ env: { MAX_LINE_BYTES: '1024' } });
});
after(async () => {
  await server.kill();
});

describe('the five original commands, byte for byte', () => {
  test('PING, TIME, ECHO, STATS, QUIT and an unknown command', async () => {
    const c = await TestClient.connect(server.port);
    c.write('PING\n');
    assert.deepEqual(await c.readBytes(5), Buffer.from('PONG\n'));
    c.write('TIME\n');
    const time = (await c.readBytes(20)).toString();
    assert.match(time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);
    c.write('ECHO hello world\n');
    assert.deepEqual(await c.readBytes(12), Buffer.from('hello world\n'));
    c.write('STATS\n');
    assert.deepEqual(await c.readBytes(18), Buffer.from('Active clients: 1\n'));
    c.write('FOO\n');
    assert.deepEqual(await c.readBytes(23), Buffer.from('ERROR: Unknown command\n'));
    c.write('QUIT\n');
    assert.deepEqual(await c.readBytes(8), Buffer.from('Goodbye\n'));
    await c.waitClosed();
    assert.equal(c.received.length, 0);
  });

  test('TIME is the local time of the server', async () => {
    const c = await TestClient.connect(server.port);
    const reply = await c.request('TIME');
    const [y, mo, d, h, mi, s] = reply.split(/[- :]/).map(Number);
    const diff = Math.abs(new Date(y, mo - 1, d, h, mi, s).getTime() - Date.now());
    assert.ok(diff < 3000, `server time ${reply} is ${diff} ms off local time`);
    c.close();
  });

  test('an unknown command and an empty line leave the connection open', async () => {
    const c = await TestClient.connect(server.port);
    assert.equal(await c.request('BOGUS x y'), 'ERROR: Unknown command');
    assert.equal(await c.request(''), 'ERROR: Unknown command');
    assert.equal(await c.request('PING'), 'PONG');
    c.close();
  });
});

describe('framing', () => {
  test('CRLF works and command names are case-insensitive', async () => {
    const c = await TestClient.connect(server.port);
    c.write('ping\r\nEcHo Mixed Case\r\nhelp\r\n');
    assert.deepEqual(await c.readLines(3), [
      'PONG',
      'Mixed Case',
      'Commands: PING [message], ECHO <message>, TIME, STATS [FULL], QUIT, HELP [command], AUTH [username] <token>, ' +
        'SUBSCRIBE <channel> ..., UNSUBSCRIBE [channel ...], PSUBSCRIBE <pattern> ..., PUNSUBSCRIBE [pattern ...], ' +
        'PUBLISH <channel> <message>, PUBSUB CHANNELS|NUMSUB|NUMPAT [...]',
    ]);
    c.close();
  });

  test('ECHO returns the message bytes exactly: spaces, NUL, invalid UTF-8, a lone \\r', async () => {
    const c = await TestClient.connect(server.port);
    const msg = Buffer.from([0x20, 0x20, 0x61, 0x00, 0xff, 0xc3, 0x28, 0x0d, 0x62, 0x20]);
    c.write(Buffer.concat([Buffer.from('ECHO '), msg, Buffer.from('\n')]));
    assert.deepEqual(await c.readLineBytes(), msg);
    c.write('ECHO \n');
    assert.deepEqual(await c.readLineBytes(), Buffer.alloc(0));
    c.close();
  });

  test('binary junk gets error replies and never crashes the worker', async () => {
    const c = await TestClient.connect(server.port);
    c.write(Buffer.from([0x00, 0x00, 0x0a, 0xff, 0xfe, 0x80, 0x0a, 0xf0, 0x9f, 0x0a]));
    assert.deepEqual(await c.readLines(3), Array(3).fill('ERROR: Unknown command'));
    assert.equal(await c.request('PING'), 'PONG');
    c.close();
  });

  test('a request split byte by byte is joined', async () => {
    const c = await TestClient.connect(server.port);
    for (const byte of Buffer.from('ECHO split\r\nPING\n')) {
      c.write(Buffer.from([byte]));
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.deepEqual(await c.readLines(2), ['split', 'PONG']);
    c.close();
  });

  test('10,000 pipelined commands in one write get 10,000 replies in order', async () => {
    const c = await TestClient.connect(server.port);
    const n = 10_000;
    let batch = '';
    for (let i = 0; i < n; i++) batch += i % 2 === 0 ? `ECHO ${i}\n` : 'PING\n';
    c.write(batch);
    const lines = await c.readLines(n, 20_000);
    for (let i = 0; i < n; i++) assert.equal(lines[i], i % 2 === 0 ? String(i) : 'PONG');
    assert.equal(await c.request('PING'), 'PONG');
    c.close();
  });

  test('QUIT closes once the reply is flushed; pipelined input after it is ignored', async () => {
    const c = await TestClient.connect(server.port);
    c.write('PING\nQUIT\nPING\nECHO never\n');
    assert.deepEqual(await c.readLines(2), ['PONG', 'Goodbye']);
    await c.waitClosed();
    assert.equal(c.received.length, 0, `got after Goodbye: ${c.received}`);
  });

  test('a line over MAX_LINE_BYTES gets "ERROR: Line too long" and the connection closes', async () => {
    const c = await TestClient.connect(server.port);
    c.write('PING\nECHO ' + 'x'.repeat(2000) + '\nPING\n');
    assert.deepEqual(await c.readLines(2), ['PONG', 'ERROR: Line too long']);
    await c.waitClosed();
    assert.equal(c.received.length, 0);
  });

  test('an endless line is refused before its end arrives', async () => {
    const c = await TestClient.connect(server.port);
    c.write('ECHO ' + 'y'.repeat(4096)); // no newline, ever
    assert.equal(await c.readLine(), 'ERROR: Line too long');
    await c.waitClosed();
  });

  test('a line of exactly MAX_LINE_BYTES is served', async () => {
    const c = await TestClient.connect(server.port);
    const msg = 'z'.repeat(1024 - 5);
    assert.equal(await c.request('ECHO ' + msg), msg);
    c.close();
  });

  test('another client is unaffected by a neighbour refused for a long line', async () => {
    const good = await TestClient.connect(server.port);
    const bad = await TestClient.connect(server.port);
    bad.write('x'.repeat(5000) + '\n');
    await bad.waitClosed();
    assert.equal(await good.request('ECHO still here'), 'still here');
    good.close();
  });
});
