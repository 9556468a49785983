// One web port (HTTP_PORT, WS_PORT, or both on one port): every client is admitted at accept like
// any other, then speaks HTTP/1.1 or HTTP/2. On a plain port the first bytes decide (h2c prior
// knowledge starts with the HTTP/2 preface "PRI * HTTP/2.0"); over TLS, ALPN does (h2 or
// http/1.1). The HTTP transport takes the requests, the WebSocket transport the upgrades; a port
// without one of them answers 426 or 404. Each client is tracked for IDLE_TIMEOUT_MS,
// REQUEST_TIMEOUT_MS, CLIENT LIST and shutdown (GOAWAY on HTTP/2, Connection: close on 1.1).
import {
  createServer as createHttp1,
  type IncomingMessage,
  STATUS_CODES,
  type ServerResponse,
} from 'node:http';
import {
  createServer as createHttp2,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ClientInfo } from '../../commands/context.ts';
import type { TlsMaterial } from '../../config/tls.ts';
import type { ReplyError } from '../../errors.ts';
import { formatHostPort, plainIp } from '../../net/address.ts';
import { runtime } from '../bun/runtime.ts';
import { httpStatus } from '../http/json.ts';
import type { Admitted } from '../../worker/admission.ts';
import type { Refusal, TrackedClient, TransportHost } from '../transport.ts';
import { tickMs } from '../../stats/clock.ts';

export type WebRequest = IncomingMessage | Http2ServerRequest;
export type WebResponse = ServerResponse | Http2ServerResponse;
export type RequestHandler = (req: WebRequest, res: WebResponse, client: WebClient) => void;
export type UpgradeHandler = (
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
  client: WebClient,
) => void;

const kClient = Symbol('webClient');
type ClientSocket = Socket & { [kClient]?: WebClient };

/** An HTTP error as JSON, the shape every error of the HTTP API has. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** The first bytes of an HTTP/2 client with prior knowledge (the h2c connection preface). */
const isH2Preface = (first: Buffer | null): boolean =>
  first !== null && first.length >= 3 && first.toString('latin1', 0, 3) === 'PRI';

/**
 * Clients refused at accept are told why in the HTTP they speak, with the HTTP API's error JSON:
 * HTTP/1.1 (and WebSocket upgrades) get a response (403 for protected mode, 503 for the connection
 * limits, as the API maps those codes), an h2c client a GOAWAY whose debug data is that JSON.
 */
