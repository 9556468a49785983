// The OTLP/HTTP transport for a plain `http:` collector without compression: each export is one
// HTTP/1.1 POST written on a kept-alive connection (its head and body in one write) and one
// response read by http-response.ts, with OpenTelemetry's retry policy (retrying(): 5 retries,
// backoff from 1 s by ×1.5 up to 5 s with ±20 % jitter, Retry-After honoured, within the
// export's timeout) and its reading of statuses and network errors. exporter.ts uses it for such
// collectors; https:, gzip and the rest go through OpenTelemetry's own exporter. Hand-written
// because OpenTelemetry's exporter cost ~1 ms of CPU per export (its delegate, Node's http client,
// code that stays cold at tens of exports a second), where this costs ~0.45 (npm run
// bench:export; docs/PERFORMANCE.md, "Tracing").
import { connect, type Socket } from 'node:net';
import { type HttpResponse, HttpResponseError, ResponseParser } from './http-response.ts';

/** What one attempt came to, as OpenTelemetry's IExporterTransport answers. */
export type ExportResponse =
  | { status: 'success'; data?: Uint8Array }
  | { status: 'failure'; error: Error }
  | { status: 'retryable'; retryInMillis?: number; error?: Error };

export interface ExporterTransport {
  send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse>;
  shutdown(): void;
}

/** An HTTP status that answers no: its code and the collector's message. */
export class OtlpHttpError extends Error {
  readonly code: number;
  readonly data: string;
  constructor(status: number, statusText: string, data: string) {
    super(`${status} ${statusText}`.trim());
    this.name = 'OTLPExporterError';
    this.code = status;
    this.data = data;
  }
}

// As OpenTelemetry's exporter: these statuses and network errors are worth another attempt.
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
]);
/** A connection idle this long is not reused: a NAT or balancer may have dropped it silently. */
const IDLE_MS = 4000;

/** Retry-After (seconds or an HTTP date) in milliseconds, as OpenTelemetry reads it. */
export function retryAfterMillis(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number.parseInt(value, 10);
  if (Number.isInteger(seconds)) return seconds > 0 ? seconds * 1000 : -1;
  const delay = new Date(value).getTime() - Date.now();
  // An unreadable date (NaN) or one past: at once.
  if (!(delay >= 0)) return 0;
  return delay;
}

/** One response as the delegate reads it. */
export function exportResponse(response: HttpResponse): ExportResponse {
  const { status } = response;
  if (status <= 299) return { status: 'success', data: response.body };
  if (RETRYABLE_STATUS.has(status))
    return {
      status: 'retryable',
      retryInMillis: retryAfterMillis(response.headers.get('retry-after')),
    };
  return {
    status: 'failure',
    error: new OtlpHttpError(status, response.statusText, response.body.toString()),
  };
}

function networkError(error: Error): ExportResponse {
  const code = (error as NodeJS.ErrnoException).code;
  return code !== undefined && RETRYABLE_CODES.has(code)
    ? { status: 'retryable', error }
    : { status: 'failure', error };
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * The request head up to Content-Length's value: the request line, Host (the URL's, or one the
 * headers name) and the header fields, checked: a name that is not an HTTP token, or a value with
 * a control character (CR, LF, NUL: another field smuggled in) or a character outside Latin-1, is
 * refused, naming the field. A repeated name (any case) keeps its last value; the framing fields
 * are tcpool's own. Login details in the URL become Basic authorisation unless the headers name
 * an Authorization, as Node's http client does.
 */
