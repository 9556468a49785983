// Starts `tcpool serve` as a real child process on an ephemeral port and stops it by its pid.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { configKeys } from '../../src/config/schema.ts';

export const BIN = new URL('../../bin/tcpool.js', import.meta.url).pathname;

/** Bun's binary, from the @oven/bun-linux-x64 dev dependency. */
export const BUN = new URL('../../node_modules/@oven/bun-linux-x64/bin/bun', import.meta.url)
  .pathname;

/**
 * What runs the server under test: this Node, or Bun with TCPOOL_TEST_RUNTIME=bun (`npm run
 * test:bun`: the same integration tests against the server on Bun). The test runner stays Node.
 */
export const SERVER_RUNTIME: 'node' | 'bun' =
  process.env.TCPOOL_TEST_RUNTIME === 'bun' ? 'bun' : 'node';
export const SERVER_EXEC = SERVER_RUNTIME === 'bun' ? BUN : process.execPath;

/** A port that was free a moment ago (for listeners a test must name itself: TLS_PORT, HAProxy). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * The environment without any tcpool config key, so the developer's shell cannot leak in; the
 * admin endpoint off (its default port would be shared by every server a test starts) unless a
 * test asks for it (ADMIN_PORT: '0').
 */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of configKeys) delete env[key];
  env.ADMIN_PORT = 'off';
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `tcpool ...args` to completion (bounded by timeoutMs). */
export function runTcpool(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: cleanEnv(opts.env),
      cwd: opts.cwd ?? mkdtempSync(join(tmpdir(), 'tcpool-run-')),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `tcpool ${args.join(' ')} did not finish in time; stdout: ${stdout} stderr: ${stderr}`,
        ),
      );
    }, opts.timeoutMs ?? 15_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export class ServerProcess {
  readonly child: ChildProcess;
  port = 0;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private watchers: (() => void)[] = [];

  constructor(child: ChildProcess) {
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d;
      for (const w of this.watchers) w();
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d));
    // 'close', not 'exit': the process can exit before its last output is read, and callers
    // check the log once it has exited. A test that stopped reading stdout (paused it, to fill
    // the pipe) would never see it close: then the exit is all there is to wait for.
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal }));
      child.on('exit', (code, signal) => {
        if (child.stdout!.readableFlowing === false) resolve({ code, signal });
      });
    });
  }

  /** The process itself has ended (exited or killed), whether or not its output is all read. */
  private get gone(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits until the log matches `pattern` (searching the whole log so far). */
  waitForLog(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = this.stdout.match(pattern);
        if (m) {
          this.watchers = this.watchers.filter((w) => w !== check);
          clearTimeout(timer);
          resolve(m);
        }
        return m !== null;
      };
      const timer = setTimeout(() => {
        this.watchers = this.watchers.filter((w) => w !== check);
        reject(
          new Error(
            `log did not match ${pattern} in ${timeoutMs} ms; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
          ),
        );
      }, timeoutMs);
      if (!check()) this.watchers.push(check);
      void this.exited.then(() => {
        if (!check()) {
          clearTimeout(timer);
          reject(
            new Error(
              `server exited before its log matched ${pattern}; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
            ),
          );
        }
      });
    });
  }

  /** Sends `signal` and waits for the exit (SIGKILL after timeoutMs, which fails the caller). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000) {
    if (!this.gone) process.kill(this.pid, signal);
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      this.exited,
      new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (result === null) {
      if (this.gone)
        throw new Error(
          `server ${this.pid} exited, but its output did not end within ${timeoutMs} ms of ${signal}`,
        );
      process.kill(this.pid, 'SIGKILL');
      throw new Error(`server ${this.pid} did not exit within ${timeoutMs} ms of ${signal}`);
    }
    return result;
  }

  /**
   * For after() hooks: make sure the process is gone whatever happened in the test. SIGTERM first,
   * so the server and its workers exit through their own code (and write their coverage), then
   * SIGKILL if that has not ended it within graceMs.
   */
  async kill(graceMs = 3000): Promise<void> {
    if (this.gone) return;
    process.kill(this.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!exited && !this.gone) {
      process.kill(this.pid, 'SIGKILL');
      // The process, not its output: something it started may hold its stdout open.
      if (!this.gone) await new Promise((resolve) => this.child.once('exit', resolve));
    }
  }
}

/** Starts a server on 127.0.0.1 with PORT=0 and resolves once it listens. */
export async function startServer(
  opts: { env?: Record<string, string | undefined>; args?: string[]; cwd?: string } = {},
): Promise<ServerProcess> {
  const child = spawn(SERVER_EXEC, [BIN, 'serve', ...(opts.args ?? [])], {
    env: cleanEnv({ PORT: '0', HOST: '127.0.0.1', THREAD_POOL_SIZE: '2', ...opts.env }),
    cwd: opts.cwd ?? mkdtempSync(join(tmpdir(), 'tcpool-serve-')),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = new ServerProcess(child);
  try {
    const m = await server.waitForLog(/Server listening on \S+:(\d+)/, 20_000);
    server.port = Number(m[1]);
  } catch (err) {
    await server.kill();
    throw err;
  }
  return server;
}
