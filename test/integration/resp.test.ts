// RESP on the same port: raw protocol cases, real Redis clients (ioredis, node-redis) and Redis's
// own tools (redis-cli, redis-benchmark).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { encodeRespRequest } from '../../src/protocol/resp.ts';
import { parseStatsFull, TestClient } from '../helpers/client.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';

const run = promisify(execFile);
let server: ServerProcess;
before(async () => {
  server = await startServer({ env: { THREAD_POOL_SIZE: '2' } });
});
after(async () => {
  await server.kill();
});

const resp = (...args: (string | Buffer)[]) => encodeRespRequest(args);

/**
 * Redis's tools are installed by .ci/run; in CI their absence fails the tests instead of skipping
 * them.
 */
function tool(name: string): { skip: string | false } {
  const found = spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
  if (!found && process.env.CI)
    throw new Error(`${name} is not installed (apt-get install redis-tools)`);
  return { skip: found ? false : `${name} not installed (apt-get install redis-tools)` };
}

describe('RESP over raw sockets', () => {
  test('the first byte picks the protocol: "*" is RESP, anything else the line protocol', async () => {
    const r = await TestClient.connect(server.port);
    r.write(resp('PING'));
    assert.equal((await r.readBytes(7)).toString(), '+PONG\r\n');
    r.write(Buffer.concat([resp('ECHO', 'hi'), resp('TIME'), resp('QUIT')]));
    assert.equal((await r.readBytes(8)).toString(), '$2\r\nhi\r\n');
    const time = (await r.readBytes(4)).toString();
    assert.equal(time, '*2\r\n');
    const [secondsHeader, seconds, microsHeader, micros] = [
      await r.readLine(),
      await r.readLine(),
      await r.readLine(),
      await r.readLine(),
    ];
    assert.match(secondsHeader, /^\$10\r$/);
    assert.ok(Math.abs(Number(seconds.trim()) - Date.now() / 1000) < 5);
    assert.match(microsHeader, /^\$\d\r$/);
    assert.ok(Number(micros.trim()) < 1e6);
    assert.equal(await r.readLine(), '+OK\r');
    await r.waitClosed();

    const l = await TestClient.connect(server.port);
    assert.equal(await l.request('PING'), 'PONG');
    assert.equal(
      await l.request('HELLO 3'),
      'ERROR: Unknown command',
      'RESP-only commands stay out of line mode',
    );
    l.close();
  });

  test('HELLO 3 switches to RESP3 replies; RESET goes back', async () => {
    const c = await TestClient.connect(server.port);
    c.write(resp('HELLO', '3'));
    assert.equal(await c.readLine(), '%8\r');
    const lines = await c.readLines(29); // 8 keys and values: bulk strings take two lines, integers and [] one
    assert.deepEqual(lines.slice(0, 4), ['$6\r', 'server\r', '$6\r', 'tcpool\r']);
    assert.ok(lines.includes('proto\r') && lines[lines.indexOf('proto\r') + 1] === ':3\r');
    c.write(resp('CLIENT', 'GETNAME'));
    assert.equal(await c.readLine(), '_\r');
    c.write(resp('RESET'));
    assert.equal(await c.readLine(), '+RESET\r');
    c.write(resp('CLIENT', 'GETNAME'));
    assert.equal(await c.readLine(), '$-1\r');
    c.write(resp('HELLO', '4'));
    assert.equal(await c.readLine(), '-NOPROTO unsupported protocol version\r');
    c.close();
  });

  const malformed: [string, string, string][] = [
    ['out-of-range multibulk count', '*3000000000\r\n', 'invalid multibulk length'],
    ['negative multibulk count', '*-10\r\n', 'invalid multibulk length'],
    ['* followed by junk', '*foo\r\n', 'invalid multibulk length'],
    ['missing $', '*1\r\nfoo\r\n', "expected '$', got 'f'"],
    ['negative bulk length', '*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n', 'invalid bulk length'],
    ['too big bulk length', '*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n', 'invalid bulk length'],
    ['non-numeric bulk length', '*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n', 'invalid bulk length'],
    [
      'unexpected byte after a bulk',
      '*1\r\n$4\r\nPINGxx\r\n',
      "expected CRLF after bulk string, got 'x'",
    ],
  ];
  for (const [what, input, error] of malformed) {
    test(`protocol error: ${what} → "-ERR Protocol error: ${error}", then close; others unaffected`, async () => {
      const other = await TestClient.connect(server.port);
      other.write(resp('PING'));
      assert.equal(await other.readLine(), '+PONG\r');
      const c = await TestClient.connect(server.port);
      c.write(input);
      assert.equal(await c.readLine(), `-ERR Protocol error: ${error}\r`);
      await c.waitClosed();
      assert.equal(c.received.length, 0);
      other.write(resp('ECHO', 'still fine'));
      assert.equal((await other.readBytes(17)).toString(), '$10\r\nstill fine\r\n');
      other.close();
    });
  }

  test('errors use Redis texts', async () => {
    const c = await TestClient.connect(server.port);
    c.write(
      Buffer.concat([
        resp('FOO', 'x', 'y'),
        resp('ECHO'),
        resp('bar'),
        resp('WATCH', 'k'),
        resp('SELECT', '1'),
        resp('SELECT', '0'),
      ]),
    );
    assert.deepEqual(await c.readLines(6), [
      "-ERR unknown command 'FOO', with args beginning with: 'x' 'y' \r",
      "-ERR wrong number of arguments for 'echo' command\r",
      "-ERR unknown command 'bar', with args beginning with: \r",
      '-ERR WATCH is not supported: tcpool keeps no keys to watch\r',
      '-ERR DB index is out of range\r',
      '+OK\r',
    ]);
    c.close();
  });

  test('CLIENT LIST shows the clients of every worker', async () => {
    const clients = await Promise.all(
      Array.from({ length: 12 }, () => TestClient.connect(server.port)),
    );
    const workers = new Set<number>();
    for (const [i, c] of clients.entries()) {
      c.write(resp('CLIENT', 'SETNAME', `c${i}`));
      assert.equal(await c.readLine(), '+OK\r');
      c.write(resp('STATS', 'FULL'));
      workers.add(parseStatsFull((await c.readLine()).slice(1, -1)).worker);
    }
    assert.ok(workers.size === 2, 'clients landed on both workers');
    clients[0].write(resp('CLIENT', 'LIST'));
    const header = await clients[0].readLine();
    const body = (await clients[0].readBytes(Number(header.slice(1, -1)) + 2)).toString();
    for (let i = 0; i < 12; i++)
      assert.match(body, new RegExp(`name=c${i} .* proto=resp transport=tcp worker=[01]\\n`));
    const listedWorkers = new Set([...body.matchAll(/worker=(\d)/g)].map((m) => m[1]));
    assert.equal(listedWorkers.size, 2);
    for (const c of clients) c.close();
  });

  test('line and RESP clients on one server at once; STATS counts both', async () => {
    const lines = await Promise.all(
      Array.from({ length: 5 }, () => TestClient.connect(server.port)),
    );
    const resps = await Promise.all(
      Array.from({ length: 5 }, () => TestClient.connect(server.port)),
    );
    for (const c of lines) assert.equal(await c.request('PING'), 'PONG');
    for (const c of resps) {
      c.write(resp('PING'));
      assert.equal(await c.readLine(), '+PONG\r');
    }
    const stats = await lines[0].request('STATS');
    const active = Number(stats.split(': ')[1]);
    assert.ok(active >= 10, stats);
    resps[0].write(resp('STATS'));
    assert.equal(await resps[0].readLine(), `+Active clients: ${active}\r`);
    for (const c of [...lines, ...resps]) c.close();
  });
});

