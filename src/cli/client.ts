// `tcpool client`: one command, piped commands, or an interactive prompt.
import { createConnection, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { TcpoolError } from '../errors.ts';
import { LineDecoder } from '../protocol/line.ts';
import { clientHelp } from './help.ts';
import { type Parsed, parseOptions } from './options.ts';
import { formatHostPort } from '../net/address.ts';

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
};

const HISTORY_FILE = join(homedir(), '.tcpool_history');
const HISTORY_SIZE = 1000;
const MAX_REPLY_BYTES = 256 * 1024 * 1024;

class ClientError extends Error {}

/** Connects, or rejects with "Could not connect to host:port: reason". */
function connect(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port, noDelay: true });
    const where = formatHostPort(host, port);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ClientError(`Could not connect to ${where}: timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new ClientError(`Could not connect to ${where}: ${REASONS[err.code ?? ''] ?? err.message}`),
      );
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
    this.done = new Promise((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        this.decoder.push(chunk);
        for (let line = this.decoder.next(); line !== null; line = this.decoder.next()) {
          if (!(line instanceof Buffer)) return reject(new ClientError('Reply too long'));
          this.outstanding--;
          this.onReply(line);
        }
        socket.setTimeout(this.outstanding > 0 ? timeoutMs : 0);
      });
      socket.on('timeout', () => {
        socket.destroy();
        reject(new ClientError(`No reply within ${timeoutMs} ms`));
      });
      socket.on('error', (err: NodeJS.ErrnoException) =>
        reject(new ClientError(`Connection lost: ${REASONS[err.code ?? ''] ?? err.message}`)),
      );
      socket.on('close', () => {
        this.closed = true;
        resolve();
      });
    });
    this.timeoutMs = timeoutMs;
  }

  send(line: string): void {
    this.outstanding++;
    this.socket.setTimeout(this.timeoutMs);
    this.socket.write(line + '\n');
  }
}

function printReply(line: Buffer): void {
  process.stdout.write(Buffer.concat([line, Buffer.from('\n')]));
}

async function oneShot(session: Session, command: string): Promise<number> {
  let got = false;
  session.onReply = (line) => {
    got = true;
    printReply(line);
    session.socket.end();
  };
  session.send(command);
  await session.done;
  if (!got) throw new ClientError('The server closed the connection without replying');
  return 0;
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
  let values: Parsed['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parseOptions(
      argv,
      {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8080' },
        timeout: { type: 'string', default: '5000' },
        help: { type: 'boolean', short: 'h' },
      },
      'client',
    ));
  } catch (err) {
    if (!(err instanceof TcpoolError)) throw err;
    process.stderr.write(`tcpool: ${err.message}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(clientHelp() + '\n');
    return 0;
  }
  const host = values.host as string;
  const port = Number(values.port);
  const timeout = Number(values.timeout);
  if (!/^[0-9]+$/.test(values.port as string) || port > 65535) {
    process.stderr.write(
      `tcpool: Invalid --port "${values.port}": must be an integer from 0 to 65535\n`,
    );
    return 2;
  }
  if (!/^[0-9]+$/.test(values.timeout as string) || timeout < 1) {
    process.stderr.write(
      `tcpool: Invalid --timeout "${values.timeout}": must be a positive integer (milliseconds)\n`,
    );
    return 2;
  }
  try {
    const socket = await connect(host, port, timeout);
    const session = new Session(socket, timeout);
    if (positionals.length > 0) return await oneShot(session, positionals.join(' '));
    if (!process.stdin.isTTY) return await piped(session);
    return await interactive(session, formatHostPort(host, port));
  } catch (err) {
    if (!(err instanceof ClientError)) throw err;
    process.stderr.write(`tcpool: ${err.message}\n`);
    return 1;
  }
}
