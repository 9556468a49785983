// The OTLP/HTTP transport for a plain `http:` collector without compression: each export is one
// HTTP/1.1 POST written on a kept-alive connection (its head and body in one write) and one
// response read by http-response.ts, with OpenTelemetry's retry policy (5 attempts, backoff from
// 1 s by ×1.5 up to 5 s with ±20 % jitter, Retry-After honoured, all within the export's
// timeout). It plugs into OpenTelemetry's export delegate (exporter.ts), which keeps its
// concurrency limit and partial-success logging; https:, gzip and the rest use OpenTelemetry's
// own transport. Hand-written because Node's http client cost ~0.6–0.8 ms of CPU per export
// where this costs ~0.1 (docs/PERFORMANCE.md, "Tracing").
import { connect, type Socket } from 'node:net';
import { HttpResponseError, type HttpResponse, ResponseParser } from './http-response.ts';

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

/** Plain-HTTP POSTs of request bodies to one URL, on connections kept alive between exports. */
export class HttpTransport implements ExporterTransport {
  private readonly host: string;
  private readonly port: number;
  /** The request head up to Content-Length's value. */
  private readonly head: string;
  private readonly idle: Socket[] = [];
  private readonly busy = new Set<Socket>();
  private closed = false;

  constructor(url: URL, headers: Record<string, string>) {
    if (url.protocol !== 'http:') throw new Error(`HttpTransport: ${url.href} is not http:`);
    this.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === '' ? 80 : Number(url.port);
    const fields = Object.entries(headers)
      .filter(([name]) => !/^(content-length|host|connection|transfer-encoding)$/i.test(name))
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    this.head = `POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n${fields}Content-Length: `;
  }

  async send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    if (this.closed) return { status: 'failure', error: new Error('the exporter is shut down') };
    // A connection the collector closed while it was idle has ended, and is skipped.
    let reused = this.idle.pop();
    while (reused?.destroyed) reused = this.idle.pop();
    const first = await this.attempt(reused ?? this.open(), data, timeoutMillis);
    // A kept-alive connection the collector had closed meanwhile: once more on a new one.
    if (first !== STALE) return first;
    // (A new connection is never STALE.)
    return (await this.attempt(this.open(), data, timeoutMillis)) as ExportResponse;
  }

  shutdown(): void {
    this.closed = true;
    for (const socket of [...this.idle, ...this.busy]) socket.destroy();
    this.idle.length = 0;
    this.busy.clear();
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
    const reused = !socket.connecting;
    this.busy.add(socket);
    socket.ref();
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
        socket.off('error', onError);
        socket.off('close', onEnd);
        this.busy.delete(socket);
        if (keep && !this.closed) {
          socket.unref(); // an idle connection does not hold the process
          this.idle.push(socket);
        } else socket.destroy();
        resolve(result);
      };
      // The answer is taken once the body has left too: the memory behind `data` goes back to
      // the worker that wrote it.
      const done = (): void => {
        if (response !== null && written) settle(exportResponse(response), response.keepAlive);
      };
      const onData = (chunk: Buffer): void => {
        try {
          response ??= parser.push(chunk);
        } catch (err) {
          settle({ status: 'failure', error: err as Error }, false);
          return;
        }
        done();
      };
      const onEnd = (): void => {
        if (response !== null) return done();
        if (reused && !parser.started) return settle(STALE, false);
        try {
          response = parser.end();
          done();
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
        if (reused && !parser.started) return settle(STALE, false);
        settle(networkError(error), false);
      };
      const timer = setTimeout(
        () => settle({ status: 'retryable', error: new Error('Request timed out') }, false),
        timeoutMillis,
      );
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('close', onEnd);
      socket.on('error', onError);
      socket.cork();
      socket.write(`${this.head}${data.byteLength}\r\n\r\n`, 'latin1');
      socket.write(data, () => {
        written = true;
        done();
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

/** `transport` with retries of what is retryable, within the export's timeout. */
export function retrying(
  transport: ExporterTransport,
  sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
): ExporterTransport {
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
        result = await transport.send(data, deadline - Date.now());
      }
      return result;
    },
    shutdown: () => transport.shutdown(),
  };
}
