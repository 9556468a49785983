// The client's RESP2/RESP3 reply decoder: bytes in, values out, no socket. Aggregates are built
// on a stack, so a reply split anywhere resumes where it stopped instead of being re-read: a
// large reply arriving in many chunks costs linear time.

/** An error reply from the server: `code` is its first word ("ERR", "NOTFOUND", "WRONGPASS"). */
export class ServerError extends Error {
  readonly code: string;
  constructor(text: string) {
    const space = text.indexOf(' ');
    super(space === -1 ? text : text.slice(space + 1));
    this.name = 'ServerError';
    this.code = space === -1 ? text : text.slice(0, space);
  }
}

/** A RESP3 out-of-band message (pub/sub); delivered apart from replies. */
export class PushMessage {
  readonly items: unknown[];
  constructor(items: unknown[]) {
    this.items = items;
  }
}

export interface DecodeOptions {
  /** Bulk strings as Buffers (binary data) instead of UTF-8 strings. */
  buffers: boolean;
  /** Largest bulk string accepted, in bytes: a server that claims more is a protocol error. */
  maxBulk: number;
}

interface Frame {
  kind: 'array' | 'set' | 'map' | 'push' | 'attribute';
  left: number;
  items: unknown[];
}

const CR = 0x0d;
const LF = 0x0a;
/** What next() returns when the bytes so far do not finish a reply. */
export const INCOMPLETE: unique symbol = Symbol('incomplete');
const NO_VALUE = INCOMPLETE;

export class ReplyDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Chunks held back while a bulk string of known length is still incomplete (no re-copying). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Bytes from `pos` the incomplete bulk string needs; 0 when not waiting for one. */
  private needed = 0;
  private readonly stack: Frame[] = [];
  private readonly options: DecodeOptions;

  constructor(options: Partial<DecodeOptions> = {}) {
    this.options = { buffers: false, maxBulk: 512 * 1024 * 1024, ...options };
  }

  push(chunk: Buffer): void {
    if (this.needed > 0) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.buf.length - this.pos + this.heldBytes < this.needed) return;
      chunk = Buffer.concat(this.held);
      this.held = [];
      this.heldBytes = 0;
      this.needed = 0;
    }
    this.buf =
      this.pos < this.buf.length ? Buffer.concat([this.buf.subarray(this.pos), chunk]) : chunk;
    this.pos = 0;
  }

  /**
   * The next complete top-level value (ServerError and PushMessage included), or NO_VALUE when
   * more bytes are needed. Throws on bytes that are not RESP (the connection must then close).
   */
  next(): unknown {
    for (;;) {
      const value = this.scalarOrOpen();
      if (value === NO_VALUE) return INCOMPLETE;
      if (value === OPENED) {
        // An empty aggregate is complete at once.
        const top = this.stack[this.stack.length - 1];
        if (top.left > 0) continue;
        const done = this.close();
        if (done !== OPENED) return done;
        continue;
      }
      const done = this.add(value);
      if (done !== OPENED) return done;
    }
  }

  /**
   * Puts a finished value into the open aggregate; returns a finished top-level value or OPENED.
   */
  private add(value: unknown): unknown {
    let v = value;
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (top === undefined) return v;
      top.items.push(v);
      top.left--;
      if (top.left > 0) return OPENED;
      v = this.finish(this.stack.pop()!);
      if (v === SKIP) return OPENED;
    }
  }

  private close(): unknown {
    const v = this.finish(this.stack.pop()!);
    if (v === SKIP) return OPENED;
    return this.add(v);
  }

  private finish(frame: Frame): unknown {
    switch (frame.kind) {
      case 'array':
      case 'set':
        return frame.items;
      case 'push':
        return new PushMessage(frame.items);
      case 'attribute':
        return SKIP; // metadata about the next reply: not needed, dropped
      case 'map': {
        const obj: Record<string, unknown> = {};
        for (let i = 0; i < frame.items.length; i += 2)
          obj[String(frame.items[i])] = frame.items[i + 1];
        return obj;
      }
    }
  }

  /** Reads one scalar (returned), or opens an aggregate (OPENED), or NO_VALUE. */
  private scalarOrOpen(): unknown {
    const buf = this.buf;
    const start = this.pos;
    if (start >= buf.length) return NO_VALUE;
    const nl = buf.indexOf(LF, start);
    if (nl === -1) return NO_VALUE;
    if (nl === start || buf[nl - 1] !== CR) throw new Error('RESP: a line without CRLF');
    const line = buf.toString('latin1', start + 1, nl - 1);
    const type = buf[start];
    const after = nl + 1;
    switch (type) {
      case 0x2b: // + simple string
        this.pos = after;
        return buf.toString('utf8', start + 1, nl - 1);
      case 0x2d: // - error
        this.pos = after;
        return new ServerError(buf.toString('utf8', start + 1, nl - 1));
      case 0x3a: // : integer
      case 0x28: {
        // ( big number
        this.pos = after;
        const n = Number(line);
        if (!/^-?[0-9]+$/.test(line)) throw new Error(`RESP: bad integer ${JSON.stringify(line)}`);
        return Number.isSafeInteger(n) ? n : BigInt(line);
      }
      case 0x2c: // , double
        this.pos = after;
        return line === 'inf' ? Infinity : line === '-inf' ? -Infinity : Number(line);
      case 0x23: // # boolean
        this.pos = after;
        return line === 't';
      case 0x5f: // _ null
        this.pos = after;
        return null;
      case 0x24: // $ bulk string
      case 0x3d: // = verbatim
      case 0x21: {
        // ! bulk error
        const len = this.length(line);
        if (len === -1) {
          this.pos = after;
          return null;
        }
        if (len > this.options.maxBulk)
          throw new Error(`RESP: bulk of ${len} bytes is over the limit`);
        const end = after + len;
        if (end + 2 > buf.length) {
          this.needed = end + 2 - start;
          return NO_VALUE;
        }
        this.pos = end + 2;
        if (type === 0x21) return new ServerError(buf.toString('utf8', after, end));
        if (type === 0x3d) return buf.toString('utf8', after + 4, end); // "txt:" prefix
        return this.options.buffers
          ? Buffer.from(buf.subarray(after, end))
          : buf.toString('utf8', after, end);
      }
      case 0x2a: // * array
      case 0x7e: // ~ set
      case 0x25: // % map
      case 0x3e: // > push
      case 0x7c: {
        // | attribute
        const count = this.length(line);
        this.pos = after;
        if (count === -1) return null; // RESP2 null array
        const kind =
          type === 0x2a
            ? 'array'
            : type === 0x7e
              ? 'set'
              : type === 0x25
                ? 'map'
                : type === 0x3e
                  ? 'push'
                  : 'attribute';
        const left = kind === 'map' || kind === 'attribute' ? count * 2 : count;
        this.stack.push({ kind, left, items: [] });
        return OPENED;
      }
      default:
        throw new Error(`RESP: unknown type byte 0x${type.toString(16)}`);
    }
  }

  private length(line: string): number {
    if (!/^-?[0-9]+$/.test(line)) throw new Error(`RESP: bad length ${JSON.stringify(line)}`);
    const n = Number(line);
    if (n < -1) throw new Error(`RESP: bad length ${n}`);
    return n;
  }
}

const OPENED = Symbol('opened');
const SKIP = Symbol('skip');
