// The connection storm under live resizing: a storm of new connections (each connects, sends
// PING, reads PONG, closes) while the pool is resized 4 -> 1 -> 4 again and again through the
// admin API. Reports connections made, and failed ones (reset, refused, or closed without a
// reply), for the kernel's current net.ipv4.tcp_migrate_req; run it under both settings:
//
//   sysctl -w net.ipv4.tcp_migrate_req=0; npx node benchmarks/resize-storm.ts
//   sysctl -w net.ipv4.tcp_migrate_req=1; npx node benchmarks/resize-storm.ts
//
// Options (environment): CYCLES (10), CONCURRENCY (64 connection loops), PAUSE_MS (200 between
// resizes), DRAIN_TIMEOUT_MS (1000).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createConnection, createServer } from 'node:net';

const CYCLES = Number(process.env.CYCLES ?? 10);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const PAUSE_MS = Number(process.env.PAUSE_MS ?? 200);
const BIN = new URL('../bin/tcpool.js', import.meta.url).pathname;

const migrate = (() => {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
  } catch {
    return 'unknown';
  }
})();

/** A port free a moment ago (the server logs nothing at LOG_LEVEL=WARN to learn it from). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

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
for (let i = 0; ; i++) {
  const ready = await fetch(`http://127.0.0.1:${ports.admin}/readyz`).catch(() => null);
  if (ready?.status === 200) break;
  if (i === 100) throw new Error('the server did not become ready');
  await new Promise((r) => setTimeout(r, 100));
}

let ok = 0;
let failed = 0;
const reasons = new Map<string, number>();
let stop = false;

function once(): Promise<void> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port: ports.port });
    let answered = false;
    const fail = (why: string): void => {
      if (answered) return;
      answered = true;
      failed++;
      reasons.set(why, (reasons.get(why) ?? 0) + 1);
      s.destroy();
      resolve();
    };
    s.setTimeout(5000, () => fail('timeout'));
    s.on('connect', () => s.write('PING\n'));
    s.on('data', (d) => {
      if (answered || !d.toString().startsWith('PONG')) return;
      answered = true;
      ok++;
      s.end();
      resolve();
    });
    s.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
    s.on('close', () => fail('closed without a reply'));
  });
}

async function loop(): Promise<void> {
  while (!stop) await once();
}

async function resize(size: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${ports.admin}/api/v1/pool`, {
    method: 'PUT',
    body: JSON.stringify({ size }),
  });
  if (!res.ok) throw new Error(`resize to ${size}: ${await res.text()}`);
}

const started = performance.now();
const loops = Array.from({ length: CONCURRENCY }, loop);
for (let i = 0; i < CYCLES; i++) {
  await resize(1);
  await new Promise((r) => setTimeout(r, PAUSE_MS));
  await resize(4);
  await new Promise((r) => setTimeout(r, PAUSE_MS));
}
stop = true;
await Promise.all(loops);
const seconds = (performance.now() - started) / 1000;
server.kill('SIGTERM');
console.log(
  JSON.stringify({
    tcp_migrate_req: migrate,
    cycles: CYCLES,
    seconds: Number(seconds.toFixed(2)),
    connections: ok + failed,
    perSecond: Math.round((ok + failed) / seconds),
    failed,
    reasons: Object.fromEntries(reasons),
  }),
);