const payloads: [string, Buffer][] = [
  ['0 B', Buffer.alloc(0)],
  ['1 B', Buffer.from([0])],
  ['64 KiB', randomBytes(64 * 1024)],
  ['8 MiB', randomBytes(8 * 1024 * 1024)],
];

describe('ioredis', () => {
  let redis: Redis;
  before(async () => {
    redis = new Redis({
      port: server.port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    await redis.connect();
  });
  after(() => redis.disconnect());

  test('PING and binary ECHO of 0 B, 1 B, 64 KiB and 8 MiB', async () => {
    assert.equal(await redis.ping(), 'PONG');
    for (const [what, payload] of payloads)
      assert.deepEqual(await redis.echoBuffer(payload), payload, what);
  });

  test('a deep pipeline: 10,000 commands, replies in order', async () => {
    const p = redis.pipeline();
    for (let i = 0; i < 10_000; i++) p.echo(`m${i}`);
    const results = await p.exec();
    assert.equal(results!.length, 10_000);
    results!.forEach(([err, value]: [Error | null, unknown], i: number) => {
      assert.equal(err, null);
      assert.equal(value, `m${i}`);
    });
  });

  test('HELLO 3, CLIENT SETNAME/GETNAME, INFO, and an unknown command as a client error', async () => {
    const hello = (await redis.call('HELLO', '3')) as unknown[];
    assert.equal(hello[hello.indexOf('proto') + 1], 3);
    assert.equal(await redis.client('SETNAME', 'io'), 'OK');
    assert.equal(await redis.client('GETNAME'), 'io');
    const info = await redis.info();
    assert.match(info, /# Clients\r\nconnected_clients:\d+\r\n/);
    assert.match(info, /worker0:active=\d+,connections=\d+,commands=\d+,rejected=\d+/);
    await assert.rejects(redis.call('NOSUCH', 'a'), (err: Error) => {
      assert.equal(err.name, 'ReplyError');
      assert.equal(err.message, "ERR unknown command 'NOSUCH', with args beginning with: 'a' ");
      return true;
    });
    assert.equal(await redis.ping(), 'PONG', 'the connection survives the error');
  });
});

describe('node-redis', () => {
  for (const version of [2, 3] as const) {
    test(`RESP${version}: PING, binary ECHO, pipeline, HELLO, CLIENT, INFO, unknown command`, async () => {
      const client = createClient({
        socket: { host: '127.0.0.1', port: server.port, reconnectStrategy: false },
        RESP: version,
      });
      client.on('error', () => {});
      await client.connect();
      try {
        assert.equal(await client.ping(), 'PONG');
        const bin = client.withTypeMapping({ 36: Buffer });
        for (const [what, payload] of payloads)
          assert.deepEqual(await bin.echo(payload), payload, what);
        const replies = await Promise.all(
          Array.from({ length: 5000 }, (_, i) => client.echo(`n${i}`)),
        );
        for (const [i, r] of replies.entries()) assert.equal(r, `n${i}`);
        const hello = (await client.sendCommand(['HELLO', String(version)])) as unknown;
        const proto = Array.isArray(hello)
          ? hello[hello.indexOf('proto') + 1]
          : (hello as Record<string, unknown>).proto;
        assert.equal(proto, version);
        assert.equal(await client.clientSetName('nr'), 'OK');
        assert.equal(await client.clientGetName(), 'nr');
        assert.match(await client.info('stats'), /^# Stats\r\ntotal_connections_received:\d+/);
        await assert.rejects(client.sendCommand(['NOSUCH']), (err: Error) => {
          assert.equal(err.constructor.name, 'SimpleError');
          assert.equal(err.message, "ERR unknown command 'NOSUCH', with args beginning with: ");
          return true;
        });
      } finally {
        client.destroy();
      }
    });
  }
});

describe("Redis's tools", () => {
  test('redis-cli ping, echo, info', tool('redis-cli'), async () => {
    const p = ['-p', String(server.port), '-h', '127.0.0.1'];
    assert.equal((await run('redis-cli', [...p, 'ping'])).stdout, 'PONG\n');
    assert.equal((await run('redis-cli', [...p, 'echo', 'hello world'])).stdout, 'hello world\n');
    const info = (await run('redis-cli', [...p, 'info'])).stdout;
    assert.match(info, /^# Server\r?\nredis_version:7\.2\.0/);
    assert.match(info, /thread_pool_size:2/);
  });

  test('redis-cli with many piped commands', tool('redis-cli'), async () => {
    const input = Array.from({ length: 500 }, (_, i) => `echo line${i}`).join('\n') + '\nping\n';
    const child = execFile('redis-cli', ['-p', String(server.port)], { maxBuffer: 1 << 20 });
    child.stdin!.end(input);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    assert.deepEqual(out.split('\n').slice(0, -1), [
      ...Array.from({ length: 500 }, (_, i) => `line${i}`),
      'PONG',
    ]);
  });

  test(
    'redis-benchmark -t ping_mbulk -n 100000 -P 16 finishes without errors',
    tool('redis-benchmark'),
    async () => {
      const { stdout, stderr } = await run(
        'redis-benchmark',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(server.port),
          '-t',
          'ping_mbulk',
          '-n',
          '100000',
          '-P',
          '16',
          '-q',
        ],
        { timeout: 60_000 },
      );
      assert.match(stdout, /PING_MBULK: [\d.]+ requests per second/);
      assert.doesNotMatch(stdout + stderr, /error|WARNING/i);
    },
  );
});