const refusal: Refusal = (error: ReplyError, first: Buffer | null) => {
  const body = errorBody(error.code, error.message);
  if (isH2Preface(first)) return h2Refusal(REFUSED_STREAM, Buffer.from(body));
  const status = httpStatus(error);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
    `Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
};

/** One TCP (or TLS) client of a web port. */
export class WebClient implements TrackedClient {
  readonly socket: Socket;
  readonly admitted: Admitted;
  readonly createdAt = tickMs();
  /** "http/1.1" or "h2". */
  version = 'http/1.1';
  /** Requests in progress, and since when the oldest of them has run (0: none). */
  active = 0;
  busySince = 0;
  lastActive = tickMs();
  lastCommand = 'NULL';
  session: Http2Session | null = null;
  /** Shutdown began: finish the requests in progress, take no more. */
  closing = false;
  /** An upgrade took it over (a WebSocket connection tracks it now). */
  handedOver = false;
  /** RATE_LIMIT tokens taken from the IP's bucket and not used yet (HTTP requests share them). */
  rateTokens = 0;
  /** The bearer token this connection proved (checked once, not per request). */
  verifiedToken: string | null = null;
  readonly clientId: number;
  private readonly host: TransportHost;

  constructor(host: TransportHost, socket: Socket, admitted: Admitted) {
    this.host = host;
    this.socket = socket;
    this.admitted = admitted;
    this.clientId = host.stats.nextClientId();
  }

  get peer(): string {
    return this.admitted.peer;
  }

  requestStarted(): void {
    if (this.active++ === 0) this.busySince = tickMs();
  }

  requestDone(): void {
    this.lastActive = tickMs();
    if (--this.active === 0) {
      this.busySince = 0;
      if (this.closing) this.drain();
    }
  }

  expired(now: number, idleMs: number, requestMs: number): 'idle' | 'request' | null {
    if (this.active === 0) return idleMs > 0 && now - this.lastActive > idleMs ? 'idle' : null;
    return requestMs > 0 && now - this.busySince > requestMs ? 'request' : null;
  }

  drain(): void {
    this.closing = true;
    if (this.session !== null)
      this.session.close(); // GOAWAY: streams in progress finish
    else if (this.active === 0) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  clientInfo(): ClientInfo {
    const now = tickMs();
    return {
      id: this.clientId,
      addr: this.peer,
      laddr:
        this.socket.localAddress === undefined
          ? ''
          : formatHostPort(plainIp(this.socket.localAddress), this.socket.localPort),
      name: '',
      age: Math.floor((now - this.createdAt) / 1000),
      idle: Math.floor((now - this.lastActive) / 1000),
      cmd: this.lastCommand.toLowerCase(),
      protocol: this.version,
      transport: 'http',
      resp: 3,
      worker: this.host.workerId,
      libName: '',
      libVer: '',
      qbuf: this.socket.readableLength,
      omem: this.socket.writableLength,
    };
  }
}

const clientOf = (socket: Socket): WebClient | undefined => (socket as ClientSocket)[kClient];

export class WebPort {
  request: RequestHandler | null = null;
  upgrade: UpgradeHandler | null = null;
  private readonly host: TransportHost;
  private readonly port: number;
  private readonly tls: TlsMaterial | null;
  private readonly http1 = createHttp1();
  private readonly http2 = createHttp2();
  private started: Promise<void> | null = null;

  /** The web port `port` of this worker, shared by the transports that use it. */
  static of(host: TransportHost, port: number, tls: TlsMaterial | null): WebPort {
    return host.shared(`web:${port}`, () => new WebPort(host, port, tls));
  }

  private constructor(host: TransportHost, port: number, tls: TlsMaterial | null) {
    this.host = host;
    this.port = port;
    this.tls = tls;
    // Slow requests are the sweep's business (REQUEST_TIMEOUT_MS), as on every transport.
    this.http1.requestTimeout = 0;
    this.http1.headersTimeout = 0;
    this.http1.keepAliveTimeout = 0; // IDLE_TIMEOUT_MS, by the sweep, as on every transport
    this.http1.on('request', (req: IncomingMessage, res: ServerResponse) =>
      this.onRequest(req, res, clientOf(req.socket)),
    );
    this.http1.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const client = clientOf(socket);
      if (client === undefined) return socket.destroy();
      if (this.upgrade === null) return rejectUpgrade(socket, 404, 'No WebSocket on this port');
      this.upgrade(req, socket, head, client);
    });
    this.http2.on('session', (session: Http2Session) => {
      const client = clientOf(session.socket as Socket);
      if (client === undefined) return session.destroy();
      client.session = session;
      client.version = 'h2';
    });
    this.http2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) =>
      this.onRequest(req, res, clientOf(req.stream.session?.socket as Socket)),
    );
    this.http2.on('sessionError', () => {}); // the socket's 'close' does the bookkeeping
  }

  /** Binds the port once, however many transports ask. */
  start(): Promise<void> {
    if (this.started === null && this.tls === null && runtime === 'bun' && this.host.workerId === 0)
      this.host.logger.warn(
        `Port ${this.port}: HTTP/2 prior knowledge (h2c) is not available on Bun, whose node:http2 ` +
          'cannot take over an accepted socket; HTTP/1.1 is served, HTTP/2 needs TLS (ALPN h2)',
      );
    this.started ??= this.host.listen({
      port: this.port,
      tls: this.tls,
      alpn: ['h2', 'http/1.1'],
      refusal,
      serve: (socket, admitted, firstBytes) => this.serve(socket, admitted, firstBytes),
    });
    return this.started;
  }

  private onRequest(req: WebRequest, res: WebResponse, client: WebClient | undefined): void {
    if (client === undefined) {
      res.destroy();
      return;
    }
    client.requestStarted();
    res.once('close', () => client.requestDone());
    if (client.closing && client.session === null) res.setHeader('Connection', 'close');
    if (this.request !== null) return this.request(req, res, client);
    const body = errorBody('ERR_HTTP_REQUEST', 'This port serves WebSocket upgrades only');
    (res as ServerResponse)
      .writeHead(426, { 'Content-Type': 'application/json', Upgrade: 'websocket' })
      .end(body);
  }

  private serve(socket: Socket, admitted: Admitted, firstBytes: Buffer | null): void {
    const client = new WebClient(this.host, socket, admitted);
    (socket as ClientSocket)[kClient] = client;
    this.host.track(client);
    socket.on('error', (err: NodeJS.ErrnoException) =>
      this.host.logger.debug(`Client error: ${client.peer}: ${err.code ?? err.message}`),
    );
    socket.once('close', () => {
      if (!client.handedOver) this.host.untrack(client);
    });
    this.host.logger.info(
      `Client connected: ${admitted.peer} (Active: ${this.host.stats.activeClients()})`,
    );
    if (this.tls !== null) {
      const h2 = (socket as TLSSocket).alpnProtocol === 'h2';
      (h2 ? this.http2 : this.http1).emit('connection', socket);
      return;
    }
    const route = (chunk: Buffer): void => {
      socket.pause();
      socket.unshift(chunk);
      const h2 = isH2Preface(chunk);
      if (h2 && runtime === 'bun') return refuseH2c(socket);
      (h2 ? this.http2 : this.http1).emit('connection', socket);
      // HTTP/2 reads what was put back itself; HTTP/1.1 waits to be resumed.
      if (!h2) socket.resume();
    };
    if (firstBytes !== null) route(firstBytes);
    else socket.once('data', route);
  }
}

/** Refuses an upgrade on its raw socket (no response object exists for it yet). */
export function rejectUpgrade(socket: Socket, status: number, message: string): void {
  const body = errorBody('ERR_HTTP_REQUEST', message);
  const text = status === 403 ? 'Forbidden' : status === 400 ? 'Bad Request' : 'Not Found';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nConnection: close\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

// HTTP/2 error codes (RFC 9113 7) a refusal uses.
const REFUSED_STREAM = 0x07;
const HTTP_1_1_REQUIRED = 0x0d;

/**
 * An HTTP/2 refusal before any request: the server preface (an empty SETTINGS frame), then
 * GOAWAY with no stream processed, `code`, and why as its debug data.
 */
function h2Refusal(code: number, why: Buffer): Buffer {
  const settings = Buffer.from([0, 0, 0, 0x04, 0, 0, 0, 0, 0]);
  const goaway = Buffer.alloc(9 + 8 + why.length);
  goaway.writeUIntBE(8 + why.length, 0, 3);
  goaway[3] = 0x07; // GOAWAY, flags 0, stream 0
  goaway.writeUInt32BE(0, 9); // last stream id
  goaway.writeUInt32BE(code, 13);
  why.copy(goaway, 17);
  return Buffer.concat([settings, goaway]);
}

/**
 * Bun cannot hand an accepted socket to its node:http2 server: an h2c client is told so in its
 * own protocol, GOAWAY with HTTP_1_1_REQUIRED and the reason, then FIN.
 */
function refuseH2c(socket: Socket): void {
  const why = Buffer.from('h2c is not available on this server (Bun): use HTTP/1.1 or h2 over TLS');
  socket.resume();
  socket.end(h2Refusal(HTTP_1_1_REQUIRED, why));
}
