// An HTTP/1.1 response, parsed from the bytes a collector sends back (RFC 9112), socket-free: the
// status line, the header fields, and a body framed by Content-Length, chunked transfer coding
// (with trailers) or the end of the connection; interim (1xx) responses are skipped. The OTLP
// exporter (otlp-http.ts) reads one response per request with it. Hand-written because Node's
// http client cost ~0.7 ms of the supervisor's CPU per export (its code stays cold at tens of
// exports a second) and OpenTelemetry's exporter ~1 ms: with it, the supervisor's export was
// about a third of what 1 % sampling cost (docs/PERFORMANCE.md, "Tracing").
// Sizes are checked before anything is buffered: the head is at most `maxHead` bytes and the
// body `maxBody`, as OpenTelemetry's exporter reads at most 4 MiB.

export interface HttpResponse {
  status: number;
  statusText: string;
  /** Header fields by lower-case name (a repeated field: its values joined by ", "). */
  headers: Map<string, string>;
  body: Buffer;
  /** Whether the connection may carry another request (HTTP/1.1 without `Connection: close`). */
  keepAlive: boolean;
}

export class HttpResponseError extends Error {}

/** Where the parser is in a response. */
const State = {
  Head: 0,
  Length: 1,
  ChunkSize: 2,
  ChunkData: 3,
  ChunkEnd: 4,
  Trailers: 5,
  UntilClose: 6,
  Done: 7,
} as const;
type State = (typeof State)[keyof typeof State];

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

export class ResponseParser {
  private state: State = State.Head;
  /** Bytes not yet consumed (a partial head, chunk-size line or trailer): buf[0, length). */
  private buf: Buffer = Buffer.alloc(0);
  private length = 0;
  /** Where the search for the awaited delimiter resumes in those bytes (no rescanning). */
  private scanFrom = 0;
  private readonly bodyParts: Buffer[] = [];
  private bodyBytes = 0;
  /** The bytes of every head (interim ones too) and trailer so far, bounded by maxHead. */
  private headBytes = 0;
  /** Body bytes (Length, ChunkData) still to come. */
  private remaining = 0;
  private response: HttpResponse | null = null;
  /** Bytes received in all. */
  private received = 0;
  /** Bytes that arrived after the response ended (the connection is then not reused). */
  extra = 0;
  private readonly maxHead: number;
  private readonly maxBody: number;

  constructor(maxBody = 4 * 1024 * 1024, maxHead = 64 * 1024) {
    this.maxBody = maxBody;
    this.maxHead = maxHead;
  }

  /** Whether any byte of an answer arrived (an interim 1xx response included). */
  get started(): boolean {
    return this.received > 0;
  }

  /** Whether the response is complete (read by a getter: step() changes the state). */
  private get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Feeds bytes; returns the response once, when it is complete, else null (bytes after it are
   * counted in `extra`). Throws an HttpResponseError on bad input.
   */
  push(chunk: Buffer): HttpResponse | null {
    this.received += chunk.length;
    if (this.done) {
      this.extra += chunk.length;
      return null;
    }
    let data = chunk;
    if (this.length > 0) {
      this.append(chunk);
      data = this.buf.subarray(0, this.length);
    }
    this.length = 0;
    while (data.length > 0 && !this.done) data = this.step(data);
    if (!this.done) return null;
    this.extra += data.length;
    return this.finish();
  }

  /** The connection ended: the response, if its body runs until the close; else an error. */
  end(): HttpResponse {
    if (this.state === State.UntilClose) return this.finish();
    throw new HttpResponseError(
      this.response !== null
        ? 'the collector closed the connection in the middle of its answer'
        : this.started
          ? 'the collector closed the connection before its answer was complete'
          : 'the collector closed the connection without answering',
    );
  }

  /** Consumes what it can of `data`; returns the rest (kept as pending when incomplete). */
  private step(data: Buffer): Buffer {
    switch (this.state) {
      case State.Head: {
        const end = this.headPart(data, HEAD_END, 'response head');
        if (end < 0) return this.wait(data);
        this.head(data.toString('latin1', 0, end));
        return data.subarray(end + 4);
      }
      case State.UntilClose:
        this.body(data);
        return data.subarray(data.length);
      case State.Length:
      case State.ChunkData: {
        const n = Math.min(this.remaining, data.length);
        this.body(data.subarray(0, n));
        this.remaining -= n;
        if (this.remaining === 0)
          this.state = this.state === State.Length ? State.Done : State.ChunkEnd;
        return data.subarray(n);
      }
      case State.ChunkEnd: {
        if (data.length < 2) return this.wait(data);
        if (data[0] !== 0x0d || data[1] !== 0x0a)
          throw new HttpResponseError('chunk not followed by CRLF');
        this.state = State.ChunkSize;
        return data.subarray(2);
      }
      case State.ChunkSize: {
        const end = this.find(data, CRLF);
        if (end < 0) {
          if (data.length > 1024) throw new HttpResponseError('chunk size line too long');
          return this.wait(data);
        }
        // The size in hex, then perhaps ";extensions".
        const line = data.toString('latin1', 0, end);
        const hex = line.split(';', 1)[0].trim();
        if (!/^[0-9a-fA-F]{1,8}$/.test(hex))
          throw new HttpResponseError(`bad chunk size ${JSON.stringify(line.slice(0, 80))}`);
        const size = Number.parseInt(hex, 16);
        if (size === 0) this.state = State.Trailers;
        else {
          if (this.bodyBytes + size > this.maxBody) throw tooLarge(this.maxBody);
          this.remaining = size;
          this.state = State.ChunkData;
        }
        return data.subarray(end + 2);
      }
      case State.Trailers: {
        const end = this.headPart(data, CRLF, 'trailers');
        if (end < 0) return this.wait(data);
        if (end === 0) this.state = State.Done; // the empty line that ends the message
        return data.subarray(end + 2);
      }
      default:
        return data;
    }
  }

