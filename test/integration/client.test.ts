// tcpool/client against real servers: typed calls from the command module's type, 10,000
// concurrent calls on a pool of 8 with the server killed and restarted in the middle (every call
// settles as documented, none hangs, no reply reaches the wrong call), timeouts, the queue
// limit, AUTH, TLS and close().
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { hashTokenSha256 } from '../../src/auth/tokens.ts';
import { type ClientError, createClient, ServerError } from '../../src/client/index.ts';
import { codes } from '../../src/errors.ts';
import { makeCerts } from '../helpers/certs.ts';
import { freePort, startServer } from '../helpers/server.ts';
import { typedCalls } from '../fixtures/typed-client-check.ts';

const MODULE = new URL('../fixtures/platform-commands.ts', import.meta.url).pathname;
const codeOf = (e: unknown) => (e as ClientError).code;

test('typed calls: the methods and reply types come from the command module', async () => {
  const server = await startServer({ env: { COMMANDS_MODULE: MODULE } });
  try {
    const typed = await typedCalls(server.port);
    assert.equal(typed.hello, 'Hello, ann lee');
    assert.equal(typed.user, 'ada');
    assert.match(String(typed.pool), /^pool of worker [01]$/);
    const client = createClient({ port: server.port, size: 1 });
    await assert.rejects(client.call('USER', 2), (e: ServerError) => {
      assert.ok(e instanceof ServerError);
      return e.code === 'NOTFOUND' && e.message === 'no user 2';
    });
    assert.deepEqual(await client.call('ROLLX').catch((e: ServerError) => e.code), 'ERR');
    await client.close();
  } finally {
    await server.kill();
  }
});

