// The connection storm under live resizing: `tcpool bench --connect-rate` (each connection
// connects, sends PING, reads PONG, closes) runs as its own process while the pool is resized
// 4 -> 1 -> 4 again and again through the admin API, and is ended (SIGINT) after the last cycle. Reports the connections made, the failed
// connects (reset, refused, closed or stalled before the reply) by reason, and error replies, for
// each net.ipv4.tcp_migrate_req setting it runs under:
//
//   npx node benchmarks/resize-storm.ts            # both settings where the sysctl can be set
//   MIGRATE_REQ=current npx node benchmarks/resize-storm.ts
//
// Options (environment): CYCLES (10), CONCURRENCY (64 connect loops), PAUSE_MS (200 between
// resizes), DRAIN_TIMEOUT_MS (1000), MIGRATE_REQ (both | current | 0 | 1; "both" runs 0 then 1 where
// /proc/sys/net/ipv4/tcp_migrate_req is writable, the current setting otherwise). The setting
// found is put back at the end.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const CYCLES = Number(process.env.CYCLES ?? 10);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const PAUSE_MS = Number(process.env.PAUSE_MS ?? 200);
/** The load's own bound (-d), should the SIGINT after the last cycle never come. */
const MAX_SECONDS = 600;
const BIN = new URL('../bin/tcpool.js', import.meta.url).pathname;
const SYSCTL = '/proc/sys/net/ipv4/tcp_migrate_req';

function readMigrate(): string {
  try {
    return readFileSync(SYSCTL, 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function setMigrate(value: string): boolean {
  try {
    writeFileSync(SYSCTL, `${value}\n`);
    return readMigrate() === value;
  } catch {
    return false;
  }
}

/** A port free a moment ago (the server logs nothing at LOG_LEVEL=WARN to learn it from). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const exited = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((r) => child.on('exit', r));

/** Stops a child by its pid: SIGTERM, then SIGKILL if it has not exited within 10 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  process.kill(child.pid!, 'SIGTERM');
  const done = await Promise.race([
    exited(child).then(() => true),
    sleep(10_000, false, { ref: false }),
  ]);
  if (!done) process.kill(child.pid!, 'SIGKILL');
}

async function resize(admin: number, size: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${admin}/api/v1/pool`, {
    method: 'PUT',
    body: JSON.stringify({ size }),
  });
  if (!res.ok) throw new Error(`resize to ${size}: ${await res.text()}`);
}

async function storm(): Promise<Record<string, unknown>> {
  const ports = { port: await freePort(), admin: await freePort() };
  const server = spawn(process.execPath, [BIN, 'serve'], {
    env: {
      ...process.env,
      PORT: String(ports.port),
      HOST: '127.0.0.1',
      ADMIN_PORT: String(ports.admin),
      THREAD_POOL_SIZE: '4',
      LOG_LEVEL: 'WARN',
      DRAIN_TIMEOUT_MS: process.env.DRAIN_TIMEOUT_MS ?? '1000',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let load: ChildProcess | null = null;
  try {
    for (let i = 0; ; i++) {
      const ready = await fetch(`http://127.0.0.1:${ports.admin}/readyz`).catch(() => null);
      if (ready?.status === 200) break;
      if (i === 100) throw new Error('the server did not become ready');
      await sleep(100);
    }
    load = spawn(
      process.execPath,
      [
        BIN,
        'bench',
        '--connect-rate',
        '--json',
        '--port',
        String(ports.port),
        '-c',
        String(CONCURRENCY),
        '-d',
        String(MAX_SECONDS),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    load.stdout!.on('data', (d: Buffer) => (out += d));
    const loadExit = exited(load);
    // The storm is under way once the server has counted some of its connections (bounded).
    const accepted = async (): Promise<number> => {
      const res = await fetch(`http://127.0.0.1:${ports.admin}/api/v1/stats`);
      return ((await res.json()) as { connections: number }).connections;
    };
    for (let i = 0; i < 100 && (await accepted()) < CONCURRENCY; i++) await sleep(20);
    const started = performance.now();
    for (let i = 0; i < CYCLES; i++) {
      await resize(ports.admin, 1);
      await sleep(PAUSE_MS);
      await resize(ports.admin, 4);
      await sleep(PAUSE_MS);
    }
    const resizeSeconds = (performance.now() - started) / 1000;
    process.kill(load.pid!, 'SIGINT');
    const code = await Promise.race([loadExit, sleep(30_000, 'stuck', { ref: false })]);
    if (code === 'stuck') throw new Error('tcpool bench did not stop on SIGINT');
    const r = JSON.parse(out) as {
      connections: number;
      failed: number;
      errorReplies: number;
      reasons: Record<string, number>;
      elapsedSeconds: number;
      perSecond: number;
    };
    return {
      tcp_migrate_req: readMigrate(),
      cycles: CYCLES,
      resizeSeconds: Number(resizeSeconds.toFixed(2)),
      loadSeconds: Number(r.elapsedSeconds.toFixed(2)),
      connections: r.connections,
      perSecond: Math.round(r.perSecond),
      failed: r.failed,
      errorReplies: r.errorReplies,
      reasons: r.reasons,
    };
  } finally {
    if (load !== null) await stop(load);
    await stop(server);
  }
}

const original = readMigrate();
const wanted = process.env.MIGRATE_REQ ?? 'both';
const settings = wanted === 'both' ? ['0', '1'] : wanted === 'current' ? [] : [wanted];
try {
  if (settings.length === 0) console.log(JSON.stringify(await storm()));
  for (const value of settings) {
    if (!setMigrate(value)) {
      console.error(`cannot set ${SYSCTL} to ${value} (it is ${original}); running as it is`);
      console.log(JSON.stringify(await storm()));
      break;
    }
    console.log(JSON.stringify(await storm()));
  }
} finally {
  if (readMigrate() !== original && original !== 'unknown') setMigrate(original);
}
