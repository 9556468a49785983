// The line protocol: a request runs up to "\n" (a "\r" just before it is dropped) and gets exactly
// one reply line. No sockets here: bytes go in through push() and requests come out of next(), so
// tests can feed any split of the input and the connection can stop pulling under back-pressure.
import type { CommandSpec } from '../commands/registry.ts';
import { ReplyError, replyErrors } from '../errors.ts';
import { Output, type ReplySink } from './output.ts';
import type { DecodeResult, Protocol, RequestDecoder, RequestLimits } from './protocol.ts';
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

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const EMPTY = Buffer.alloc(0);
const NO_ARGS: Buffer[] = [];
const NEWLINE = Buffer.from('\n');

/** step() results. */
export const NEED_MORE = 0;
export const LINE = 1;
export const TOO_LONG = 2;

export class LineDecoder implements RequestDecoder {
  readonly maxLine: number;
  /** After step() returned LINE: the line is buf[start, end), without its terminator. */
  buf: Buffer = EMPTY;
  start = 0;
  end = 0;
  /** Received bytes not yet split into lines; the first is read from `pos`. */
  private chunks: Buffer[] | null = null;
  private pos = 0;
  /** The start of a line whose "\n" has not arrived yet. */
  private partial: Buffer[] | null = null;
  private partialLen = 0;
  private failed = false;
  /** The last byte pushed: at a boundary, whether the last line lacks its "\n". */
  private lastByte = LF;
  /** After request() returned LINE: the name ends at the first space. */
  nameEnd = 0;
  readonly failure = replyErrors.lineTooLong;
  copyArgs = false;

  constructor(maxLine: number) {
    this.maxLine = maxLine;
  }

  push(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    this.lastByte = chunk[chunk.length - 1];
    if (this.chunks === null) this.chunks = [chunk];
    else this.chunks.push(chunk);
  }

  boundary(): void {
    if (this.lastByte !== LF) this.push(NEWLINE);
  }

  get nameBuf(): Buffer {
    return this.buf;
  }
  get nameStart(): number {
    return this.start;
  }

  /** step(), and where the command name ends. */
  request(): DecodeResult {
    const r = this.step();
    if (r === LINE) {
      const line = this.buf;
      const end = this.end;
      let sp = this.start;
      while (sp < end && line[sp] !== SPACE) sp++;
      this.nameEnd = sp;
    }
    return r;
  }

  args(spec: CommandSpec): Buffer[] {
    const sp = this.nameEnd;
    if (sp >= this.end) return NO_ARGS;
    // Everything after the first space, byte for byte (possibly empty: "ECHO " echoes "").
    const rest = this.buf.subarray(sp + 1, this.end);
    if (!spec.restOfLine) return this.copyArgs ? splitWords(rest).map(copy) : splitWords(rest);
    if (rest.length === 0 && spec.minArgs === 0) return NO_ARGS;
    return [this.copyArgs ? copy(rest) : rest];
  }

  retain(shared: ArrayBufferLike): void {
    const chunks = this.chunks;
    if (chunks !== null) {
      for (let i = chunks.length - 1; i >= 0 && chunks[i].buffer === shared; i--) {
        chunks[i] = copy(i === 0 ? chunks[0].subarray(this.pos) : chunks[i]);
        if (i === 0) this.pos = 0;
      }
    }
    const partial = this.partial;
    if (partial !== null) {
      for (let i = partial.length - 1; i >= 0 && partial[i].buffer === shared; i--)
        partial[i] = copy(partial[i]);
    }
  }

  unknown(): ReplyError {
    return replyErrors.unknownCommand;
  }

  /** True while bytes of an unfinished or unread request are held. */
  get pending(): boolean {
    return (this.chunks !== null && this.chunks.length > 0) || this.partialLen > 0;
  }

  /**
   * Finds the next complete line: LINE (see buf/start/end, valid until the next call), NEED_MORE,
   * or TOO_LONG, after which the decoder accepts nothing more. The limit is checked as bytes
   * arrive, so an over-long line is refused before it is ever held whole. Nothing is allocated
   * for a line that lies within one chunk.
   */
  step(): typeof NEED_MORE | typeof LINE | typeof TOO_LONG {
    const chunks = this.chunks;
    while (chunks !== null && chunks.length > 0 && !this.failed) {
      const buf = chunks[0];
      const nl = findLF(buf, this.pos);
      if (nl === -1) {
        const tail = this.pos === 0 ? buf : buf.subarray(this.pos);
        chunks.shift();
        this.pos = 0;
        this.partialLen += tail.length;
        // One byte over the limit is allowed only if it may be the "\r" of a "\r\n".
        const over = this.partialLen - this.maxLine;
        if (over > 1 || (over === 1 && tail[tail.length - 1] !== CR)) return this.fail();
        if (this.partial === null) this.partial = [tail];
        else this.partial.push(tail);
        continue;
      }
      let line = buf;
      let start = this.pos;
      let end = nl;
      if (this.partialLen > 0) {
        const partial = this.partial!;
        partial.push(buf.subarray(this.pos, nl));
        line = Buffer.concat(partial, this.partialLen + nl - this.pos);
        start = 0;
        end = line.length;
        this.partial = null;
        this.partialLen = 0;
      }
      this.pos = nl + 1;
      if (this.pos === buf.length) {
        chunks.shift();
        this.pos = 0;
      }
      if (end > start && line[end - 1] === CR) end--;
      if (end - start > this.maxLine) return this.fail();
      this.buf = line;
      this.start = start;
      this.end = end;
      return LINE;
    }
    return NEED_MORE;
  }

