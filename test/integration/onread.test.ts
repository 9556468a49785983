// The onread adapter (src/transport/tcp/onread.ts) leans on Node's private net internals. These
// tests fail loudly when a Node upgrade breaks any of it: the probe, reads into the shared buffer,
// net.Server's connection count, pause/resume, EOF and half-close, server.close(), errors. The
// last tests run a real server on the onread path with an asynchronous command that keeps its
// arguments while other clients' reads overwrite the buffer.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { adopt, probeOnread } from '../../src/transport/tcp/onread.ts';
import { adoptingServer, closeWaitsForAdopted, until } from '../helpers/adopting-server.ts';
import { TestClient } from '../helpers/client.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const COMMANDS = new URL('../fixtures/hardening-commands.js', import.meta.url).pathname;

interface Adopted {
  socket: Socket;
  /** Each read's bytes, copied; `this` and the buffer checked on every call. */
  reads: string[];
  ended: Promise<unknown>;
  closed: Promise<unknown>;
  errors: NodeJS.ErrnoException[];
}

/** A net.Server whose connections go through adopt(); resolves each adopted socket in turn. */
function onreadServer(onReadResult: () => boolean = () => true) {
  return adoptingServer((accepted): Adopted => {
    const reads: string[] = [];
    const result = adopt(accepted, function (this: Socket, nread, buf) {
      assert.equal(this, entry.socket, 'the callback runs with this = the adopted socket');
      assert.equal(buf.length, 64 * 1024, 'reads land in the 64 KiB shared buffer');
      reads.push(buf.toString('latin1', 0, nread));
      return onReadResult();
    });
    assert.ok(result instanceof Socket, `adopt() failed: ${String(result)}`);
    assert.equal((accepted as unknown as { _handle: unknown })._handle, null);
    const socket = result;
    const errors: NodeJS.ErrnoException[] = [];
    socket.on('error', (e) => errors.push(e));
    const entry: Adopted = {
      socket,
      reads,
      // Not events.once(): it rejects on 'error', which the reset test expects.
      ended: new Promise((resolve) => socket.once('end', resolve)),
      closed: new Promise((resolve) => socket.once('close', resolve)),
      errors,
    };
    return entry;
  });
}

describe('onread adapter on this Node', () => {
  test('the start-up probe finds everything it needs (else the server silently falls back)', () => {
    assert.equal(probeOnread(), null);
  });

  test('reads arrive through the callback; getConnections() counts the adopted socket', async () => {
    const { server, connect, connections } = await onreadServer();
    const { client, peer } = await connect();
    assert.equal(await connections(), 1);
    client.write('hello');
    await until(() => peer.reads.join('') === 'hello', 'the first read');
    peer.socket.write('back');
    const [reply] = (await once(client, 'data')) as [Buffer];
    assert.equal(reply.toString(), 'back');
    assert.equal(peer.socket.remotePort, client.localPort);
    client.end();
    await peer.ended; // half-open: the server side stays open until it ends too
    assert.equal(await connections(), 1);
    peer.socket.end();
    await peer.closed;
    assert.equal(await connections(), 0);
    server.close();
  });

  test('pause() stops the reads and resume() brings them back; false from the callback pauses', async () => {
    let answer = true;
    const { server, connect } = await onreadServer(() => answer);
    const { client, peer } = await connect();
    peer.socket.pause();
    client.write('while paused');
    await sleep(150);
    assert.deepEqual(peer.reads, [], 'nothing is read while paused');
    peer.socket.resume();
    await until(() => peer.reads.join('') === 'while paused', 'the read after resume()');
    answer = false;
    client.write('a');
    await until(() => peer.reads.length === 2, 'the read that answers false');
    client.write('b');
    await sleep(150);
    assert.equal(peer.reads.length, 2, 'no read after the callback returned false');
    answer = true;
    peer.socket.resume();
    await until(() => peer.reads.join('') === 'while pausedab', 'the read after resume()');
    client.resetAndDestroy();
    await peer.closed;
    server.close();
  });

  test("the client's FIN is 'end'; the server may still answer (half-close), then both close", async () => {
    const { server, connect, connections } = await onreadServer();
    const { client, peer } = await connect();
    client.end('last words');
    await peer.ended;
    assert.equal(peer.reads.join(''), 'last words');
    const received: Buffer[] = [];
    client.on('data', (d: Buffer) => received.push(d));
    const clientEnded = once(client, 'end');
    peer.socket.end('answered after FIN');
    await clientEnded;
    assert.equal(Buffer.concat(received).toString(), 'answered after FIN');
    await peer.closed;
    assert.equal(await connections(), 0);
    server.close();
  });

  test('server.close() completes only once the adopted connection has closed', async () => {
    await closeWaitsForAdopted(await onreadServer(), (peer) => peer.socket.end());
  });

  test("a reset is an 'error' then 'close', and the count goes back to zero", async () => {
    const { server, connect, connections } = await onreadServer();
    const { client, peer } = await connect();
    client.write('x');
    await until(() => peer.reads.length === 1, 'the first read');
    client.resetAndDestroy();
    await peer.closed;
    assert.equal(peer.errors[0]?.code, 'ECONNRESET');
    assert.equal(await connections(), 0);
    server.close();
  });
});

describe('a server on the onread path', () => {
  const servers: ServerProcess[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.kill()));
  });

  for (const path of ['onread', 'stream']) {
    test(`TCP_READ_PATH=${path}: an async command keeps its arguments while other clients' reads reuse the buffer`, async () => {
      const server = await startServer({
        env: { THREAD_POOL_SIZE: '1', COMMANDS_MODULE: COMMANDS, TCP_READ_PATH: path },
      });
      servers.push(server);
      assert.doesNotMatch(server.stdout, /unavailable/);
      const slow = await TestClient.connect(server.port);
      const busy = await TestClient.connect(server.port);
      // RESP and line: the word arrives in the shared buffer, then the command waits.
      slow.socket.write('SLOWECHO 300 first-word\n');
      await sleep(50);
      for (let i = 0; i < 20; i++) {
        busy.socket.write(`ECHO ${'z'.repeat(40)}${i}\n`);
        await busy.readLine();
      }
      assert.equal(await slow.readLine(), 'first-word');
      // Requests queued behind the async one were read in the same read: kept as copies too.
      slow.socket.write('SLOWECHO 200 second\nECHO third\nECHO fourth\n');
      await sleep(50);
      for (let i = 0; i < 20; i++) {
        busy.socket.write(`ECHO ${'y'.repeat(60)}${i}\n`);
        await busy.readLine();
      }
      assert.equal(await slow.readLine(), 'second');
      assert.equal(await slow.readLine(), 'third');
      assert.equal(await slow.readLine(), 'fourth');
      slow.close();
      busy.close();
    });
  }
});
