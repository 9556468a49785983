// One small client per transport for the conformance suite, each with its own framing (written
// here, independent of src/): every one sends a command and returns what came back as
// { ok: text } or { err: text }, and tells when the server closed it.
import { Agent, request as http1Request } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { createConnection, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';

export type Outcome = { ok: string } | { err: string } | { closed: true };

export interface ConformanceClient {
  /** Runs one command: name and arguments. */
  command(...argv: string[]): Promise<Outcome>;
  /** Authenticates the way this transport does (AUTH command, or a bearer token from now on). */
  auth(token: string): Promise<Outcome>;
  /** Resolves when the server has closed the connection. */
  readonly closed: Promise<void>;
  close(): void;
}

export interface Ports {
  port: number;
  tlsPort: number;
  wsPort: number;
  httpPort: number;
  ca: string;
}

/** Replies on a byte stream, split by `frame` (the length of the first whole reply, or -1). */
class StreamClient implements ConformanceClient {
  private buf = Buffer.alloc(0);
  private waiting: ((o: Outcome) => void)[] = [];
  readonly closed: Promise<void>;
  private readonly socket: Socket;
  private readonly encode: (argv: string[]) => string | Buffer;
  private readonly decode: (buf: Buffer) => { outcome: Outcome; used: number } | null;

  constructor(
    socket: Socket,
    encode: (argv: string[]) => string | Buffer,
    decode: (buf: Buffer) => { outcome: Outcome; used: number } | null,
  ) {
    this.socket = socket;
    this.encode = encode;
    this.decode = decode;
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const r = this.decode(this.buf);
        if (r === null) break;
        this.buf = this.buf.subarray(r.used);
        this.waiting.shift()?.(r.outcome);
      }
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        for (const w of this.waiting.splice(0)) w({ closed: true });
        resolve();
      }),
    );
  }

  command(...argv: string[]): Promise<Outcome> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve({ closed: true });
      this.waiting.push(resolve);
      this.socket.write(this.encode(argv));
    });
  }
  auth(token: string): Promise<Outcome> {
    return this.command('AUTH', token);
  }
  close(): void {
    this.socket.destroy();
  }
}

const lineEncode = (argv: string[]) => `${argv.join(' ')}\n`;
function lineDecode(buf: Buffer) {
  const nl = buf.indexOf(10);
  if (nl === -1) return null;
  const text = buf.toString('utf8', 0, nl).replace(/\r$/, '');
  const outcome = text.startsWith('ERROR: ') ? { err: text.slice(7) } : { ok: text };
  return { outcome, used: nl + 1 };
}

