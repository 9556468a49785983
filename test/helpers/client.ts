// A raw TCP test client with its own, deliberately simple framing (independent of src/protocol).
import { createConnection, type Socket } from 'node:net';

export class TestClient {
  readonly socket: Socket;
  private data = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.wake();
    });
    socket.on('error', () => {});
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static connect(port: number, host = '127.0.0.1', timeoutMs = 5000): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ port, host, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new TestClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /**
   * Connects once the server serves: a connection refused, or one reset before PONG (the
   * supervisor's exclusive port probe accepts for a moment at start-up), is tried again, every
   * 100 ms, up to `tries` times. For servers that announce no port (LOG_LEVEL=ERROR).
   */
  static async whenServing(port: number, host = '127.0.0.1', tries = 100): Promise<TestClient> {
    let last: unknown;
    for (let i = 0; i < tries; i++) {
      const c = await TestClient.connect(port, host).catch((err: unknown) => {
        last = err;
        return null;
      });
      if (c !== null) {
        try {
          if ((await c.request('PING')) === 'PONG') return c;
        } catch (err) {
          last = err;
        }
        c.close();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${host}:${port} did not answer PING in ${tries} tries: ${String(last)}`);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Bytes received and not yet consumed. */
  get received(): Buffer {
    return this.data;
  }

  private async until(ready: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.closed)
        throw new Error(
          `connection closed while waiting for ${what}; had ${JSON.stringify(this.data.toString('latin1'))}`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for ${what}; had ${JSON.stringify(this.data.toString('latin1').slice(0, 200))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Exactly `n` bytes, raw. */
  async readBytes(n: number, timeoutMs = 5000): Promise<Buffer> {
    await this.until(() => this.data.length >= n, `${n} bytes`, timeoutMs);
    const out = this.data.subarray(0, n);
    this.data = this.data.subarray(n);
    return out;
  }

  /** The next line without its "\n", as raw bytes. */
  async readLineBytes(timeoutMs = 5000): Promise<Buffer> {
    await this.until(() => this.data.includes(10), 'a line', timeoutMs);
    const nl = this.data.indexOf(10);
    const line = this.data.subarray(0, nl);
    this.data = this.data.subarray(nl + 1);
    return line;
  }

  async readLine(timeoutMs = 5000): Promise<string> {
    return (await this.readLineBytes(timeoutMs)).toString('utf8');
  }

  async readLines(n: number, timeoutMs = 10_000): Promise<string[]> {
    const lines: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < n; i++) lines.push(await this.readLine(Math.max(1, deadline - Date.now())));
    return lines;
  }

  /** Sends one line and returns the one reply line. */
  async request(line: string, timeoutMs = 5000): Promise<string> {
    this.write(line + '\n');
    return this.readLine(timeoutMs);
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.until(() => this.closed, 'the server to close the connection', timeoutMs).catch(
      (err: Error) => {
        if (!this.closed) throw err;
      },
    );
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Parses `STATS FULL` into numbers; per-worker figures as workers[i] = {active, connections, commands, rejected}. */
export function parseStatsFull(line: string) {
  const fields = Object.fromEntries(line.split(' ').map((kv) => kv.split('=')));
  const workers: { active: number; connections: number; commands: number; rejected: number }[] = [];
  for (let i = 0; `w${i}` in fields; i++) {
    const [active, connections, commands, rejected] = fields[`w${i}`].split('/').map(Number);
    workers.push({ active, connections, commands, rejected });
  }
  const n = (k: string) => Number(fields[k]);
  return {
    active: n('active'),
    connections: n('connections'),
    commands: n('commands'),
    rejected: n('rejected'),
    restarts: n('restarts'),
    worker: n('worker'),
    workers,
  };
}
