// RESP, the Redis protocol: requests are arrays of bulk strings
// ("*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"),
// replies are RESP2, or RESP3 after HELLO 3. No sockets here: bytes go in through push(), requests
// come out of next(), and every length is checked against its limit before anything is buffered.
// As in Redis, each request picks its own form: one that does not start with "*" is an inline
// request (a line of words, see inline.ts), and blank lines are skipped.
import type { CommandSpec } from '../commands/registry.ts';
import { protocolError, ReplyError, unknownRespCommand } from '../errors.ts';
import { splitInline } from './inline.ts';
import { copy } from './line.ts';
import { Output, type ReplySink } from './output.ts';
import {
  type DecodeResult,
  FAILED,
  NEED_MORE,
  type Protocol,
  REQUEST,
  type RequestDecoder,
  type RequestLimits,
} from './protocol.ts';
import {
  Double,
  Forms,
  Preencoded,
  Push,
  type Reply,
  Replies,
  RespMap,
  RespSet,
  Status,
  Verbatim,
} from './reply.ts';

const CR = 0x0d;
const LF = 0x0a;

/** maxLine bounds a "*<count>" or "$<length>" line and an inline request. */
export type RespLimits = RequestLimits;

const NO_ARGS: Buffer[] = [];
const EMPTY = Buffer.alloc(0);

const State = { ArrayHeader: 0, BulkHeader: 1, BulkBody: 2 } as const;
type State = (typeof State)[keyof typeof State];