  /**
   * step() as a value: the line (a view, not a copy), null when more bytes are needed, or the
   * error.
   */
  next(): Buffer | ReplyError | null {
    const r = this.step();
    if (r === LINE) return this.buf.subarray(this.start, this.end);
    return r === TOO_LONG ? replyErrors.lineTooLong : null;
  }

  private fail(): typeof TOO_LONG {
    this.failed = true;
    this.chunks = null;
    this.partial = null;
    this.partialLen = 0;
    this.buf = EMPTY;
    return TOO_LONG;
  }
}

/** How far findLF looks byte by byte before it asks Buffer#indexOf (a native call). */
const SCAN = 32;

/**
 * The first "\n" in buf from `from`, or -1. Requests are short: a loop over their bytes costs
 * less than indexOf's call into C++ (about 3 % of a worker's samples at pipeline depth 16).
 */
function findLF(buf: Buffer, from: number): number {
  const stop = Math.min(buf.length, from + SCAN);
  for (let i = from; i < stop; i++) if (buf[i] === LF) return i;
  return stop < buf.length ? buf.indexOf(LF, stop) : -1;
}

/** A copy of `b` that shares no memory with it (small ones come from Node's buffer pool). */
export const copy = (b: Buffer): Buffer => Buffer.from(b);

/** Space-separated words of the rest of a line; runs of spaces count as one. */
export function splitWords(rest: Buffer | null): Buffer[] {
  if (rest === null) return [];
  const words: Buffer[] = [];
  let start = -1;
  for (let i = 0; i <= rest.length; i++) {
    const atSpace = i === rest.length || rest[i] === SPACE;
    if (atSpace) {
      if (start !== -1) words.push(rest.subarray(start, i));
      start = -1;
    } else if (start === -1) {
      start = i;
    }
  }
  return words;
}

/**
 * Writes one reply line, always ending in "\n". A newline inside a value becomes a space, so that
 * one request line always gets exactly one reply line whatever a handler returns.
 */
export function writeLineReply(reply: Reply, out: ReplySink): void {
  if (reply instanceof Preencoded) {
    out.text(reply.line);
  } else if (reply instanceof Buffer) {
    if (reply.indexOf(LF) !== -1) {
      reply = Buffer.from(reply);
      for (let i = 0; i < reply.length; i++) if (reply[i] === LF) reply[i] = SPACE;
    }
    if (reply.length > 0) out.bytes(reply);
    out.text('\n');
  } else {
    out.text(lineText(reply) + '\n');
  }
}

/** One reply line as a string (text) or Buffer (bytes). */
export function encodeLineReply(reply: Reply): string | Buffer {
  const out = new Output();
  writeLineReply(reply, out);
  return out.take();
}

function lineText(reply: Reply): string {
  if (typeof reply === 'string')
    return reply.includes('\n') ? reply.replace(/\r?\n/g, ' ').trimEnd() : reply;
  if (typeof reply === 'number' || typeof reply === 'boolean') return String(reply);
  if (reply === null) return '(nil)';
  if (reply instanceof ReplyError) return `ERROR: ${reply.message}`;
  if (reply instanceof Buffer) return lineText(reply.toString('utf8'));
  if (reply instanceof RespMap)
    return reply.entries.map(([k, v]) => `${lineText(k)}=${lineText(v)}`).join(' ');
  if (reply instanceof RespSet || reply instanceof Push || reply instanceof Replies)
    return reply.items.map(lineText).join(' ');
  if (reply instanceof Verbatim || reply instanceof Status || reply instanceof Preencoded)
    return lineText(reply.text);
  if (reply instanceof Forms) return lineText(reply.text);
  if (reply instanceof Double) return String(reply.value);
  return (reply as readonly Reply[]).map(lineText).join(' ');
}

/** The line protocol: whatever a stream's first byte, when no other protocol claims it. */
export const line: Protocol = {
  name: 'line',
  claims: () => true,
  decoder: (limits: RequestLimits) => new LineDecoder(limits.maxLine),
  write: (reply, _state, out) => writeLineReply(reply, out),
  encode: encodeLineReply,
  offers: (spec) => spec.family === 'core',
};