test('10,000 concurrent calls on a pool of 8, the server killed and restarted midway', async () => {
  const port = await freePort();
  const env = { PORT: String(port) };
  let server = await startServer({ env });
  const client = createClient({
    port,
    size: 8,
    timeoutMs: 8000,
    reconnect: { minDelayMs: 20, maxDelayMs: 200 },
  });
  try {
    await client.ready();
    let answered = 0;
    let killed = false;
    const calls = Array.from({ length: 10_000 }, (_, i) =>
      client.call('ECHO', `m${i}`).then((reply) => {
        // Kill the server once a third is answered: the rest are in flight or not yet sent.
        if (++answered === 3000 && !killed) {
          killed = true;
          process.kill(server.pid, 'SIGKILL');
        }
        return reply;
      }),
    );
    const t0 = Date.now();
    const first = await Promise.allSettled(calls);
    assert.ok(Date.now() - t0 < 12_000, 'every call settled within its timeout');
    const ok = first.filter((r) => r.status === 'fulfilled');
    assert.ok(ok.length >= 3000, `${ok.length} answered before the kill`);
    for (const [i, r] of first.entries()) {
      if (r.status === 'fulfilled')
        assert.equal(r.value, `m${i}`, 'each reply reaches its own call');
      else assert.equal(codeOf(r.reason), codes.ERR_CLIENT_CONNECTION_LOST, String(r.reason));
    }
    await server.exited;
    for (let i = 0; i < 200 && client.connected > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(client.connected, 0, 'the client saw every connection go');
    // Calls made while the server is down wait for it (within their timeout).
    const during = Array.from({ length: 1000 }, (_, i) => client.call('ECHO', `d${i}`));
    await new Promise((r) => setTimeout(r, 300));
    server = await startServer({ env });
    const second = await Promise.all(during);
    assert.deepEqual(
      second,
      Array.from({ length: 1000 }, (_, i) => `d${i}`),
    );
    // The other connections come back too (backoff at most 200 ms here).
    for (let i = 0; i < 200 && client.connected < 8; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(client.connected, 8);
  } finally {
    await client.close();
    await server.kill();
  }
});

test('timeouts, the queue limit and close(): refused or failed, never hanging', async (t) => {
  const server = await startServer({ env: { COMMANDS_MODULE: MODULE } });
  const client = createClient({ port: server.port, size: 1, maxQueue: 5 });
  t.after(() => client.close());
  try {
    await client.ready();
    // The late reply of a timed-out call is dropped; the next call gets its own reply.
    await assert.rejects(
      client.callWith({ timeoutMs: 20 }, 'NAP', 80),
      (e) => codeOf(e) === codes.ERR_CLIENT_TIMEOUT,
    );
    assert.equal(await client.call('ECHO', 'after'), 'after');
    const five = Array.from({ length: 5 }, () => client.call('NAP', 30));
    await assert.rejects(client.call('PING'), (e) => codeOf(e) === codes.ERR_CLIENT_QUEUE_FULL);
    assert.deepEqual(await Promise.all(five), Array(5).fill('slept 30'));
    const pending = assert.rejects(
      client.call('NAP', 90),
      (e) => codeOf(e) === codes.ERR_CLIENT_CLOSED,
    );
    await client.close();
    await pending;
    await assert.rejects(client.call('PING'), (e) => codeOf(e) === codes.ERR_CLIENT_CLOSED);
  } finally {
    await server.kill();
  }
});

test('a step of the wall clock neither times calls out nor keeps them waiting', async (t) => {
  const server = await startServer({ env: { COMMANDS_MODULE: MODULE } });
  const client = createClient({ port: server.port, size: 1, timeoutMs: 3000 });
  const realNow = Date.now;
  t.after(async () => {
    Date.now = realNow;
    await client.close();
    await server.kill();
  });
  await client.ready();
  const step = (ms: number): void => {
    Date.now = () => realNow.call(Date) + ms;
  };
  // An hour forward while a call waits: it is answered, not timed out.
  const answered = client.call('NAP', 60);
  step(3_600_000);
  assert.equal(await answered, 'slept 60');
  // An hour back while a call waits: it times out after its own 20 ms, before its reply (80 ms).
  const late = client.callWith({ timeoutMs: 20 }, 'NAP', 80);
  step(-3_600_000);
  await assert.rejects(late, (e) => codeOf(e) === codes.ERR_CLIENT_TIMEOUT);
});

test('a server that is not there: calls time out, ready() rejects', async () => {
  const client = createClient({
    port: await freePort(),
    size: 2,
    timeoutMs: 150,
    connectTimeoutMs: 150,
  });
  const t0 = Date.now();
  await assert.rejects(client.call('PING'), (e) => codeOf(e) === codes.ERR_CLIENT_TIMEOUT);
  await assert.rejects(client.ready(100), (e) => codeOf(e) === codes.ERR_CLIENT_CONNECT);
  assert.ok(Date.now() - t0 < 2000);
  await client.close();
});

test('AUTH with HELLO, and a wrong password reported at once', async (t) => {
  const server = await startServer({ env: { AUTH_TOKENS: hashTokenSha256('sesame') } });
  try {
    const good = createClient({ port: server.port, password: 'sesame', size: 2 });
    t.after(() => good.close());
    assert.equal(await good.call('PING'), 'PONG');
    await good.close();
    const bad = createClient({ port: server.port, password: 'nope', size: 1, timeoutMs: 3000 });
    t.after(() => bad.close());
    const t0 = Date.now();
    await assert.rejects(bad.call('PING'), (e: ServerError) => e.code === 'WRONGPASS');
    assert.ok(Date.now() - t0 < 2000, 'not left to time out');
    await bad.close();
  } finally {
    await server.kill();
  }
});

test('TLS', async () => {
  const certs = makeCerts();
  const tlsPort = await freePort();
  const server = await startServer({
    env: { TLS_PORT: String(tlsPort), TLS_CERT: certs.serverCert, TLS_KEY: certs.serverKey },
  });
  try {
    const client = createClient({
      port: tlsPort,
      tls: { ca: readFileSync(certs.ca), servername: 'localhost' },
      size: 2,
    });
    assert.equal(await client.call('ECHO', Buffer.from('over tls')), 'over tls');
    await client.close();
  } finally {
    await server.kill();
  }
});

test('subscribe: messages from any worker in order, and again after the server restarts', async (t) => {
  const port = await freePort();
  let server = await startServer({ env: { PORT: String(port), THREAD_POOL_SIZE: '2' } });
  const client = createClient({ port, size: 2, reconnect: { minDelayMs: 20, maxDelayMs: 100 } });
  t.after(async () => {
    await client.close();
    await server.kill();
  });
  const got: string[] = [];
  let wake = () => {};
  const unsubscribe = await client.subscribe('news', (m, ch) => {
    got.push(`${ch}:${m}`);
    wake();
  });
  const until = async (n: number) => {
    for (let i = 0; i < 300 && got.length < n; i++)
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 10);
      });
  };
  // Other connections of the pool publish (possibly from the other worker).
  for (let i = 0; i < 200 && (await client.call('PUBLISH', 'news', 'probe')) === 0; i++)
    await new Promise((r) => setTimeout(r, 10));
  await until(1);
  got.length = 0;
  for (let i = 0; i < 50; i++) await client.call('PUBLISH', 'news', `m${i}`);
  await until(50);
  for (let i = 0; i < 300 && got.filter((m) => m !== 'news:probe').length < 50; i++)
    await new Promise((r) => setTimeout(r, 10));
  // A probe published before the count reached its worker can still arrive late: it is not one
  // of the 50 whose order is checked.
  assert.deepEqual(
    got.filter((m) => m !== 'news:probe'),
    Array.from({ length: 50 }, (_, i) => `news:m${i}`),
  );

  process.kill(server.pid, 'SIGKILL');
  await server.exited;
  server = await startServer({ env: { PORT: String(port), THREAD_POOL_SIZE: '2' } });
  got.length = 0;
  let reached = 0;
  for (let i = 0; i < 300 && reached === 0; i++) {
    reached = (await client.call('PUBLISH', 'news', 'back').catch(() => 0)) as number;
    if (reached === 0) await new Promise((r) => setTimeout(r, 20));
  }
  await until(1);
  assert.equal(got[0], 'news:back', 'subscribed again after the reconnect');
  await unsubscribe();
  assert.equal(await client.call('PUBLISH', 'news', 'gone'), 0);
});
