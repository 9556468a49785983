// RESP compatibility with what real clients send beyond plain arrays: inline requests and blank
// lines on a RESP connection (redis-cli --pipe), MULTI/EXEC (ioredis multi(), redis-py's default
// pipeline), the INFO sections clients read (Valkey GLIDE, redis-cli --stat).
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { GlideClient, Batch } from '@valkey/valkey-glide';
import { Redis } from 'ioredis';
import { hashTokenSha256 } from '../../src/auth/tokens.ts';
import { encodeRespRequest } from '../../src/protocol/resp.ts';
import { TestClient } from '../helpers/client.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

const run = promisify(execFile);
const servers: ServerProcess[] = [];
let server: ServerProcess;
before(async () => {
  server = await startServer({ env: { THREAD_POOL_SIZE: '2' } });
  servers.push(server);
});
after(async () => {
  await Promise.all(servers.map((s) => s.kill()));
});
async function start(env: Record<string, string>): Promise<ServerProcess> {
  const s = await startServer({ env });
  servers.push(s);
  return s;
}

const resp = (...args: string[]) => encodeRespRequest(args);

/**
 * Real peers are installed by .ci/run; in CI their absence fails the tests instead of skipping
 * them.
 */
function peer(what: string, found: boolean, install: string): { skip: string | false } {
  if (!found && process.env.CI) throw new Error(`${what} is not installed (${install})`);
  return { skip: found ? false : `${what} not installed (${install})` };
}
const has = (cmd: string) => spawnSync('sh', ['-c', cmd]).status === 0;
/** Debian's python3 with python3-redis (a pyenv python3 on PATH may lack it). */
const PYTHON = ['/usr/bin/python3', 'python3'].find((p) =>
  has(`${p} -c 'import redis' 2>/dev/null`),
);

async function expectBytes(c: TestClient, expected: string): Promise<void> {
  assert.equal((await c.readBytes(Buffer.byteLength(expected))).toString(), expected);
}

describe('inline requests on a RESP connection (as Redis: per request, not per connection)', () => {
  test('an inline request gets a RESP reply; blank lines are skipped; quotes as in Redis', async () => {
    const c = await TestClient.connect(server.port);
    c.write(resp('PING'));
    await expectBytes(c, '+PONG\r\n');
    c.write('\r\n\nPING\r\n  \r\nECHO "a b" \'c\'\r\nECHO "x\\x41y"\r\nECHO\r\n');
    await expectBytes(
      c,
      "+PONG\r\n-ERR wrong number of arguments for 'echo' command\r\n$3\r\nxAy\r\n-ERR wrong number of arguments for 'echo' command\r\n",
    );
    c.write(
      Buffer.concat([Buffer.from('ECHO hi\r\n'), resp('ECHO', 'arr'), Buffer.from('PING\n')]),
    );
    await expectBytes(c, '$2\r\nhi\r\n$3\r\narr\r\n+PONG\r\n');
    c.write('ECHO "open\r\n');
    await expectBytes(c, '-ERR Protocol error: unbalanced quotes in request\r\n');
    await c.waitClosed();

    const line = await TestClient.connect(server.port);
    assert.equal(
      await line.request('PING'),
      'PONG',
      'a first inline byte still means the line protocol',
    );
    assert.equal(await line.request('MULTI'), 'ERROR: Unknown command');
    line.close();
  });

  test(
    'redis-cli --pipe: 10,000 commands, arrays and inline, with blank lines',
    peer('redis-cli', has('command -v redis-cli'), 'apt-get install redis-tools'),
    async () => {
      let input = '';
      for (let i = 0; i < 10_000; i++) {
        input +=
          i % 2 === 0
            ? encodeRespRequest(['ECHO', `m${i}`]).toString()
            : `ECHO "m ${i}"\r\n${i % 3 === 0 ? '\r\n' : ''}`;
      }
      const child = execFile(
        'redis-cli',
        ['-h', '127.0.0.1', '-p', String(server.port), '--pipe'],
        {
          timeout: 30_000,
        },
      );
      child.stdin!.end(input);
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const code = await new Promise((resolve) => child.on('close', resolve));
      assert.match(out, /errors: 0, replies: 10000/, out);
      assert.equal(code, 0);
    },
  );
});

