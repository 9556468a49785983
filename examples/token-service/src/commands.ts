// An API-key validation service: keys live in a Redis store (opened once per worker in setup),
// answers are cached per worker for CACHE_TTL_MS, and the service counts what it does.
//
// Settings (environment): REDIS_URL (default redis://127.0.0.1:6379), CACHE_TTL_MS (default
// 30000), STORE_TIMEOUT_MS (default 500: a lookup gives up on the store after this long).
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { CommandError, defineCommand, defineModule, RespMap } from 'tcpool';

interface KeyInfo {
  owner: string;
  scopes: string[];
}
interface Cached {
  info: KeyInfo | null; // null: the store said "no such key" (cached too, so guessing is cheap)
  expires: number;
}

const TTL_MS = Number(process.env.CACHE_TTL_MS ?? 30_000);
const STORE_TIMEOUT_MS = Number(process.env.STORE_TIMEOUT_MS ?? 500);

// Per worker: each worker thread loads this module itself.
let store: Redis | null = null;
let worker = -1;
const cache = new Map<string, Cached>();
const metrics = { lookups: 0, cache_hits: 0, cache_misses: 0, store_errors: 0, invalid: 0 };

/** Keys are stored by their SHA-256, never in clear. */
const digest = (key: string) => createHash('sha256').update(key).digest('hex');

async function fromStore(hash: string): Promise<KeyInfo | null> {
  if (store === null || store.status !== 'ready')
    throw new Error(`store ${store?.status ?? 'closed'}`);
  const fields = await store.hgetall(`apikey:${hash}`);
  if (fields.owner === undefined) return null;
  return { owner: fields.owner, scopes: (fields.scopes ?? '').split(',').filter(Boolean) };
}

async function lookup(key: string): Promise<KeyInfo | null> {
  metrics.lookups++;
  const hash = digest(key);
  const hit = cache.get(hash);
  if (hit !== undefined && hit.expires > Date.now()) {
    metrics.cache_hits++;
    return hit.info;
  }
  metrics.cache_misses++;
  let info: KeyInfo | null;
  try {
    info = await fromStore(hash);
  } catch {
    metrics.store_errors++;
    throw new CommandError('UNAVAILABLE', 'the key store cannot be reached', { status: 503 });
  }
  cache.set(hash, { info, expires: Date.now() + TTL_MS });
  return info;
}

export default defineModule({
  async setup(w) {
    worker = w.id;
    store = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
      // Fail fast while the store is away (the cache keeps serving), reconnect in the background.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: STORE_TIMEOUT_MS,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      lazyConnect: true,
    });
    store.on('error', () => {}); // counted per lookup; ioredis reconnects by itself
    await store.connect(); // a store that is down at start-up stops start-up, naming this module
    w.log.info(`token-service: store connected in worker ${w.id}`);
  },
  async teardown() {
    await store?.quit().catch(() => store?.disconnect());
    store = null;
  },
  commands: [
    defineCommand({
      name: 'VALIDATE',
      summary: 'Checks an API key: its owner and scopes, or INVALID.',
      args: [
        { name: 'key', type: 'string', maxLength: 256 },
        { name: 'scope', type: 'string', optional: true, maxLength: 64 },
      ],
      run: async (_ctx, { key, scope }) => {
        const info = await lookup(key);
        if (info === null || (scope !== undefined && !info.scopes.includes(scope))) {
          metrics.invalid++;
          throw new CommandError(
            'INVALID',
            scope === undefined ? 'unknown API key' : `key lacks scope ${scope}`,
            {
              status: 401,
            },
          );
        }
        return RespMap.from({ owner: info.owner, scopes: info.scopes.join(',') });
      },
    }),
    defineCommand({
      name: 'FORGET',
      summary: "Drops this worker's cached answer for a key (after revoking it in the store).",
      args: [{ name: 'key', type: 'string', maxLength: 256 }],
      run: (_ctx, { key }) => (cache.delete(digest(key)) ? 1 : 0),
    }),
    defineCommand({
      name: 'METRICS',
      summary:
        "This worker's counters: lookups, cache hits and misses, store errors, invalid keys.",
      run: () =>
        RespMap.from({
          worker,
          ...metrics,
          cache_size: cache.size,
          store: store?.status ?? 'closed',
        }),
    }),
  ],
});