  /**
   * Where `delimiter` ends a head (or a trailer line) in `data`, or -1 if it has not come yet;
   * the bytes count against maxHead, heads and trailers together, before they are kept.
   */
  private headPart(data: Buffer, delimiter: Buffer, what: string): number {
    const end = this.find(data, delimiter);
    const bytes = end < 0 ? data.length : end + delimiter.length;
    if (this.headBytes + bytes > this.maxHead) throw new HttpResponseError(`${what} too long`);
    if (end >= 0) this.headBytes += bytes;
    return end;
  }

  /** Where `delimiter` starts in `data`, searching on from where the last search stopped. */
  private find(data: Buffer, delimiter: Buffer): number {
    const at = data.indexOf(delimiter, this.scanFrom);
    this.scanFrom = at < 0 ? Math.max(0, data.length - delimiter.length + 1) : 0;
    return at;
  }

  /** Keeps `data` (all of it unconsumed) for the next push. */
  private wait(data: Buffer): Buffer {
    if (data.buffer !== this.buf.buffer || data.byteOffset !== this.buf.byteOffset) {
      this.length = 0;
      this.append(data); // a copy: the caller's chunk may be reused
    } else this.length = data.length;
    return data.subarray(data.length);
  }

  /** Appends to the pending bytes, the room doubling as needed (linear in all). */
  private append(bytes: Buffer): void {
    if (this.length + bytes.length > this.buf.length) {
      const grown = Buffer.allocUnsafe(
        Math.max(256, 2 * this.buf.length, this.length + bytes.length),
      );
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    bytes.copy(this.buf, this.length);
    this.length += bytes.length;
  }

  private body(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.bodyBytes += bytes.length;
    if (this.bodyBytes > this.maxBody) throw tooLarge(this.maxBody);
    this.bodyParts.push(Buffer.from(bytes));
  }

  /** The status line and fields; decides how the body is framed (RFC 9112 §6.3). */
  private head(text: string): void {
    const lines = text.split('\r\n');
    const match = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: (.*))?$/.exec(lines[0]);
    if (match === null)
      throw new HttpResponseError(`bad status line ${JSON.stringify(lines[0].slice(0, 80))}`);
    const status = Number(match[2]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0)
        throw new HttpResponseError(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const before = headers.get(name);
      headers.set(name, before === undefined ? value : `${before}, ${value}`);
    }
    if (status < 200) return; // an interim response: the final one follows
    const connection = (headers.get('connection') ?? '').toLowerCase();
    const keepAlive =
      match[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    this.response = {
      status,
      statusText: match[3] ?? '',
      headers,
      body: Buffer.alloc(0),
      keepAlive,
    };
    const coding = headers.get('transfer-encoding');
    const length = headers.get('content-length');
    if (status === 204 || status === 304) this.state = State.Done;
    else if (coding !== undefined) {
      if (!/(^|,)\s*chunked\s*$/i.test(coding))
        throw new HttpResponseError(`unsupported transfer-encoding ${JSON.stringify(coding)}`);
      // Both framings at once: answered by the coding, and the connection not reused (RFC 9112
      // §6.3: a sign of request smuggling).
      if (length !== undefined) this.response.keepAlive = false;
      this.state = State.ChunkSize;
    } else if (length !== undefined) {
      if (!/^[0-9]{1,15}$/.test(length))
        throw new HttpResponseError(`bad content-length ${JSON.stringify(length)}`);
      this.remaining = Number(length);
      if (this.remaining > this.maxBody) throw tooLarge(this.maxBody);
      this.state = this.remaining === 0 ? State.Done : State.Length;
    } else {
      this.response.keepAlive = false;
      this.state = State.UntilClose;
    }
  }

  private finish(): HttpResponse {
    const response = this.response!;
    this.state = State.Done;
    response.body = this.bodyParts.length === 1 ? this.bodyParts[0] : Buffer.concat(this.bodyParts);
    if (this.extra > 0) response.keepAlive = false;
    return response;
  }
}

function tooLarge(max: number): HttpResponseError {
  return new HttpResponseError(`response body larger than ${max} bytes`);
}
