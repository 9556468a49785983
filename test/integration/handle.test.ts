// The handle adapter (src/transport/tcp/handle.ts) drives an accepted connection's libuv handle
// without a net.Socket, leaning on Node's private net internals (onStreamRead, WriteWrap,
// ShutdownWrap, the owner symbol, net.Server's count). These tests fail loudly when a Node upgrade
// breaks any of it: the probe, reads into the shared buffer, writes done at once and queued,
// their order and callbacks, cork/uncork, pause/resume, EOF and half-close, FIN after queued
// writes, server.close(), resets, destroy with writes queued. The last tests run a real server on
// each path.
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  acceptHandles,
  adoptHandle,
  HandleChannel,
  probeHandle,
} from '../../src/transport/tcp/handle.ts';
import type { Connection } from '../../src/worker/connection.ts';
import { adoptingServer, closeWaitsForAdopted, until } from '../helpers/adopting-server.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a channel told its connection. */
interface Peer {
  channel: HandleChannel;
  reads: string[];
  ended: Promise<void>;
  closed: Promise<void>;
  debug: string[];
}

/** A stand-in for the Connection: the calls a channel makes on it, recorded. */
function fakeConnection(peer: Omit<Peer, 'channel' | 'ended' | 'closed'>) {
  let ended!: () => void;
  let closed!: () => void;
  const conn = {
    peer: 'test-peer',
    owner: { logger: { debug: (m: string) => peer.debug.push(m) } },
    onData(chunk: Buffer) {
      assert.equal(chunk.buffer.byteLength, 64 * 1024, 'reads land in the 64 KiB shared buffer');
      peer.reads.push(chunk.toString('latin1'));
    },
    onEnd: () => ended(),
    onClose: () => closed(),
  };
  return {
    conn: conn as unknown as Connection,
    ended: new Promise<void>((r) => {
      ended = r;
    }),
    closed: new Promise<void>((r) => {
      closed = r;
    }),
  };
}

/** A net.Server whose connections go through adoptHandle(); resolves each channel in turn. */
function handleServer() {
  return adoptingServer((accepted): Peer => {
    const channel = adoptHandle(accepted);
    assert.ok(channel instanceof HandleChannel, `adoptHandle() failed: ${String(channel)}`);
    assert.equal((accepted as unknown as { _handle: unknown })._handle, null);
    const recorded = { reads: [] as string[], debug: [] as string[] };
    const { conn, ended, closed } = fakeConnection(recorded);
    channel.start(conn);
    return { channel, ...recorded, ended, closed };
  });
}

/** Everything a client receives until the server's FIN. */
function collect(client: Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  client.on('data', (d: Buffer) => parts.push(d));
  return once(client, 'end').then(() => Buffer.concat(parts));
}