export function requestHead(url: URL, headers: Record<string, string>): string {
  const byName = new Map<string, [string, string]>();
  if (url.username !== '' || url.password !== '') {
    const login = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    byName.set('authorization', [
      'Authorization',
      `Basic ${Buffer.from(login).toString('base64')}`,
    ]);
  }
  byName.set('host', ['Host', url.host]);
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name))
      throw new Error(`OTLP header ${JSON.stringify(name)}: not a valid header name`);
    if (/[\r\n\0]/.test(value))
      throw new Error(`OTLP header ${name}: its value has a line break or NUL`);
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value))
      throw new Error(`OTLP header ${name}: its value has a character HTTP cannot carry`);
    if (/^(content-length|connection|transfer-encoding)$/i.test(name)) continue;
    byName.set(name.toLowerCase(), [name, value]);
  }
  const fields = [...byName.values()].map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return `POST ${url.pathname}${url.search} HTTP/1.1\r\n${fields}Content-Length: `;
}

/** A request on a connection: what shutdown() ends. */
type Abort = (error: Error) => void;

/** Plain-HTTP POSTs of request bodies to one URL, on connections kept alive between exports. */
export class HttpTransport implements ExporterTransport {
  private readonly host: string;
  private readonly port: number;
  /** The request head up to Content-Length's value. */
  private readonly head: string;
  /** Connections waiting for a request, with when they became idle; at most maxIdle. */
  private readonly idle: { socket: Socket; since: number }[] = [];
  private readonly busy = new Map<Socket, Abort>();
  private readonly maxIdle: number;
  private closed = false;

  /** `maxIdle`: the connections kept for reuse (the exports that may run at once). */
  constructor(url: URL, headers: Record<string, string>, maxIdle = 30) {
    if (url.protocol !== 'http:') throw new Error(`HttpTransport: ${url.href} is not http:`);
    this.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === '' ? 80 : Number(url.port);
    this.maxIdle = maxIdle;
    this.head = requestHead(url, headers);
  }

  async send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    const deadline = Date.now() + timeoutMillis;
    const first = await this.attempt(this.reusable() ?? this.open(), data, timeoutMillis);
    if (first !== STALE) return first;
    // A kept-alive connection the collector had closed meanwhile: once more on a new one,
    // within the time left. (A new connection is never STALE.)
    return (await this.attempt(
      this.open(),
      data,
      Math.max(0, deadline - Date.now()),
    )) as ExportResponse;
  }

  /** Ends every connection; the requests on them fail at once. */
  shutdown(): void {
    this.closed = true;
    for (const { socket } of this.idle) socket.destroy();
    this.idle.length = 0;
    for (const abort of [...this.busy.values()]) abort(new Error('the exporter is shut down'));
  }

  /** An idle connection still open and not idle too long, or undefined. */
  private reusable(): Socket | undefined {
    const now = Date.now();
    for (let entry = this.idle.pop(); entry !== undefined; entry = this.idle.pop()) {
      if (!entry.socket.destroyed && now - entry.since < IDLE_MS) return entry.socket;
      entry.socket.destroy();
    }
    return undefined;
  }

  private open(): Socket {
    const socket = connect({ host: this.host, port: this.port, noDelay: true });
    // An error while the connection is idle ends it (it is then skipped); while a request is on
    // it, the request's own listener answers it.
    socket.on('error', () => {});
    return socket;
  }

  /** One request on `socket`: STALE if a reused connection failed before any answer. */
  private attempt(
    socket: Socket,
    data: Uint8Array,
    timeoutMillis: number,
  ): Promise<ExportResponse | typeof STALE> {
    if (this.closed) {
      socket.destroy();
      return Promise.resolve({ status: 'failure', error: new Error('the exporter is shut down') });
    }
    const reused = !socket.connecting;
    socket.ref();
    socket.removeAllListeners('data'); // the idle guard, below
    return new Promise((resolve) => {
      const parser = new ResponseParser();
      let response: HttpResponse | null = null;
      let written = false;
      let settled = false;
      const settle = (result: ExportResponse | typeof STALE, keep: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
        socket.off('error', onError);
        this.busy.delete(socket);
        if (keep && parser.extra === 0 && !this.closed && this.idle.length < this.maxIdle) {
          socket.unref(); // an idle connection does not hold the process
          // Anything the collector sends while no request is out makes the connection unusable.
          socket.on('data', () => socket.destroy());
          this.idle.push({ socket, since: Date.now() });
        } else socket.destroy(); // (a write still under way is cancelled)
        resolve(result);
      };
      // A refusal is final as it arrives (a collector refusing a large body may stop reading
      // it). A success is taken once the body has left too: the memory behind `data` goes back
      // to the worker that wrote it.
      const answered = (): void => {
        if (response === null) return;
        if (response.status > 299) settle(exportResponse(response), false);
        else if (written) settle(exportResponse(response), response.keepAlive);
      };
      const onData = (chunk: Buffer): void => {
        try {
          // Bytes after the answer are counted (parser.extra): the connection is then not kept.
          const complete = parser.push(chunk);
          if (complete !== null) response = complete;
        } catch (err) {
          settle({ status: 'failure', error: err as Error }, false);
          return;
        }
        answered();
      };
      // The connection ended or failed: a complete answer stands; otherwise the attempt failed.
      const onEnd = (): void => {
        if (response !== null) return settle(exportResponse(response), false);
        if (reused && !parser.started) return settle(STALE, false);
        try {
          response = parser.end();
          settle(exportResponse(response), false);
        } catch (err) {
          const error = err as Error;
          settle(
            error instanceof HttpResponseError
              ? { status: 'retryable', error }
              : { status: 'failure', error },
            false,
          );
        }
      };
      const onError = (error: Error): void => {
        if (response !== null) return settle(exportResponse(response), false);
        if (reused && !parser.started) return settle(STALE, false);
        settle(networkError(error), false);
      };
      const timer = setTimeout(
        () => settle({ status: 'retryable', error: new Error('Request timed out') }, false),
        timeoutMillis,
      );
      this.busy.set(socket, (error) => settle({ status: 'failure', error }, false));
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('close', onEnd);
      socket.on('error', onError);
      socket.cork();
      socket.write(`${this.head}${data.byteLength}\r\n\r\n`, 'latin1');
      socket.write(data, () => {
        written = true;
        answered();
      });
      socket.uncork();
    });
  }
}