/** Parses a decimal integer line; NaN unless it is digits with an optional leading "-". */
function parseInteger(buf: Buffer, start: number, end: number): number {
  if (start >= end || end - start > 18) return NaN;
  let i = start;
  const negative = buf[i] === 0x2d;
  if (negative && ++i === end) return NaN;
  let n = 0;
  for (; i < end; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

function show(byte: number): string {
  return byte >= 0x20 && byte < 0x7f
    ? String.fromCharCode(byte)
    : `\\x${byte.toString(16).padStart(2, '0')}`;
}

export class RespDecoder implements RequestDecoder {
  private readonly limits: RespLimits;
  /** After request() returned REQUEST: its arguments are argv[argsFrom…] (1: the name first). */
  private argv: Buffer[] = NO_ARGS;
  private argsFrom = 0;
  nameBuf: Buffer = EMPTY;
  nameStart = 0;
  nameEnd = 0;
  failure: ReplyError = protocolError('');
  copyArgs = false;
  private chunks: Buffer[] = [];
  /** Read position in chunks[0]. */
  private pos = 0;
  /** Bytes held in chunks from pos on. */
  private held = 0;
  private state: State = State.ArrayHeader;
  private argc = 0;
  private argsSoFar: Buffer[] = [];
  private bulkLen = 0;
  private requestBytes = 0;
  private failed = false;
  private lineBuf: Buffer = Buffer.alloc(0);
  private lineStart = 0;
  private lineEnd = 0;
  /** While a line is incomplete: how many held chunks are known to have no "\n" (searched once). */
  private lfFree = 0;

  constructor(limits: RespLimits) {
    this.limits = limits;
  }

  push(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.held += chunk.length;
  }

  /** RESP frames itself: a message boundary changes nothing. */
  boundary(): void {}

  request(): DecodeResult {
    if (this.state === State.ArrayHeader && !this.failed && this.whole()) return REQUEST;
    const r = this.next();
    if (r === null) return NEED_MORE;
    if (r instanceof ReplyError) {
      this.failure = r;
      return FAILED;
    }
    this.argv = r;
    this.argsFrom = 1;
    this.nameBuf = r[0];
    this.nameStart = 0;
    this.nameEnd = r[0].length;
    return REQUEST;
  }

  args(_spec: CommandSpec): Buffer[] {
    const argv = this.argv;
    const from = this.argsFrom;
    if (argv.length === from) return NO_ARGS;
    if (!this.copyArgs) return from === 0 ? argv : argv.slice(from);
    const args: Buffer[] = new Array(argv.length - from);
    for (let i = from; i < argv.length; i++) args[i - from] = copy(argv[i]);
    return args;
  }

  retain(shared: ArrayBufferLike): void {
    const chunks = this.chunks;
    for (let i = chunks.length - 1; i >= 0 && chunks[i].buffer === shared; i--) {
      chunks[i] = copy(i === 0 ? chunks[0].subarray(this.pos) : chunks[i]);
      if (i === 0) this.pos = 0;
    }
    const held = this.argsSoFar;
    for (let i = held.length - 1; i >= 0 && held[i].buffer === shared; i--) held[i] = copy(held[i]);
  }

  unknown(): ReplyError {
    return unknownRespCommand(
      this.nameBuf.subarray(this.nameStart, this.nameEnd),
      this.argv.slice(this.argsFrom),
    );
  }

  /** True while part of a request is held. */
  get pending(): boolean {
    return this.held > 0 || this.state !== State.ArrayHeader;
  }

  /**
   * The next request's arguments (command name first), `null` when more bytes are needed, or a
   * protocol error, after which the decoder accepts nothing more.
   */
  next(): Buffer[] | ReplyError | null {
    while (!this.failed) {
      if (this.state === State.BulkBody) {
        if (this.held < this.bulkLen + 2) return null;
        const body = this.take(this.bulkLen);
        const cr = this.byteAt(0);
        const lf = this.byteAt(1);
        if (cr !== CR || lf !== LF) {
          return this.fail(`expected CRLF after bulk string, got '${show(cr !== CR ? cr : lf)}'`);
        }
        this.skip(2);
        this.argsSoFar.push(body);
        if (this.argsSoFar.length < this.argc) {
          this.state = State.BulkHeader;
          continue;
        }
        const args = this.argsSoFar;
        this.argsSoFar = [];
        this.state = State.ArrayHeader;
        return args;
      }

      if (!this.line()) {
        // Every held byte belongs to this line; one more than the limit may be its "\r".
        if (this.held > this.limits.maxLine + 1) {
          return this.fail(
            this.state !== State.ArrayHeader
              ? 'too big bulk count string'
              : this.byteAt(0) === 0x2a
                ? 'too big mbulk count string'
                : 'too big inline request',
          );
        }
        return null;
      }
      const buf = this.lineBuf;
      const start = this.lineStart;
      const end = this.lineEnd;
      if (this.state === State.ArrayHeader) {
        if (buf[start] !== 0x2a) {
          if (end - start > this.limits.maxLine) return this.fail('too big inline request');
          const words = splitInline(buf, start, end);
          if (words === null) return this.fail('unbalanced quotes in request');
          if (words.length > this.limits.maxArgs) return this.fail('invalid multibulk length');
          if (words.length === 0) continue; // a blank line, skipped as in Redis
          return words;
        }
        const count = parseInteger(buf, start + 1, end);
        if (Number.isNaN(count) || count > this.limits.maxArgs || count < -1)
          return this.fail('invalid multibulk length');
        if (count <= 0) continue; // "*0" and "*-1" (empty and null arrays) are no-ops, as in Redis
        this.argc = count;
        this.requestBytes = 0;
        this.state = State.BulkHeader;
      } else {
        if (buf[start] !== 0x24) return this.fail(`expected '$', got '${show(buf[start] ?? LF)}'`);
        const len = parseInteger(buf, start + 1, end);
        if (Number.isNaN(len) || len < 0 || len > this.limits.maxBulk)
          return this.fail('invalid bulk length');
        this.requestBytes += len;
        if (this.requestBytes > this.limits.maxRequest)
          return this.fail('request larger than MAX_REQUEST_BYTES');
        this.bulkLen = len;
        this.state = State.BulkBody;
      }
    }
    return null;
  }

  /**
   * The fast path: a small request that lies whole in the current chunk, CRLFs and all, is read
   * with plain index arithmetic, its name left where it lies (nameBuf, nameStart, nameEnd) and
   * its arguments as views. Anything else (split, large, malformed) returns false and goes
   * through the state machine above, which reads it from the same position and finds any error.
   */
  private whole(): boolean {
    const buf = this.chunks[0];
    if (buf === undefined) return false;
    const n = buf.length;
    const from = this.pos;
    if (buf[from] !== 0x2a) return false;
    let i = from + 1;
    let count = 0;
    while (i < n && i - from <= 3 && buf[i] >= 0x30 && buf[i] <= 0x39)
      count = count * 10 + buf[i++] - 0x30;
    if (
      i === from + 1 ||
      i + 1 >= n ||
      buf[i] !== CR ||
      buf[i + 1] !== LF ||
      count === 0 ||
      count > this.limits.maxArgs
    )
      return false;
    i += 2;
    const args: Buffer[] = count === 1 ? NO_ARGS : new Array(count - 1);
    let nameStart = 0;
    let nameEnd = 0;
    let total = 0;
    for (let a = 0; a < count; a++) {
      if (i >= n || buf[i] !== 0x24) return false;
      const header = i;
      let len = 0;
      i++;
      while (i < n && i - header <= 9 && buf[i] >= 0x30 && buf[i] <= 0x39)
        len = len * 10 + buf[i++] - 0x30;
      if (
        i === header + 1 ||
        i + 1 >= n ||
        buf[i] !== CR ||
        buf[i + 1] !== LF ||
        len > this.limits.maxBulk
      )
        return false;
      const start = i + 2;
      const end = start + len;
      if (end + 1 >= n || buf[end] !== CR || buf[end + 1] !== LF) return false;
      total += len;
      if (total > this.limits.maxRequest) return false;
      if (a === 0) {
        nameStart = start;
        nameEnd = end;
      } else args[a - 1] = buf.subarray(start, end);
      i = end + 2;
    }
    this.skip(i - from);
    this.argv = args;
    this.argsFrom = 0;
    this.nameBuf = buf;
    this.nameStart = nameStart;
    this.nameEnd = nameEnd;
    return true;
  }

  /**
   * Reads a line into lineBuf[lineStart, lineEnd) without its CRLF; false if its "\n" has not
   * arrived.
   */
  private line(): boolean {
    const chunks = this.chunks;
    const first = chunks[0];
    if (first === undefined) return false;
    let nl = this.lfFree === 0 ? first.indexOf(LF, this.pos) : -1;
    let buf: Buffer;
    let start: number;
    if (nl !== -1) {
      buf = first;
      start = this.pos;
    } else {
      // The line spans chunks. Each chunk is searched once however slowly the line trickles in,
      // and only the chunks up to its "\n" are joined (the line is bounded by maxLine).
      let k = Math.max(1, this.lfFree);
      while (k < chunks.length && chunks[k].indexOf(LF) === -1) k++;
      if (k >= chunks.length) {
        this.lfFree = chunks.length;
        return false;
      }
      this.lfFree = 0;
      const joined = Buffer.concat([first.subarray(this.pos), ...chunks.slice(1, k + 1)]);
      chunks.splice(0, k + 1, joined);
      this.pos = 0;
      nl = joined.indexOf(LF);
      buf = joined;
      start = 0;
    }
    this.lineBuf = buf;
    this.lineStart = start;
    this.lineEnd = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
    this.skip(nl + 1 - start);
    return true;
  }

  private byteAt(offset: number): number {
    let pos = this.pos + offset;
    for (const chunk of this.chunks) {
      if (pos < chunk.length) return chunk[pos];
      pos -= chunk.length;
    }
    return -1;
  }

  /** Removes `n` held bytes and returns them, without copying when they lie in one chunk. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.pos >= n) {
      const out = first.subarray(this.pos, this.pos + n);
      this.skip(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0];
      const count = Math.min(n - filled, chunk.length - this.pos);
      chunk.copy(out, filled, this.pos, this.pos + count);
      filled += count;
      this.skip(count);
    }
    return out;
  }

  private skip(n: number): void {
    this.held -= n;
    this.pos += n;
    while (this.chunks.length > 0 && this.pos >= this.chunks[0].length) {
      this.pos -= this.chunks[0].length;
      this.chunks.shift();
    }
  }

  private fail(what: string): ReplyError {
    this.failed = true;
    this.chunks = [];
    this.argsSoFar = [];
    this.held = 0;
    this.lfFree = 0;
    this.state = State.ArrayHeader;
    return protocolError(what);
  }
}

const CRLF = '\r\n';

function bulkText(s: string, out: ReplySink): void {
  out.text(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
}

function doubleText(v: number): string {
  return Number.isNaN(v) ? 'nan' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : String(v);
}

/**
 * Writes one reply in RESP2 or RESP3. A string is a simple string ("+OK") at the top level and a
 * bulk string inside aggregates, as Redis sends them (redis-cli relies on it for COMMAND DOCS).
 */
export function writeResp(r: Reply, version: 2 | 3, out: ReplySink, nested = false): void {
  if (r instanceof Preencoded) {
    if (nested) bulkText(r.text, out);
    else out.text(r.resp);
  } else if (typeof r === 'string') {
    if (nested || r.includes('\r') || r.includes('\n')) bulkText(r, out);
    else out.text(`+${r}\r\n`);
  } else if (r instanceof Buffer) {
    out.text(`$${r.length}\r\n`);
    if (r.length > 0) out.bytes(r);
    out.text(CRLF);
  } else if (typeof r === 'number') {
    if (Number.isSafeInteger(r)) out.text(`:${r}\r\n`);
    else writeResp(new Double(r), version, out);
  } else if (typeof r === 'boolean') {
    out.text(version === 3 ? (r ? '#t\r\n' : '#f\r\n') : r ? ':1\r\n' : ':0\r\n');
  } else if (r === null) {
    out.text(version === 3 ? '_\r\n' : '$-1\r\n');
  } else if (r instanceof ReplyError) {
    out.text(`-${r.resp.replace(/[\r\n]+/g, ' ')}\r\n`);
  } else if (r instanceof RespMap) {
    out.text(version === 3 ? `%${r.entries.length}\r\n` : `*${r.entries.length * 2}\r\n`);
    for (const [k, v] of r.entries) {
      writeResp(k, version, out, true);
      writeResp(v, version, out, true);
    }
  } else if (r instanceof RespSet) {
    writeAggregate(version === 3 ? '~' : '*', r.items, version, out);
  } else if (r instanceof Replies) {
    out.text(`*${r.items.length}\r\n`);
    for (const item of r.items) writeResp(item, version, out);
  } else if (r instanceof Push) {
    writeAggregate(version === 3 ? '>' : '*', r.items, version, out);
  } else if (r instanceof Status) {
    if (/[\r\n]/.test(r.text)) bulkText(r.text, out);
    else out.text(`+${r.text}\r\n`);
  } else if (r instanceof Verbatim) {
    if (version === 3) out.text(`=${Buffer.byteLength(r.text) + 4}\r\n${r.format}:${r.text}\r\n`);
    else bulkText(r.text, out);
  } else if (r instanceof Double) {
    if (version === 3) out.text(`,${doubleText(r.value)}\r\n`);
    else bulkText(doubleText(r.value), out);
  } else if (r instanceof Forms) {
    writeResp(r.data, version, out, nested);
  } else {
    writeAggregate('*', r as readonly Reply[], version, out);
  }
}

function writeAggregate(
  type: string,
  items: readonly Reply[],
  version: 2 | 3,
  out: ReplySink,
): void {
  out.text(`${type}${items.length}\r\n`);
  for (const item of items) writeResp(item, version, out, true);
}

/** The bytes of one reply, as a string (text only) or a Buffer. */
export function encodeResp(reply: Reply, version: 2 | 3): string | Buffer {
  const out = new Output();
  writeResp(reply, version, out);
  return out.take();
}

/** A request as a client sends it: an array of bulk strings. */
export function encodeRespRequest(args: readonly (string | Buffer)[]): Buffer {
  const out = encodeResp(
    args.map((a) => (typeof a === 'string' ? Buffer.from(a) : a)),
    2,
  );
  return typeof out === 'string' ? Buffer.from(out) : out;
}

/** RESP: every Redis client's first byte is "*", the start of an array. */
export const resp: Protocol = {
  name: 'resp',
  claims: (firstByte) => firstByte === 0x2a,
  decoder: (limits) => new RespDecoder(limits),
  write: (reply, state, out) => writeResp(reply, state.respVersion, out),
  encode: (reply) => encodeResp(reply, 2),
  offers: () => true,
};