describe('handle adapter on this Node', () => {
  test('the start-up probe finds everything it needs (else the server falls back to onread)', () => {
    assert.equal(probeHandle(), null);
  });

  test('a socket without what the adapter needs is named, and left as it was', () => {
    const fake = (handle: unknown) =>
      ({ destroyed: false, readableLength: 0, writableLength: 0, _handle: handle }) as never;
    assert.equal(adoptHandle(fake(null)), 'the socket has no handle');
    assert.equal(adoptHandle(fake({})), "the socket's handle has no readStart()");
    assert.equal(
      adoptHandle({ destroyed: true, readableLength: 0, writableLength: 0 } as never),
      null,
    );
  });

  test('reads arrive through the channel; getConnections() counts it; a write reaches the client', async () => {
    const { server, connect, connections } = await handleServer();
    const { client, peer } = await connect();
    assert.equal(await connections(), 1);
    client.write('hello');
    await until(() => peer.reads.join('') === 'hello', 'the first read');
    let written = false;
    assert.equal(
      peer.channel.write('back', () => {
        written = true;
      }),
      true,
    );
    assert.equal(written, false, 'the callback runs later, never during write()');
    const [reply] = (await once(client, 'data')) as [Buffer];
    assert.equal(reply.toString(), 'back');
    assert.equal(written, true);
    assert.equal(peer.channel.localPort, client.remotePort);
    assert.equal(peer.channel.localAddress, '127.0.0.1');
    assert.equal(peer.channel.readableLength, 0);
    client.end();
    await peer.ended;
    assert.equal(await connections(), 1, 'half-open: the server side stays open until it ends');
    const rest = collect(client);
    peer.channel.write(Buffer.from('answered after FIN'));
    peer.channel.end();
    assert.equal((await rest).toString(), 'answered after FIN');
    await peer.closed;
    assert.equal(await connections(), 0);
    server.close();
  });

  test('acceptHandles(): after a first adopted connection, accepts skip net.Socket; counted, served, refusable; server.close() waits', async (t) => {
    const viaServer: Peer[] = [];
    const taken: Peer[] = [];
    const start = (channel: HandleChannel): Peer => {
      const recorded = { reads: [] as string[], debug: [] as string[] };
      const { conn, ended, closed } = fakeConnection(recorded);
      channel.start(conn);
      return { channel, ...recorded, ended, closed };
    };
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (accepted) => {
      const channel = adoptHandle(accepted);
      assert.ok(channel instanceof HandleChannel, `adoptHandle() failed: ${String(channel)}`);
      viaServer.push(start(channel));
    });
    const clients: Socket[] = [];
    t.after(() => {
      // A failure midway must not leave the file's process waiting on open sockets.
      for (const c of clients) c.destroy();
      for (const p of [...viaServer, ...taken]) p.channel.destroy();
      server.close();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    let refuse = false;
    let giveBack = false;
    const peers: { address: string; port: number }[] = [];
    assert.equal(
      acceptHandles(server, (accepted) => {
        peers.push({ address: accepted.address, port: accepted.port });
        if (giveBack) return false;
        if (refuse) accepted.socket().end('refused\n');
        else taken.push(start(accepted.channel()));
        return true;
      }),
      null,
    );
    const connections = (): Promise<number> =>
      new Promise((resolve, reject) =>
        server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
      );
    const connect = async (): Promise<Socket> => {
      const client = createConnection({ port, host: '127.0.0.1', allowHalfOpen: true });
      client.on('error', () => {});
      clients.push(client);
      await once(client, 'connect');
      return client;
    };
    // The first goes through net.Server unless this thread adopted a handle already (the tests
    // above): that shows the owner symbol and read callback a taken handle needs.
    const first = await connect();
    await until(() => viaServer.length + taken.length === 1, 'the first connection');
    const firstPeer = viaServer[0] ?? taken[0];
    // The next is taken before any net.Socket.
    const before = taken.length;
    const second = await connect();
    await until(() => taken.length === before + 1, 'the second connection, taken');
    const secondPeer = taken[before];
    assert.equal(viaServer.length, 1 - before);
    assert.deepEqual(peers.at(-1), { address: '127.0.0.1', port: second.localPort });
    assert.equal(await connections(), 2);
    second.write('hello');
    await until(() => secondPeer.reads.join('') === 'hello', 'its first read');
    secondPeer.channel.write('back');
    assert.equal(((await once(second, 'data')) as [Buffer])[0].toString(), 'back');
    // A refusal is written on a net.Socket made for it, counted while it lasts.
    refuse = true;
    const seen = peers.length;
    const third = await connect();
    assert.equal((await collect(third)).toString(), 'refused\n');
    third.end();
    assert.equal(peers.length, seen + 1, 'the third was taken too');
    // One that take() gives back goes through net.Server as always.
    refuse = false;
    giveBack = true;
    const viaBefore = viaServer.length;
    const fourth = await connect();
    await until(() => viaServer.length === viaBefore + 1, 'the fourth, through net.Server');
    const fourthPeer = viaServer[viaBefore];
    fourth.end();
    await fourthPeer.ended;
    fourthPeer.channel.end();
    await fourthPeer.closed;
    // server.close() waits for the taken connection as for the first.
    let serverClosed = false;
    server.close(() => {
      serverClosed = true;
    });
    first.end();
    await firstPeer.ended;
    firstPeer.channel.end();
    await firstPeer.closed;
    await sleep(50);
    assert.equal(serverClosed, false, 'the taken connection is still open');
    second.end();
    await secondPeer.ended;
    secondPeer.channel.end();
    await secondPeer.closed;
    await until(() => serverClosed, 'server.close() to complete');
    assert.equal(await connections(), 0);
  });

  test('a write the kernel cannot take waits in order; its callback runs once it is sent; FIN follows it', async () => {
    const { server, connect } = await handleServer();
    const { client, peer } = await connect();
    client.pause();
    const big = Buffer.alloc(16 * 1024 * 1024, 'a');
    let bigWritten = false;
    let smallWritten = false;
    assert.equal(
      peer.channel.write(big, () => {
        bigWritten = true;
      }),
      false,
      'a write the kernel could not take at once says so',
    );
    assert.ok(peer.channel.writableLength > 0, 'what waits is counted');
    peer.channel.write('tail, in order', () => {
      smallWritten = true;
    });
    peer.channel.end();
    await sleep(100);
    assert.equal(bigWritten, false, 'not sent while the client does not read');
    const received = collect(client);
    client.resume();
    const all = await received;
    assert.equal(all.length, big.length + 'tail, in order'.length);
    assert.equal(all.subarray(big.length).toString(), 'tail, in order');
    assert.ok(all.subarray(0, big.length).every((b) => b === 0x61));
    await until(() => bigWritten && smallWritten, 'both callbacks');
    assert.equal(peer.channel.writableLength, 0);
    assert.equal(peer.channel.write('after end'), false, 'nothing is written after end()');
    client.end();
    await peer.closed;
    server.close();
  });

  test('cork()/uncork(): strings and buffers leave in one write, in order, UTF-8', async () => {
    const { server, connect } = await handleServer();
    const { client, peer } = await connect();
    const received = collect(client);
    const written: string[] = [];
    peer.channel.cork();
    peer.channel.write('héllo ', () => written.push('first'));
    peer.channel.write(Buffer.from('wörld '));
    peer.channel.write('✓', () => written.push('last'));
    assert.equal(peer.channel.writableLength, Buffer.byteLength('héllo wörld ✓'));
    peer.channel.uncork();
    peer.channel.uncork(); // a second uncork does nothing
    peer.channel.end();
    assert.equal((await received).toString(), 'héllo wörld ✓');
    await until(() => written.length === 2, 'every callback');
    await sleep(20);
    assert.deepEqual(written, ['first', 'last'], 'each callback once, in order');
    client.end();
    await peer.closed;
    server.close();
  });

  test('a corked callback that destroys the channel stops the ones after it', async () => {
    const { server, connect } = await handleServer();
    const { client, peer } = await connect();
    const ran: string[] = [];
    peer.channel.cork();
    peer.channel.write('a', () => {
      ran.push('first');
      peer.channel.destroy();
    });
    peer.channel.write('b', () => ran.push('second'));
    peer.channel.uncork();
    await peer.closed;
    await sleep(20);
    assert.deepEqual(ran, ['first']);
    client.destroy();
    server.close();
  });

  test('a write made inside another write call (an async_hooks init hook) gets its own request', async () => {
    const { server, connect } = await handleServer();
    const a = await connect();
    const b = await connect();
    a.client.pause();
    let bWritten = 0;
    let inHook = false;
    const hook = createHook({
      init(_id, type) {
        if (type !== 'WRITEWRAP' || inHook) return;
        inHook = true;
        b.peer.channel.write('from the hook', () => bWritten++);
      },
    }).enable();
    try {
      // Queued: C++ binds A's request and runs the hook while the write call is under way.
      a.peer.channel.write(Buffer.alloc(16 * 1024 * 1024));
    } finally {
      hook.disable();
    }
    assert.equal(inHook, true, 'the hook ran');
    const [data] = (await once(b.client, 'data')) as [Buffer];
    assert.equal(data.toString(), 'from the hook');
    await until(() => bWritten === 1, "B's callback");
    assert.equal(b.peer.channel.writableLength, 0);
    a.client.destroy();
    b.client.destroy();
    await a.peer.closed; // its queued write fails: ECONNRESET
    await b.peer.ended;
    b.peer.channel.destroy();
    await b.peer.closed;
    server.close();
  });

  test('pause() stops the reads and resume() brings them back', async () => {
    const { server, connect } = await handleServer();
    const { client, peer } = await connect();
    peer.channel.pause();
    client.write('while paused');
    await sleep(150);
    assert.deepEqual(peer.reads, [], 'nothing is read while paused');
    peer.channel.resume();
    await until(() => peer.reads.join('') === 'while paused', 'the read after resume()');
    client.resetAndDestroy();
    await peer.closed;
    server.close();
  });

  test('server.close() completes only once the adopted connection has closed', async () => {
    await closeWaitsForAdopted(await handleServer(), (peer) => peer.channel.end());
  });

  test('a reset is logged (ECONNRESET) and closes; the count goes back to zero', async () => {
    const { server, connect, connections } = await handleServer();
    const { client, peer } = await connect();
    client.write('x');
    await until(() => peer.reads.length === 1, 'the first read');
    client.resetAndDestroy();
    await peer.closed;
    assert.deepEqual(peer.debug, ['Client error: test-peer: ECONNRESET']);
    assert.equal(peer.channel.destroyed, true);
    assert.equal(await connections(), 0);
    server.close();
  });

  test('destroy() with writes queued: closed at once, their callbacks never run', async () => {
    const { server, connect, connections } = await handleServer();
    const { client, peer } = await connect();
    client.pause();
    let called = false;
    peer.channel.write('sent at once', () => {
      called = true;
    });
    peer.channel.write(Buffer.alloc(16 * 1024 * 1024), () => {
      called = true;
    });
    assert.ok(peer.channel.writableLength > 0);
    peer.channel.destroy();
    peer.channel.destroy(); // twice is once
    assert.equal(await connections(), 0, 'given back to net.Server at once, as net.Socket does');
    assert.equal(peer.channel.writableLength, 0);
    assert.equal(peer.channel.localAddress, undefined, 'a closed handle has no address');
    await peer.closed;
    const clientEnded = once(client, 'end');
    client.resume();
    await clientEnded;
    client.destroy();
    await sleep(50);
    assert.equal(called, false, 'no callback runs after destroy(), not even a finished write’s');
    server.close();
  });
});

describe('a server on each read path', () => {
  const servers: ServerProcess[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.kill()));
  });

  for (const path of ['handle', 'onread', 'stream']) {
    test(`TCP_READ_PATH=${path}: pipelined requests, a reply larger than the socket buffer, FIN after the replies`, async () => {
      const server = await startServer({ env: { THREAD_POOL_SIZE: '1', TCP_READ_PATH: path } });
      servers.push(server);
      assert.doesNotMatch(server.stdout, /unavailable|accepted through net\.Sockets/);
      // A first client, so that on the handle path the next is accepted without a net.Socket.
      const warm = createConnection({ port: server.port, host: '127.0.0.1' });
      warm.end('PING\n');
      assert.equal((await collect(warm)).toString(), 'PONG\n');
      const client = createConnection({ port: server.port, host: '127.0.0.1' });
      await once(client, 'connect');
      const word = 'w'.repeat(60_000);
      const requests = Array.from({ length: 200 }, (_, i) => `ECHO ${word}${i}\n`).join('');
      const done = collect(client);
      client.end(`${requests}PING\n`);
      const lines = (await done).toString().split('\n');
      assert.equal(lines.length, 202);
      for (let i = 0; i < 200; i++) assert.equal(lines[i], `${word}${i}`);
      assert.equal(lines[200], 'PONG');
      assert.equal(lines[201], '');
    });
  }
});
