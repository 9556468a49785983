// tcpool/testing: a real server with your command module, on a free port, inside a test.
//
//   import { startTestServer } from 'tcpool/testing';
//   import type commands from '../src/commands.ts';
//   const server = await startTestServer<typeof commands>({ commands: new URL('../src/commands.ts',
//   import.meta.url) });
//   assert.equal(await server.client.greet('ann'), 'Hello, ann');
//   await server.stop();
import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClientOptions, createClient, type TypedClient } from '../client/index.ts';
import { configKeys } from '../config/schema.ts';

const ENTRY = fileURLToPath(
  new URL(`./serve-entry${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

export interface TestServerOptions {
  /** The command module (a path, relative to the working directory, or a file: URL). */
  commands?: string | URL;
  /** Worker threads (default 2: enough to catch per-worker state mistakes). */
  threads?: number;
  /** Any other setting, as environment variables (`{ AUTH_TOKENS: '…', COMMAND_TIMEOUT_MS: '500' }`). */
  env?: Record<string, string>;
  /** Options for `server.client` (the port is filled in). */
  client?: Omit<ClientOptions, 'port'>;
  /** Milliseconds to wait for the server to listen (default 20000). */
  startTimeoutMs?: number;
}

export interface TestServer<M> {
  readonly port: number;
  readonly host: string;
  /** A pooled client connected to the server, typed from M. */
  readonly client: TypedClient<M>;
  /** Another client (closed by stop()). */
  connect(options?: Omit<ClientOptions, 'port'>): TypedClient<M>;
  /** One line-protocol request on a new connection; resolves to the reply line. */
  line(request: string): Promise<string>;
  /** Everything the server logged so far. */
  readonly log: string;
  /** Resolves when the log matches (searching all of it), rejects after `timeoutMs`. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Graceful stop (SIGTERM: teardown hooks run), then the exit code; SIGKILL if it hangs. */
  stop(): Promise<number | null>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts `tcpool serve` on 127.0.0.1 and a free port; resolves once it listens. */
export async function startTestServer<M = unknown>(
  options: TestServerOptions = {},
): Promise<TestServer<M>> {
  const commands =
    options.commands === undefined
      ? ''
      : options.commands instanceof URL || options.commands.startsWith('file:')
        ? fileURLToPath(options.commands)
        : options.commands;
  // The developer's shell settings (AUTH_TOKENS, LOG_FILE …) must not leak into the test server.
  const inherited: NodeJS.ProcessEnv = { ...process.env };
  for (const key of configKeys) delete inherited[key];
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    PORT: '0',
    HOST: '127.0.0.1',
    THREAD_POOL_SIZE: String(options.threads ?? 2),
    COMMANDS_MODULE: commands,
    ...options.env,
  };
  const child = spawn(process.execPath, [ENTRY], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let watchers: (() => void)[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const onOutput = (d: Buffer) => {
    log += d;
    for (const w of watchers) w();
  };
  child.stdout!.on('data', onOutput);
  child.stderr!.on('data', onOutput);
  const waitForLog = (pattern: RegExp, timeoutMs = 10_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = log.match(pattern);
        if (m === null) return;
        done();
        resolve(m);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`tcpool's log did not match ${pattern} in ${timeoutMs} ms:\n${log}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        watchers = watchers.filter((w) => w !== check);
      };
      watchers.push(check);
      void exited.then(() => {
        if (log.match(pattern) === null) {
          done();
          reject(new Error(`tcpool exited before its log matched ${pattern}:\n${log}`));
        }
      });
      check();
    });
  let port: number;
  try {
    const m = await waitForLog(
      /Server listening on 127\.0\.0\.1:(\d+)/,
      options.startTimeoutMs ?? 20_000,
    );
    port = Number(m[1]);
  } catch (err) {
    kill(child);
    throw err;
  }
  const clients: { close(): Promise<void> }[] = [];
  const connect = (o: Omit<ClientOptions, 'port'> = {}) => {
    const c = createClient<M>({ size: 2, ...options.client, ...o, port });
    clients.push(c);
    return c;
  };
  const client = connect();
  const stop = async (): Promise<number | null> => {
    await Promise.all(clients.map((c) => c.close()));
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => kill(child), 15_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return {
    port,
    host: '127.0.0.1',
    client,
    connect,
    line: (request) => lineRequest(port, request),
    get log() {
      return log;
    },
    waitForLog,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Sends one line and resolves to the first reply line (without "\n"). */
function lineRequest(port: number, request: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply to ${JSON.stringify(request)} in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      const nl = data.indexOf(10);
      if (nl === -1) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(data.toString('utf8', 0, nl));
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(`${request}\n`);
  });
}
