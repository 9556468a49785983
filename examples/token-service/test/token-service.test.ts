// The token service against a real Redis store (a redis-server this test starts and stops):
// valid, invalid and under-scoped keys, the per-worker cache and its TTL, the metrics, and the
// store going away (cached keys still answer, others fail fast with UNAVAILABLE) and coming back.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import type { ServerError } from 'tcpool/client';
import { startTestServer, type TestServer } from 'tcpool/testing';
import type commands from '../src/commands.ts';

const found = spawnSync('sh', ['-c', 'command -v redis-server']).status === 0;
if (!found && process.env.CI)
  throw new Error('redis-server is not installed (apt-get install redis-server)');
const skip = found ? false : 'redis-server not installed (apt-get install redis-server)';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

/** A throwaway redis-server: no persistence, loopback only. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const probe = new Redis({
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {}); // refused until redis-server listens: retried below
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  probe.disconnect();
  return child;
}

const stopRedis = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

let redisPort: number;
let redis: ChildProcess;
let service: TestServer<typeof commands>;

before(async () => {
  if (skip) return;
  redisPort = await freePort();
  redis = await startRedis(redisPort);
  const seed = new Redis({ port: redisPort });
  const hash = (k: string) => createHash('sha256').update(k).digest('hex');
  await seed.hset(`apikey:${hash('key-ada')}`, { owner: 'ada', scopes: 'read,write' });
  await seed.hset(`apikey:${hash('key-bob')}`, { owner: 'bob', scopes: 'read' });
  seed.disconnect();
  service = await startTestServer<typeof commands>({
    commands: new URL('../src/commands.ts', import.meta.url),
    threads: 1, // one worker, so the cache this test fills is the one it reads
    env: {
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      CACHE_TTL_MS: '60000',
      STORE_TIMEOUT_MS: '300',
    },
  });
});
after(async () => {
  await service?.stop();
  if (redis) await stopRedis(redis);
});

test('valid, invalid and under-scoped keys', { skip }, async () => {
  assert.deepEqual(await service.client.validate('key-ada'), {
    owner: 'ada',
    scopes: 'read,write',
  });
  assert.deepEqual(await service.client.validate('key-bob', 'read'), {
    owner: 'bob',
    scopes: 'read',
  });
  await assert.rejects(
    service.client.validate('key-bob', 'write'),
    (e: ServerError) => e.code === 'INVALID',
  );
  await assert.rejects(
    service.client.validate('nope'),
    (e: ServerError) => e.code === 'INVALID' && e.message === 'unknown API key',
  );
  assert.equal(await service.line('VALIDATE nope'), 'ERROR: unknown API key');
  assert.equal(await service.line('VALIDATE key-ada'), 'owner=ada scopes=read,write');
  const m = (await service.client.metrics()) as Record<string, unknown>;
  assert.equal(m.lookups, 6);
  assert.equal(m.cache_misses, 3, 'one store lookup per key, the rest from the cache');
  assert.equal(m.cache_hits, 3);
  assert.equal(m.invalid, 3);
  assert.equal(m.store, 'ready');
});

test('the store goes away: cached keys still answer, others fail fast; then it comes back', {
  skip,
}, async () => {
  await stopRedis(redis);
  const t0 = Date.now();
  assert.deepEqual(await service.client.validate('key-ada'), {
    owner: 'ada',
    scopes: 'read,write',
  });
  await assert.rejects(
    service.client.validate('key-new'),
    (e: ServerError) => e.code === 'UNAVAILABLE',
  );
  assert.equal(await service.line('VALIDATE key-new2'), 'ERROR: the key store cannot be reached');
  assert.ok(Date.now() - t0 < 2000, 'no lookup waits for the missing store');
  assert.ok(((await service.client.metrics()) as { store_errors: number }).store_errors >= 2);

  redis = await startRedis(redisPort);
  const seed = new Redis({ port: redisPort });
  await seed.hset(`apikey:${createHash('sha256').update('key-new').digest('hex')}`, {
    owner: 'cy',
    scopes: '',
  });
  seed.disconnect();
  // ioredis in the service reconnects on its own (backoff up to 1 s).
  let reply: unknown = null;
  for (let i = 0; i < 50 && reply === null; i++) {
    reply = await service.client.validate('key-new').catch(() => null);
    if (reply === null) await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(reply, { owner: 'cy', scopes: '' });
  assert.equal(((await service.client.metrics()) as { store: string }).store, 'ready');
});