describe('MULTI / EXEC / DISCARD', () => {
  test("Redis's replies: QUEUED, the array of results in order (async ones too), nested MULTI, WATCH", async () => {
    const c = await TestClient.connect(server.port);
    c.write(
      Buffer.concat([
        resp('MULTI'),
        resp('PING'),
        resp('CLIENT', 'LIST'),
        resp('ECHO', 'x'),
        resp('MULTI'),
        resp('WATCH', 'k'),
        resp('EXEC'),
      ]),
    );
    await expectBytes(
      c,
      '+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n-ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n*3\r\n+PONG\r\n',
    );
    const header = await c.readLine();
    assert.match(header, /^\$\d+\r$/);
    const list = (await c.readBytes(Number(header.slice(1, -1)) + 2)).toString();
    assert.match(list, /^id=\d+ .* cmd=exec .*proto=resp/);
    await expectBytes(c, '$1\r\nx\r\n');
    c.write(
      Buffer.concat([resp('MULTI'), resp('PING'), resp('DISCARD'), resp('EXEC'), resp('DISCARD')]),
    );
    await expectBytes(
      c,
      '+OK\r\n+QUEUED\r\n+OK\r\n-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n',
    );
    c.write(Buffer.concat([resp('MULTI'), resp('EXEC')]));
    await expectBytes(c, '+OK\r\n*0\r\n');
    c.close();
  });

  test('an error while queueing aborts EXEC (EXECABORT); so does a refused EXEC', async () => {
    const c = await TestClient.connect(server.port);
    c.write(
      Buffer.concat([
        resp('MULTI'),
        resp('ECHO'),
        resp('PING'),
        resp('EXEC'),
        resp('MULTI'),
        resp('NOSUCH', 'a'),
        resp('EXEC'),
        resp('MULTI'),
        resp('EXEC', 'x'),
        resp('EXEC'),
        resp('PING'),
      ]),
    );
    await expectBytes(
      c,
      "+OK\r\n-ERR wrong number of arguments for 'echo' command\r\n+QUEUED\r\n" +
        '-EXECABORT Transaction discarded because of previous errors.\r\n' +
        "+OK\r\n-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n" +
        '-EXECABORT Transaction discarded because of previous errors.\r\n' +
        "+OK\r\n-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n" +
        '-ERR EXEC without MULTI\r\n+PONG\r\n',
    );
    c.close();
  });

  test('RATE_LIMIT is taken per queued command; AUTH inside MULTI runs at EXEC, in order', async () => {
    const limited = await start({ RATE_LIMIT: '5', RATE_LIMIT_BURST: '5', THREAD_POOL_SIZE: '1' });
    const c = await TestClient.connect(limited.port);
    c.write(
      Buffer.concat([
        resp('MULTI'),
        ...Array.from({ length: 5 }, () => resp('PING')),
        resp('EXEC'),
      ]),
    );
    await expectBytes(
      c,
      `+OK\r\n${'+QUEUED\r\n'.repeat(4)}-ERR rate limit exceeded\r\n` +
        '-EXECABORT Transaction discarded because of: rate limit exceeded\r\n',
    );
    c.close();

    const token = 'multi-token';
    const authed = await start({ AUTH_TOKENS: hashTokenSha256(token), THREAD_POOL_SIZE: '1' });
    const a = await TestClient.connect(authed.port);
    a.write(resp('MULTI'));
    await expectBytes(a, '-NOAUTH Authentication required.\r\n');
    a.write(
      Buffer.concat([
        resp('AUTH', token),
        resp('MULTI'),
        resp('AUTH', 'wrong'),
        resp('PING'),
        resp('EXEC'),
      ]),
    );
    await expectBytes(
      a,
      '+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+PONG\r\n',
    );
    a.close();
  });

  test('the queue is bounded like one request (MAX_REQUEST_BYTES), then the connection closes', async () => {
    const small = await start({
      MAX_BULK_BYTES: '1000',
      MAX_REQUEST_BYTES: '1000',
      THREAD_POOL_SIZE: '1',
    });
    const c = await TestClient.connect(small.port);
    const other = await TestClient.connect(small.port);
    c.write(
      Buffer.concat([
        resp('MULTI'),
        resp('ECHO', 'a'.repeat(600)),
        resp('ECHO', 'b'.repeat(600)),
        resp('PING'),
      ]),
    );
    await expectBytes(
      c,
      '+OK\r\n+QUEUED\r\n-ERR Protocol error: transaction larger than MAX_REQUEST_BYTES\r\n',
    );
    await c.waitClosed();
    other.write(resp('PING'));
    await expectBytes(other, '+PONG\r\n');
    other.close();
  });

  test('ioredis multi(): results in order, CLIENT LIST included; a queueing error rejects exec()', async () => {
    const redis = new Redis({
      port: server.port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    await redis.connect();
    try {
      const results = await redis.multi().ping().echo('one').client('LIST').echo('two').exec();
      assert.equal(results!.length, 4);
      assert.deepEqual(results![0], [null, 'PONG']);
      assert.deepEqual(results![1], [null, 'one']);
      assert.match(results![2][1] as string, /cmd=exec/);
      assert.deepEqual(results![3], [null, 'two']);
      await assert.rejects(redis.multi().ping().call('NOSUCH').exec(), /EXECABORT/);
      assert.equal(await redis.ping(), 'PONG', 'the connection is fine after the abort');
      const piped = await redis
        .pipeline([['echo', 'p'], ['multi'], ['echo', 'm'], ['exec'], ['echo', 'q']])
        .exec();
      assert.deepEqual(
        piped!.map(([, v]: [Error | null, unknown]) => v),
        ['p', 'OK', 'QUEUED', ['m'], 'q'],
      );
    } finally {
      redis.disconnect();
    }
  });

  test(
    'redis-py (Debian python3-redis): the default transactional pipeline, INFO replication',
    peer('python3-redis', PYTHON !== undefined, 'apt-get install python3-redis'),
    async () => {
      const script = `
import sys, redis
r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), socket_timeout=5)
p = r.pipeline()
for i in range(100):
    p.echo('e%d' % i)
p.ping()
res = p.execute()
assert res[:100] == [('e%d' % i).encode() for i in range(100)], res[:3]
assert res[100] is True, res[100]
assert r.info('replication')['role'] == 'master'
assert r.info('memory')['used_memory'] > 0
print('ok', len(res))
`;
      const { stdout } = await run(PYTHON!, ['-c', script, String(server.port)], {
        timeout: 20_000,
      });
      assert.equal(stdout, 'ok 101\n');
    },
  );
});

describe('INFO sections clients read', () => {
  test('Valkey GLIDE connects (it asks INFO REPLICATION for role:master), runs commands and an atomic batch', async () => {
    const client = await GlideClient.createClient({
      addresses: [{ host: '127.0.0.1', port: server.port }],
      requestTimeout: 5000,
    });
    try {
      assert.equal(await client.ping(), 'PONG');
      assert.equal(await client.echo('glide'), 'glide');
      assert.match(String(await client.customCommand(['INFO', 'replication'])), /role:master\r\n/);
      const batch = new Batch(true).ping().echo('in a transaction');
      assert.deepEqual(await client.exec(batch, true), ['PONG', 'in a transaction']);
    } finally {
      client.close();
    }
  });

  test(
    'redis-cli --stat shows real memory, not a missing field',
    peer(
      'redis-cli and stdbuf',
      has('command -v redis-cli && command -v stdbuf'),
      'apt-get install redis-tools',
    ),
    async () => {
      const child = spawn('stdbuf', [
        '-oL',
        'redis-cli',
        '-h',
        '127.0.0.1',
        '-p',
        String(server.port),
        '--stat',
        '-i',
        '0.1',
      ]);
      let out = '';
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no figures in 10 s: ${out}`)), 10_000);
          child.stdout.on('data', (d) => {
            out += d;
            if (out.split('\n').length > 4) {
              clearTimeout(timer);
              resolve();
            }
          });
        });
      } finally {
        child.kill();
      }
      const figures = out.split('\n')[2].trim().split(/\s+/);
      assert.equal(figures[0], '0', `keys: ${out}`);
      assert.match(figures[1], /^\d+\.\d\dM$/, `mem: ${out}`);
      assert.equal(figures[3], '0', `blocked: ${out}`);
    },
  );
});
