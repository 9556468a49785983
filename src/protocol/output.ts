// Where encoders put reply bytes. A connection's replies to one batch of requests are gathered
// here and leave in a single write: one string while every reply is text (the common case: no
// Buffer is allocated), one Buffer when bytes are involved, or, for large payloads, a corked run of
// writes so big buffers are never copied.

export interface ReplySink {
  /** Text, sent as UTF-8 (replies are ASCII except user text). */
  text(s: string): void;
  /** Bytes sent exactly as they are. */
  bytes(b: Buffer): void;
}

/** Past this many bytes in one batch, buffers are written as they are instead of being copied. */
const COPY_LIMIT = 64 * 1024;

/** Where a batch goes: a net.Socket, or a connection's Channel. */
export interface WriteTarget {
  write(data: string | Buffer, onWritten?: () => void): unknown;
  cork(): void;
  uncork(): void;
}

export class Output implements ReplySink {
  private str = '';
  private parts: (string | Buffer)[] | null = null;
  /** Bytes gathered (counting a string's length, close enough for limits). */
  size = 0;

  text(s: string): void {
    if (this.parts === null) this.str += s;
    else this.parts.push(s);
    this.size += s.length;
  }

  bytes(b: Buffer): void {
    if (this.parts === null) {
      this.parts = this.str === '' ? [] : [this.str];
      this.str = '';
    }
    this.parts.push(b);
    this.size += b.length;
  }

  get empty(): boolean {
    return this.size === 0;
  }

  /** Sends what was gathered as one write (the callback runs once it is handed to the kernel). */
  flushTo(socket: WriteTarget, onWritten?: () => void): void {
    const parts = this.parts;
    if (parts === null) {
      socket.write(this.str, onWritten);
    } else if (this.size <= COPY_LIMIT) {
      socket.write(concat(parts, this.size), onWritten);
    } else {
      socket.cork();
      for (let i = 0; i < parts.length; i++)
        socket.write(parts[i], i === parts.length - 1 ? onWritten : undefined);
      socket.uncork();
    }
    this.str = '';
    this.parts = null;
    this.size = 0;
  }

  /** What was gathered, as one string (all text) or one Buffer; for tests and one-off encodes. */
  take(): string | Buffer {
    const out = this.parts === null ? this.str : concat(this.parts, this.size);
    this.str = '';
    this.parts = null;
    this.size = 0;
    return out;
  }
}

function concat(parts: (string | Buffer)[], sizeHint: number): Buffer {
  return Buffer.concat(
    parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)),
    parts.some((p) => typeof p === 'string') ? undefined : sizeHint,
  );
}
