// Shared by the stress probes (test/stress/): a server under a chosen `ulimit -n`, its memory, raw
// sockets that record what happened to them, and the one STRESS line each probe prints.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStatsFull, TestClient } from './client.ts';
import { BIN, cleanEnv, freePort, ServerProcess } from './server.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `tcpool serve` on 127.0.0.1 in a shell that first sets `ulimit -n nofile`. LOG_LEVEL=WARN keeps a
 * probe's hundred thousand "Client connected" lines out of the way (and "Server listening" with
 * them), so the port is chosen here and the server is ready once every worker answers.
 */
export async function startWithUlimit(
  nofile: number,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(
    'sh',
    ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, process.execPath, BIN, 'serve'],
    {
      env: cleanEnv({
        PORT: String(port),
        HOST: '127.0.0.1',
        THREAD_POOL_SIZE: '2',
        LOG_LEVEL: 'WARN',
        ...env,
      }),
      cwd: mkdtempSync(join(tmpdir(), 'tcpool-stress-')),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const server = new ServerProcess(child);
  server.port = port;
  // Ready once every worker serves (the supervisor's exclusive probe of the port accepts for a
  // moment before any worker listens): STATS FULL names the worker that answers it, and
  // connections are spread over the workers that listen, so ask until each one has answered.
  try {
    const pool = Number(env.THREAD_POOL_SIZE ?? 2);
    const answered = new Set<number>();
    const deadline = Date.now() + 20_000;
    while (answered.size < pool) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`${answered.size} of ${pool} workers answered`);
      const c = await TestClient.whenServing(port, '127.0.0.1', 200);
      answered.add(parseStatsFull(await c.request('STATS FULL')).worker);
      c.close();
    }
  } catch (err) {
    await server.kill();
    throw new Error(
      `server did not start (${String(err)}); stdout: ${server.stdout} stderr: ${server.stderr}`,
    );
  }
  return server;
}

/** Resident memory of a process, in MB. */
export function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
  return Math.round(Number(kb) / 1024);
}

/** A raw socket that records what it received, any error, and whether it closed. */
export interface Peer {
  socket: Socket;
  chunks: Buffer[];
  bytes: number;
  error: NodeJS.ErrnoException | null;
  closed: boolean;
  done: Promise<void>;
  text(): string;
}

export function peer(port: number, keep = true): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    const p: Peer = {
      socket,
      chunks: [],
      bytes: 0,
      error: null,
      closed: false,
      done: new Promise((r) => socket.on('close', () => r())),
      text: () => Buffer.concat(p.chunks).toString('latin1'),
    };
    socket.on('close', () => (p.closed = true));
    socket.on('data', (d: Buffer) => {
      p.bytes += d.length;
      if (keep) p.chunks.push(d);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (p.error = err));
    socket.once('connect', () => resolve(p));
    socket.once('error', reject);
  });
}

/** Resolves once `ready()` holds, polling; rejects after `ms`. */
export async function until(ready: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

/** The probe's one line of figures. */
export function report(name: string, figures: Record<string, string | number>): void {
  const kv = Object.entries(figures).map(([k, v]) => `${k}=${v}`);
  console.log(`STRESS ${name}: ${kv.join(' ')}`);
}

/** STATS FULL as numbers by name, asked on a fresh connection. */
export async function statsFull(port: number): Promise<Record<string, number>> {
  const p = await peer(port);
  p.socket.write('STATS FULL\n');
  await until(() => p.text().includes('\n'), 5000, 'STATS FULL');
  p.socket.destroy();
  return Object.fromEntries(
    p
      .text()
      .trim()
      .split(' ')
      .map((kv) => kv.split('='))
      .filter(([, v]) => v !== undefined && /^-?\d+$/.test(v))
      .map(([k, v]) => [k, Number(v)]),
  );
}