const respEncode = (argv: string[]) =>
  `*${argv.length}\r\n${argv.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
/** Enough of RESP for these tests: simple strings, errors, integers, bulk strings, flat arrays. */
function respDecode(buf: Buffer): { outcome: Outcome; used: number } | null {
  const value = respValue(buf, 0);
  if (value === null) return null;
  const [v, used] = value;
  return {
    outcome: typeof v === 'object' && v !== null && 'err' in v ? v : { ok: String(v) },
    used,
  };
}
function respValue(buf: Buffer, at: number): [string | { err: string }, number] | null {
  const nl = buf.indexOf('\r\n', at);
  if (nl === -1) return null;
  const head = buf.toString('utf8', at + 1, nl);
  switch (buf[at]) {
    case 0x2b: // +
    case 0x3a: // :
      return [head, nl + 2];
    case 0x2d: // -
      return [{ err: head }, nl + 2];
    case 0x24: {
      // $
      const len = Number(head);
      if (len < 0) return ['(nil)', nl + 2];
      if (buf.length < nl + 2 + len + 2) return null;
      return [buf.toString('utf8', nl + 2, nl + 2 + len), nl + 2 + len + 2];
    }
    case 0x2a: {
      // *
      const items: string[] = [];
      let pos = nl + 2;
      for (let i = 0; i < Number(head); i++) {
        const item = respValue(buf, pos);
        if (item === null) return null;
        items.push(String(item[0]));
        pos = item[1];
      }
      return [items.join(' '), pos];
    }
    default:
      throw new Error(`unexpected RESP byte ${buf[at]}`);
  }
}

/**
 * A TCP connection to 127.0.0.1:`port` as a trusted proxy would open it for a client at `via`:
 * its PROXY v1 header (written here, independent of src/protocol/proxy.ts) goes first, so the
 * server takes `via` for the client's address. Without `via`, a plain connection.
 */
export function socketTo(port: number, via?: string): Socket {
  const socket = createConnection({ host: '127.0.0.1', port });
  if (via !== undefined) {
    const family = via.includes(':') ? 'TCP6' : 'TCP4';
    const dst = family === 'TCP6' ? '::1' : '127.0.0.1';
    socket.write(`PROXY ${family} ${via} ${dst} ${40000 + (port % 20000)} ${port}\r\n`);
  }
  return socket;
}

function connected(socket: Socket, event = 'connect'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    socket.once(event, () => resolve(socket));
    socket.once('error', reject);
  });
}

class WsClient implements ConformanceClient {
  private readonly ws: WebSocket;
  private readonly binary: boolean;
  private waiting: ((o: Outcome) => void)[] = [];
  private buf = Buffer.alloc(0);
  readonly closed: Promise<void>;

  constructor(ws: WebSocket, binary: boolean) {
    this.ws = ws;
    this.binary = binary;
    ws.on('error', () => {});
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary !== binary) throw new Error(`expected ${binary ? 'binary' : 'text'} frames`);
      if (!binary) {
        const text = data.toString('utf8');
        this.waiting.shift()?.(text.startsWith('ERROR: ') ? { err: text.slice(7) } : { ok: text });
        return;
      }
      this.buf = Buffer.concat([this.buf, data]);
      for (;;) {
        const r = respDecode(this.buf);
        if (r === null) break;
        this.buf = this.buf.subarray(r.used);
        this.waiting.shift()?.(r.outcome);
      }
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', () => {
        for (const w of this.waiting.splice(0)) w({ closed: true });
        resolve();
      }),
    );
  }

  command(...argv: string[]): Promise<Outcome> {
    return new Promise((resolve) => {
      if (this.ws.readyState !== WebSocket.OPEN) return resolve({ closed: true });
      this.waiting.push(resolve);
      this.ws.send(this.binary ? Buffer.from(respEncode(argv)) : argv.join(' '));
    });
  }
  auth(token: string): Promise<Outcome> {
    return this.command('AUTH', token);
  }
  close(): void {
    this.ws.terminate();
  }
}

function httpOutcome(status: number, body: string): Outcome {
  const json = JSON.parse(body) as { result?: unknown; error?: { code: string; message: string } };
  if (json.error !== undefined)
    return { err: `${status} ${json.error.code} ${json.error.message}` };
  const r = json.result;
  return { ok: typeof r === 'string' ? r : Array.isArray(r) ? r.join(' ') : JSON.stringify(r) };
}

/** HTTP/1.1 through a keep-alive agent of one socket, so "the connection" means something. */
class Http1Client implements ConformanceClient {
  private readonly port: number;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private token: string | null = null;
  private markClosed: () => void = () => {};
  private socket: Socket | null = null;
  readonly closed: Promise<void>;

  constructor(port: number, via?: string) {
    this.port = port;
    if (via !== undefined)
      (this.agent as unknown as { createConnection: () => Socket }).createConnection = () =>
        socketTo(port, via);
    this.closed = new Promise<void>((resolve) => (this.markClosed = resolve));
  }

  command(...argv: string[]): Promise<Outcome> {
    const [name, ...args] = argv;
    const body = JSON.stringify({ args });
    return new Promise((resolve) => {
      const headers: Record<string, string | number> = {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      };
      if (this.token !== null) headers.authorization = `Bearer ${this.token}`;
      const req = http1Request(
        {
          host: '127.0.0.1',
          port: this.port,
          method: 'POST',
          path: `/v1/commands/${encodeURIComponent(name)}`,
          headers,
          agent: this.agent,
        },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve(httpOutcome(res.statusCode ?? 0, text)));
        },
      );
      req.on('socket', (s: Socket) => {
        if (s === this.socket) return;
        this.socket = s;
        s.on('close', () => this.markClosed());
      });
      req.on('error', () => resolve({ closed: true }));
      req.end(body);
    });
  }
  async auth(token: string): Promise<Outcome> {
    this.token = token;
    return this.command('PING');
  }
  close(): void {
    this.agent.destroy();
  }
}

class Http2Client implements ConformanceClient {
  private readonly session;
  private token: string | null = null;
  /** A GOAWAY's error code and debug data (a refusal at accept says why there). */
  private goaway: string | null = null;
  readonly closed: Promise<void>;

  constructor(port: number, via?: string) {
    this.session = http2Connect(`http://127.0.0.1:${port}`, {
      createConnection: () => socketTo(port, via),
    });
    this.session.on('error', () => {});
    this.session.on('goaway', (code: number, _last: number, data?: Buffer) => {
      if (data !== undefined && data.length > 0) this.goaway = `GOAWAY ${code} ${data}`;
    });
    this.closed = new Promise((resolve) => this.session.on('close', () => resolve()));
  }

  /** A stream ended without a response: closed, or refused by a GOAWAY that said why. */
  private ended(): Outcome {
    if (this.goaway === null) return { closed: true };
    const [, code, json] = /^GOAWAY (\d+) (.*)$/s.exec(this.goaway)!;
    const { error } = JSON.parse(json) as { error: { code: string; message: string } };
    return { err: `GOAWAY ${code} ${error.code} ${error.message}` };
  }

  command(...argv: string[]): Promise<Outcome> {
    const [name, ...args] = argv;
    return new Promise((resolve) => {
      if (this.session.closed || this.session.destroyed) return resolve(this.ended());
      const headers: Record<string, string> = {
        ':method': 'POST',
        ':path': `/v1/commands/${encodeURIComponent(name)}`,
        'content-type': 'application/json',
      };
      if (this.token !== null) headers.authorization = `Bearer ${this.token}`;
      const stream = this.session.request(headers);
      let status = 0;
      let text = '';
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (d) => (text += d));
      stream.on('end', () => resolve(text === '' ? this.ended() : httpOutcome(status, text)));
      stream.on('error', () => resolve(this.ended()));
      stream.end(JSON.stringify({ args }));
    });
  }
  async auth(token: string): Promise<Outcome> {
    this.token = token;
    return this.command('PING');
  }
  close(): void {
    this.session.destroy();
  }
}

