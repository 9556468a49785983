// The line protocol: a request runs up to "\n" (a "\r" just before it is dropped) and gets exactly
// one reply line. No sockets here: bytes go in through push() and requests come out of next(), so
// tests can feed any split of the input and the connection can stop pulling under back-pressure.
import { ReplyError, replyErrors } from '../errors.ts';
import { Double, Push, type Reply, RespMap, RespSet, Status, Verbatim } from './reply.ts';

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;

export class LineDecoder {
  readonly maxLine: number;
  /** Received bytes not yet split into lines; the first is read from `pos`. */
  private chunks: Buffer[] = [];
  private pos = 0;
  /** The start of a line whose "\n" has not arrived yet. */
  private partial: Buffer[] = [];
  private partialLen = 0;
  private failed = false;

  constructor(maxLine: number) {
    this.maxLine = maxLine;
  }

  push(chunk: Buffer): void {
    if (!this.failed && chunk.length > 0) this.chunks.push(chunk);
  }

  /** True while bytes of an unfinished or unread request are held. */
  get pending(): boolean {
    return this.chunks.length > 0 || this.partialLen > 0;
  }

  /**
   * The next complete line without its terminator, `null` when more bytes are needed, or the
   * line-too-long error, after which the decoder accepts nothing more. The limit is checked as
   * bytes arrive, so an over-long line is refused before it is ever held whole.
   */
  next(): Buffer | ReplyError | null {
    while (this.chunks.length > 0 && !this.failed) {
      const buf = this.chunks[0];
      const nl = buf.indexOf(LF, this.pos);
      if (nl === -1) {
        const tail = this.pos === 0 ? buf : buf.subarray(this.pos);
        this.chunks.shift();
        this.pos = 0;
        this.partialLen += tail.length;
        // One byte over the limit is allowed only if it may be the "\r" of a "\r\n".
        const over = this.partialLen - this.maxLine;
        if (over > 1 || (over === 1 && tail[tail.length - 1] !== CR)) return this.fail();
        this.partial.push(tail);
        continue;
      }
      let line: Buffer;
      if (this.partialLen === 0) {
        line = buf.subarray(this.pos, nl);
      } else {
        this.partial.push(buf.subarray(this.pos, nl));
        line = Buffer.concat(this.partial, this.partialLen + nl - this.pos);
        this.partial = [];
        this.partialLen = 0;
      }
      this.pos = nl + 1;
      if (this.pos === buf.length) {
        this.chunks.shift();
        this.pos = 0;
      }
      const len = line.length;
      if (len > 0 && line[len - 1] === CR) line = line.subarray(0, len - 1);
      if (line.length > this.maxLine) return this.fail();
      return line;
    }
    return null;
  }

  private fail(): ReplyError {
    this.failed = true;
    this.chunks = [];
    this.partial = [];
    this.partialLen = 0;
    return replyErrors.lineTooLong;
  }
}

export interface LineCommand {
  /** The command name as sent (any case). */
  name: string;
  /** Everything after the first space, byte for byte, or null when there is no space. */
  rest: Buffer | null;
}

/** Splits a request line into its name and the rest of the line. */
export function splitLine(line: Buffer): LineCommand {
  const sp = line.indexOf(SPACE);
  if (sp === -1) return { name: line.toString('latin1'), rest: null };
  return { name: line.toString('latin1', 0, sp), rest: line.subarray(sp + 1) };
}

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

const NEWLINE = Buffer.from('\n');

/**
 * One reply line, always ending in "\n". A newline inside a value becomes a space, so that one
 * request line always gets exactly one reply line whatever a handler returns.
 */
export function encodeLineReply(reply: Reply): string | Buffer {
  if (reply instanceof Buffer) {
    if (reply.indexOf(LF) !== -1) {
      reply = Buffer.from(reply);
      for (let i = 0; i < reply.length; i++) if (reply[i] === LF) reply[i] = SPACE;
    }
    return Buffer.concat([reply, NEWLINE]);
  }
  return lineText(reply) + '\n';
}

function lineText(reply: Reply): string {
  if (typeof reply === 'string') return reply.includes('\n') ? reply.replace(/\r?\n/g, ' ').trimEnd() : reply;
  if (typeof reply === 'number' || typeof reply === 'boolean') return String(reply);
  if (reply === null) return '(nil)';
  if (reply instanceof ReplyError) return `ERROR: ${reply.message}`;
  if (reply instanceof Buffer) return lineText(reply.toString('utf8'));
  if (reply instanceof RespMap) return reply.entries.map(([k, v]) => `${lineText(k)}=${lineText(v)}`).join(' ');
  if (reply instanceof RespSet || reply instanceof Push) return reply.items.map(lineText).join(' ');
  if (reply instanceof Verbatim || reply instanceof Status) return lineText(reply.text);
  if (reply instanceof Double) return String(reply.value);
  return (reply as readonly Reply[]).map(lineText).join(' ');
}
