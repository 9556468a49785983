// BunChannel over a fake Bun socket whose kernel takes only so many bytes per write, as Bun's
// raw sockets do: what is not taken waits in order, leaves on drain, and each write's callback
// runs once its bytes are in the kernel; end() sends FIN only after the queue (or closes, when the
// client has already sent its FIN). The integration suite runs the real thing (npm run test:bun).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BunChannel } from '../../src/transport/bun/channel.ts';
import type { BunSocket } from '../../src/transport/bun/runtime.ts';

class FakeSocket implements BunSocket<BunChannel> {
  data = null as unknown as BunChannel;
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 40000;
  readonly localAddress = '127.0.0.1';
  readonly localPort = 8080;
  /** What the kernel took, in order. */
  readonly wire: Buffer[] = [];
  /** Bytes the kernel takes per write() from now on. */
  room = Infinity;
  readonly calls: string[] = [];
  write(data: string | Uint8Array): number {
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    const n = Math.min(bytes.length, this.room);
    this.wire.push(bytes.subarray(0, n));
    return n;
  }
  shutdown(): void {
    this.calls.push('shutdown');
  }
  end(): void {
    this.calls.push('end');
  }
  terminate(): void {
    this.calls.push('terminate');
  }
  pause(): void {
    this.calls.push('pause');
  }
  resume(): void {
    this.calls.push('resume');
  }
  setNoDelay(): boolean {
    return true;
  }
  sent(): string {
    return Buffer.concat(this.wire).toString();
  }
}

const tick = () => new Promise<void>((r) => queueMicrotask(r));

describe('BunChannel', () => {
  test('a write the kernel takes whole: its callback runs later, nothing waits', async () => {
    const socket = new FakeSocket();
    const channel = new BunChannel(socket);
    let written = false;
    assert.equal(
      channel.write('PONG\n', () => (written = true)),
      true,
    );
    assert.equal(written, false, 'not inside write(): the caller may be sending more');
    await tick();
    assert.equal(written, true);
    assert.equal(channel.writableLength, 0);
    assert.equal(socket.sent(), 'PONG\n');
    assert.equal(channel.readableLength, 0);
    assert.equal(`${channel.remoteAddress}:${channel.remotePort}`, '127.0.0.1:40000');
    assert.equal(`${channel.localAddress}:${channel.localPort}`, '127.0.0.1:8080');
  });

  test('what the kernel does not take waits, in order, and leaves on drain with its callbacks', () => {
    const socket = new FakeSocket();
    const channel = new BunChannel(socket);
    const done: string[] = [];
    socket.room = 3;
    channel.write('héllo', () => done.push('first')); // 6 bytes: 3 taken
    channel.write(Buffer.from('world'), () => done.push('second'));
    assert.equal(channel.writableLength, 3 + 5);
    socket.room = 4; // per write: the rest of the first (3), then 4 of the second
    channel.onDrain();
    assert.equal(channel.writableLength, 1);
    assert.deepEqual(done, ['first']);
    socket.room = Infinity;
    channel.onDrain();
    assert.equal(channel.writableLength, 0);
    assert.deepEqual(done, ['first', 'second']);
    assert.equal(socket.sent(), 'héllo' + 'world');
  });

  test('end() sends FIN once the queue is empty; after the client FIN it closes instead', async () => {
    const socket = new FakeSocket();
    const channel = new BunChannel(socket);
    socket.room = 2;
    channel.write('bye\n');
    let ended = false;
    channel.end(undefined, () => (ended = true));
    assert.deepEqual(socket.calls, [], 'not before the queued bytes');
    assert.equal(channel.write('late'), false, 'nothing is written after end()');
    socket.room = Infinity;
    channel.onDrain();
    assert.deepEqual(socket.calls, ['shutdown']);
    await tick();
    assert.equal(ended, true);
    assert.equal(socket.sent(), 'bye\n');

    const other = new FakeSocket();
    const closing = new BunChannel(other);
    closing.peerEnded = true;
    closing.end('refused\n');
    assert.deepEqual(other.calls, ['end']);
    assert.equal(other.sent(), 'refused\n');
  });

  test('pause, resume and destroy reach the socket; nothing after destroy', () => {
    const socket = new FakeSocket();
    const channel = new BunChannel(socket);
    channel.cork();
    channel.uncork();
    channel.pause();
    channel.resume();
    channel.destroy();
    channel.destroy();
    channel.pause();
    assert.equal(channel.write('x'), false);
    assert.deepEqual(socket.calls, ['pause', 'resume', 'terminate']);
  });
});