export interface Transport {
  name: string;
  /**
   * A client of this transport; with `via`, it comes through a trusted proxy (PROXY v1) as a
   * client at that address. A refusal before the session starts rejects, saying why.
   */
  connect(ports: Ports, via?: string): Promise<ConformanceClient>;
  /** How a refusal at accept looks on this transport (a readable error, or a plain close). */
  refusal: 'reply' | 'close' | 'http';
}

/**
 * A line-protocol client from 127.0.0.2, for reading counters: it takes no per-IP slot from the
 * clients under test (127.0.0.1), however late the server sees it close.
 */
export async function observer({ port }: Ports): Promise<ConformanceClient> {
  return new StreamClient(
    await connected(createConnection({ host: '127.0.0.1', port, localAddress: '127.0.0.2' })),
    lineEncode,
    lineDecode,
  );
}

export const transports: Transport[] = [
  {
    name: 'tcp, line protocol',
    refusal: 'reply',
    connect: async ({ port }, via) =>
      new StreamClient(await connected(socketTo(port, via)), lineEncode, lineDecode),
  },
  {
    name: 'tcp, RESP',
    refusal: 'reply',
    connect: async ({ port }, via) =>
      new StreamClient(await connected(socketTo(port, via)), respEncode, respDecode),
  },
  {
    name: 'tls, line protocol',
    refusal: 'close',
    connect: async ({ tlsPort, ca }, via) =>
      new StreamClient(
        await connected(
          tlsConnect({ host: '127.0.0.1', socket: socketTo(tlsPort, via), ca }),
          'secureConnect',
        ),
        lineEncode,
        lineDecode,
      ),
  },
  {
    name: 'websocket, tcpool.line',
    refusal: 'http',
    connect: ({ wsPort }, via) => wsConnect(wsPort, 'tcpool.line', via),
  },
  {
    name: 'websocket, resp3',
    refusal: 'http',
    connect: ({ wsPort }, via) => wsConnect(wsPort, 'resp3', via),
  },
  {
    name: 'http/1.1',
    refusal: 'http',
    connect: async ({ httpPort }, via) => new Http1Client(httpPort, via),
  },
  {
    name: 'http/2 (h2c)',
    refusal: 'http',
    connect: async ({ httpPort }, via) => new Http2Client(httpPort, via),
  },
];

/** Refused upgrades reject with the status and the error JSON's code and message. */
function wsConnect(port: number, subprotocol: string, via?: string): Promise<ConformanceClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, subprotocol, {
      createConnection: () => socketTo(port, via),
    });
    ws.once('open', () => resolve(new WsClient(ws, subprotocol === 'resp3')));
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => {
        req.destroy();
        let why = body;
        try {
          const { error } = JSON.parse(body) as { error: { code: string; message: string } };
          why = `${error.code} ${error.message}`;
        } catch {}
        reject(new Error(`${res.statusCode} ${why}`));
      });
    });
  });
}
