// A Bun socket as a Connection's Channel. Bun's raw sockets keep nothing they could not write
// (write() returns the bytes the kernel took), so the rest waits here, in order, for 'drain';
// writableLength is what waits, and a write's callback runs once its bytes are in the kernel, as
// on a net.Socket. Until a Connection owns it, the channel is also the small part of a net.Socket
// that admission and the PROXY header reader use ('data', 'close', end(data, cb), destroy()).
import { EventEmitter } from 'node:events';
import type { Connection } from '../../worker/connection.ts';
import type { BunSocket } from './runtime.ts';

interface Pending {
  buf: Buffer;
  onWritten: (() => void) | undefined;
}

export class BunChannel extends EventEmitter {
  readonly socket: BunSocket<BunChannel>;
  /** Set once admitted: bytes and events go straight to it, not through emit(). */
  conn: Connection | null = null;
  private readonly pending: Pending[] = [];
  private queued = 0;
  /** end() was called: FIN once the queue is empty. */
  private ending = false;
  private onEnded: (() => void) | undefined;
  /** The client sent FIN. */
  peerEnded = false;
  closed = false;

  constructor(socket: BunSocket<BunChannel>) {
    super();
    this.socket = socket;
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress;
  }
  get remotePort(): number {
    return this.socket.remotePort;
  }
  get localAddress(): string {
    return this.socket.localAddress;
  }
  get localPort(): number {
    return this.socket.localPort;
  }
  get writableLength(): number {
    return this.queued;
  }
  /** Bun hands over every byte it reads: nothing waits unread here. */
  get readableLength(): number {
    return 0;
  }

  write(data: string | Buffer, onWritten?: () => void): boolean {
    if (this.closed || this.ending) return false;
    if (this.queued === 0) {
      const written = this.socket.write(data);
      const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      if (written >= length) {
        // Later, as net.Socket does: the caller may be in the middle of sending more.
        if (onWritten !== undefined) queueMicrotask(onWritten);
        return true;
      }
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      this.enqueue(bytes.subarray(Math.max(written, 0)), onWritten);
      return false;
    }
    this.enqueue(typeof data === 'string' ? Buffer.from(data) : data, onWritten);
    return false;
  }

  private enqueue(buf: Buffer, onWritten: (() => void) | undefined): void {
    this.pending.push({ buf, onWritten });
    this.queued += buf.length;
  }

  /** The kernel has room again: write what waits, in order. */
  onDrain(): void {
    const pending = this.pending;
    while (pending.length > 0 && !this.closed) {
      const head = pending[0];
      const written = Math.max(this.socket.write(head.buf), 0);
      if (written < head.buf.length) {
        head.buf = head.buf.subarray(written);
        this.queued -= written;
        return;
      }
      this.queued -= head.buf.length;
      pending.shift();
      head.onWritten?.();
    }
    if (this.ending && pending.length === 0) this.finish();
  }

  /** Batches already leave in one write (Output): nothing to gather. */
  cork(): void {}
  uncork(): void {}

  pause(): this {
    if (!this.closed) this.socket.pause();
    return this;
  }

  resume(): this {
    if (!this.closed) this.socket.resume();
    return this;
  }

  /** FIN after what was written (net.Socket's end(data, callback) for admission's refusals). */
  end(data?: string | Buffer, onEnded?: () => void): this {
    if (data !== undefined) this.write(data);
    if (this.ending || this.closed) return this;
    this.ending = true;
    this.onEnded = onEnded;
    if (this.queued === 0) this.finish();
    return this;
  }

  private finish(): void {
    // Both sides done: close. Otherwise half-close and keep reading (the lingering close).
    if (this.peerEnded) this.socket.end();
    else this.socket.shutdown();
    if (this.onEnded !== undefined) queueMicrotask(this.onEnded);
  }

  destroy(): this {
    if (!this.closed) {
      this.closed = true;
      this.socket.terminate();
    }
    return this;
  }
}
