// `tcpool client`: one command, piped commands, or an interactive prompt; over TCP or TLS,
// optionally authenticating first.
import { readFileSync, writeFileSync } from 'node:fs';
import { createConnection, isIP, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect as tlsConnect } from 'node:tls';
import { authRefused, connectFailed, connectionLost, noReply, usageError } from '../errors.ts';
import { formatHostPort } from '../net/address.ts';
import { LineDecoder } from '../protocol/line.ts';
import { clientHelp } from './help.ts';
import { integerOption, parseOptions } from './options.ts';

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
};
const reason = (err: NodeJS.ErrnoException): string => REASONS[err.code ?? ''] ?? err.message;

const HISTORY_FILE = join(homedir(), '.tcpool_history');
const HISTORY_SIZE = 1000;
const MAX_REPLY_BYTES = 256 * 1024 * 1024;
/** The line protocol's error replies start with this (src/errors.ts: ReplyError). */
const ERROR_PREFIX = 'ERROR: ';

interface ClientOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /** The token to AUTH with first, or null. */
  auth: string | null;
  /** TLS: the CA certificates to trust (null: the system's), or no TLS at all. */
  tls: { ca: Buffer | null } | null;
  /** One-shot mode's command, or null for piped or interactive. */
  command: string | null;
}

function parseClientOptions(argv: string[]): ClientOptions | 'help' {
  const { values, positionals } = parseOptions(
    argv,
    {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      timeout: { type: 'string', default: '5000' },
      auth: { type: 'string' },
      tls: { type: 'boolean' },
      cacert: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'client',
  );
  if (values.help) return 'help';
  const auth = (values.auth as string | undefined) ?? process.env.TCPOOL_AUTH ?? null;
  // The token travels as one word of a request line: a space or line break would split it.
  if (auth !== null && !/^[\x21-\x7e]+$/.test(auth))
    throw usageError('The AUTH token must be printable ASCII without spaces');
  return {
    host: values.host as string,
    port: integerOption('port', values.port as string, 0, 65535),
    timeoutMs: integerOption('timeout', values.timeout as string, 1, 2 ** 31 - 1),
    auth,
    tls:
      values.tls || values.cacert !== undefined
        ? { ca: values.cacert === undefined ? null : readCa(values.cacert as string) }
        : null,
    command: positionals.length > 0 ? positionals.join(' ') : null,
  };
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw usageError(`Cannot read --cacert ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
}

/** Connects (and completes the TLS handshake), or rejects with "Could not connect to …". */
function connect(o: ClientOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const where = formatHostPort(o.host, o.port);
    const socket =
      o.tls === null
        ? createConnection({ host: o.host, port: o.port, noDelay: true })
        : tlsConnect({
            host: o.host,
            port: o.port,
            ca: o.tls.ca ?? undefined,
            servername: isIP(o.host) === 0 ? o.host : undefined,
          });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(connectFailed(where, 'timed out'));
    }, o.timeoutMs);
    socket.once(o.tls === null ? 'connect' : 'secureConnect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(connectFailed(where, reason(err)));
    });
  });
}

/**
 * Sends lines and hands back reply lines in order. `onReply` gets each reply; `done` settles when
 * the server closes or fails.
 */
class Session {
  readonly socket: Socket;
  private readonly timeoutMs: number;
  private readonly decoder = new LineDecoder(MAX_REPLY_BYTES);
  outstanding = 0;
  closed = false;
  readonly done: Promise<void>;
  onReply: (line: Buffer) => void = () => {};

  constructor(socket: Socket, timeoutMs: number) {
    this.socket = socket;
    this.timeoutMs = timeoutMs;
    this.done = new Promise((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        this.decoder.push(chunk);
        for (let line = this.decoder.next(); line !== null; line = this.decoder.next()) {
          if (!(line instanceof Buffer)) return reject(noReply('Reply too long'));
          this.outstanding--;
          this.onReply(line);
        }
        socket.setTimeout(this.outstanding > 0 ? timeoutMs : 0);
      });
      socket.on('timeout', () => {
        socket.destroy();
        reject(noReply(`No reply within ${timeoutMs} ms`));
      });
      socket.on('error', (err: NodeJS.ErrnoException) => reject(connectionLost(reason(err))));
      socket.on('close', () => {
        this.closed = true;
        resolve();
      });
    });
  }

  send(line: string): void {
    this.outstanding++;
    this.socket.setTimeout(this.timeoutMs);
    this.socket.write(line + '\n');
  }

  /** Sends one line and resolves with its reply. */
  request(line: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.onReply = resolve;
      this.done.then(
        () => reject(noReply('The server closed the connection without replying')),
        reject,
      );
      this.send(line);
    });
  }
}

const isErrorReply = (line: Buffer): boolean =>
  line.toString('latin1', 0, ERROR_PREFIX.length) === ERROR_PREFIX;

function printReply(line: Buffer): void {
  process.stdout.write(Buffer.concat([line, Buffer.from('\n')]));
}

async function authenticate(session: Session, token: string): Promise<void> {
  const reply = await session.request(`AUTH ${token}`);
  if (isErrorReply(reply)) throw authRefused(reply.toString('utf8', ERROR_PREFIX.length));
}

/** Exits 1 when the reply is an error, so that scripts can tell. */
async function oneShot(session: Session, command: string): Promise<number> {
  const reply = await session.request(command);
  printReply(reply);
  session.socket.end();
  await session.done;
  return isErrorReply(reply) ? 1 : 0;
}

async function piped(session: Session): Promise<number> {
  session.onReply = (line) => {
    printReply(line);
    if (stdinDone && session.outstanding === 0) session.socket.end();
  };
  let stdinDone = false;
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (line) => {
    if (!session.closed) session.send(line);
  });
  rl.on('close', () => {
    stdinDone = true;
    if (session.outstanding === 0) session.socket.end();
  });
  await session.done; // the server may also end it early (QUIT)
  rl.close();
  return 0;
}

function loadHistory(): string[] {
  try {
    return readFileSync(HISTORY_FILE, 'utf8')
      .split('\n')
      .filter(Boolean)
      .reverse()
      .slice(0, HISTORY_SIZE);
  } catch {
    return [];
  }
}

async function interactive(session: Session, where: string): Promise<number> {
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    prompt: `${where}> `,
    history: loadHistory(),
    historySize: HISTORY_SIZE,
  });
  let history: string[] = [];
  rl.on('history', (h: string[]) => (history = h));
  session.onReply = (line) => {
    printReply(line);
    if (session.outstanding === 0) rl.prompt();
  };
  rl.on('line', (line) => {
    if (line.trim() === '') return rl.prompt();
    session.send(line);
  });
  rl.on('close', () => session.socket.end()); // Ctrl-D
  rl.prompt();
  await session.done;
  rl.close();
  try {
    writeFileSync(HISTORY_FILE, [...history].reverse().join('\n') + '\n');
  } catch {
    // History is a convenience; a read-only home must not fail the session.
  }
  return 0;
}

export async function client(argv: string[]): Promise<number> {
  const o = parseClientOptions(argv);
  if (o === 'help') {
    process.stdout.write(clientHelp() + '\n');
    return 0;
  }
  const session = new Session(await connect(o), o.timeoutMs);
  if (o.auth !== null) await authenticate(session, o.auth);
  if (o.command !== null) return oneShot(session, o.command);
  if (!process.stdin.isTTY) return piped(session);
  return interactive(session, formatHostPort(o.host, o.port));
}