const STALE = Symbol('stale connection');

// OpenTelemetry's retry policy (its RetryingTransport, which its package does not export).
const MAX_ATTEMPTS = 5;
const INITIAL_BACKOFF = 1000;
const MAX_BACKOFF = 5000;
const BACKOFF_MULTIPLIER = 1.5;
const JITTER = 0.2;

/**
 * `transport` with retries of what is retryable, as OpenTelemetry's exporter does: a retry is
 * not made when its wait would pass the export's deadline, and each gets the time that was left
 * before its wait. shutdown() also ends the waits.
 */
export function retrying(transport: ExporterTransport): ExporterTransport {
  const waits = new Set<() => void>();
  let closed = false;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        waits.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, ms));
      waits.add(wake);
    });
  return {
    async send(data, timeoutMillis) {
      const deadline = Date.now() + timeoutMillis;
      let result = await transport.send(data, timeoutMillis);
      let backoff = INITIAL_BACKOFF;
      for (let retries = 0; result.status === 'retryable' && retries < MAX_ATTEMPTS; retries++) {
        const jittered = Math.max(
          Math.min(backoff * (1 + (Math.random() * 2 - 1) * JITTER), MAX_BACKOFF),
          0,
        );
        backoff *= BACKOFF_MULTIPLIER;
        const wait = result.retryInMillis ?? jittered;
        const left = deadline - Date.now();
        if (wait > left) return result;
        await sleep(wait);
        if (closed) return { status: 'failure', error: new Error('the exporter is shut down') };
        result = await transport.send(data, left);
      }
      return result;
    },
    shutdown() {
      closed = true;
      for (const wake of [...waits]) wake();
      transport.shutdown();
    },
  };
}
