import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { builtins } from '../../src/commands/builtin/index.ts';
import type { CommandContext } from '../../src/commands/context.ts';
import { createRegistry } from '../../src/commands/load.ts';
import { checkArity, defineCommand, Registry } from '../../src/commands/registry.ts';
import { ReplyError, replyErrors, TcpoolError } from '../../src/errors.ts';
import { Transaction } from '../../src/commands/transaction.ts';
import { bytesToHuman } from '../../src/commands/builtin/info.ts';
import { encodeLineReply, line as lineProtocol } from '../../src/protocol/line.ts';
import type { Reply } from '../../src/protocol/reply.ts';
import { SharedStats } from '../../src/stats/counters.ts';
import { loadConfig } from '../../src/config/load.ts';
import { encodeResp, resp as respProtocol } from '../../src/protocol/resp.ts';
import type { Replies, RespMap, Verbatim } from '../../src/protocol/reply.ts';
import { availableParallelism } from 'node:os';

/** THREAD_POOL_SIZE's default: the CPUs less one, at least 1. */
const POOL = Math.max(1, availableParallelism() - 1);

function context(
  registry: Registry,
  stats = SharedStats.create(2),
  protocol: 'line' | 'resp' = 'line',
) {
  let closeRequested = false;
  const ctx: CommandContext = {
    registry,
    stats,
    server: {
      config: loadConfig({ env: {} }).config,
      port: 7000,
      startedAt: Date.now() - 5000,
      version: '9.9.9',
    },
    workerId: 1,
    peer: '127.0.0.1:5555',
    protocol,
    transport: 'tcp',
    offers: (spec) => (protocol === 'line' ? lineProtocol : respProtocol).offers(spec),
    clientId: 42,
    respVersion: 2,
    authenticated: true,
    authenticate: async () => 'not-configured',
    clientName: '',
    libName: '',
    libVer: '',
    closeAfterReply: () => (closeRequested = true),
    clientInfo: () => ({
      id: 42,
      addr: '127.0.0.1:5555',
      laddr: '127.0.0.1:7000',
      name: ctx.clientName,
      age: 1,
      idle: 0,
      cmd: 'client',
      protocol,
      transport: 'tcp',
      resp: ctx.respVersion,
      worker: 1,
      libName: ctx.libName,
      libVer: ctx.libVer,
      qbuf: 0,
      omem: 0,
    }),
    listClients: async () => [ctx.clientInfo()],
    transaction: null,
    internalError: () => replyErrors.internal,
    publish: () => 0,
    send: () => {},
    whenClosed: () => {},
    subscriptions: 0,
    pushes: true,
  };
  return { ctx, closed: () => closeRequested };
}

const registry = new Registry();
for (const spec of builtins) registry.register(spec);

function run(name: string, args: string[] = [], ctx = context(registry).ctx): Reply {
  const spec = registry.lookup(name)!;
  const arity = checkArity(spec, args.length);
  if (arity) return arity;
  return spec.run(
    ctx,
    args.map((a) => Buffer.from(a)),
  ) as Reply;
}

const line = (r: Reply) => encodeLineReply(r).toString();

describe('built-in commands', () => {
  test('PING replies PONG, or its message', () => {
    assert.equal(line(run('PING')), 'PONG\n');
    assert.equal(line(run('PING', ['hi there'])), 'hi there\n');
  });

  test('ECHO returns its bytes exactly; without a message it is an arity error', () => {
    const bytes = Buffer.from([0, 0xff, 0x20, 0x20, 0x41]);
    const spec = registry.lookup('ECHO')!;
    assert.deepEqual(spec.run(context(registry).ctx, [bytes]), bytes);
    assert.equal(line(run('ECHO', [''])), '\n');
    assert.equal(
      line(run('ECHO')),
      "ERROR: Wrong number of arguments for 'ECHO' (usage: ECHO <message>)\n",
    );
  });

  test('TIME is local time as YYYY-MM-DD HH:MM:SS; over RESP [seconds, microseconds]', () => {
    const before = new Date();
    const both = run('TIME');
    const reply = line(both).trimEnd();
    assert.match(reply, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    const m = /^\*2\r\n\$\d+\r\n(\d+)\r\n\$\d+\r\n(\d+)\r\n$/.exec(encodeResp(both, 2).toString());
    assert.ok(m, 'RESP form');
    assert.ok(Math.abs(Number(m[1]) * 1000 - before.getTime()) < 2000);
    assert.ok(Number(m[2]) < 1_000_000);
    const [date, time] = reply.split(' ');
    const [y, mo, d] = date.split('-').map(Number);
    const [h, mi, s] = time.split(':').map(Number);
    const parsed = new Date(y, mo - 1, d, h, mi, s); // local time, as the server printed it
    assert.ok(
      Math.abs(parsed.getTime() - before.getTime()) < 2000,
      `${reply} vs ${before.toString()}`,
    );
  });

  test('STATS counts active clients across workers; FULL gives every counter', () => {
    const stats = SharedStats.create(2);
    assert.equal(stats.acquireConnection(0, 10), 1);
    assert.equal(stats.acquireConnection(1, 10), 2);
    assert.equal(stats.acquireConnection(1, 10), 3);
    stats.addCommands(1, 5);
    const { ctx } = context(registry, stats);
    assert.equal(run('STATS', [], ctx), 'Active clients: 3');
    assert.equal(
      run('STATS', ['full'], ctx),
      'active=3 connections=3 commands=5 rejected=0 restarts=0 workers=2 worker=1 w0=1/1/0/0 w1=2/2/5/0 ' +
        'rejected_per_ip=0 protected_mode_rejections=0 auth_failures=0 rate_limited=0 idle_timeouts=0 ' +
        'request_timeouts=0 output_limit_disconnects=0 proxy_rejections=0 tls_handshake_failures=0 ' +
        'tls_handshake_timeouts=0 tls_handshakes_in_progress=0 accept_errors=0 silent_evictions=0' +
        ' log_lines_dropped=0 log_write_errors=0' +
        ' ws_origin_rejections=0 ws_oversized_messages=0 ws_ping_timeouts=0 http_bad_requests=0' +
        ' tls_handshakes=0 reloads=0 reload_failures=0' +
        ' command_timeouts=0 pubsub_output_disconnects=0 cross_protocol_rejections=0' +
        ' autoscale_grows=0 autoscale_shrinks=0' +
        ' trace_spans_exported=0 trace_spans_dropped=0 trace_spans_failed=0',
    );
    assert.equal(line(run('STATS', ['nope'], ctx)), 'ERROR: STATS takes no argument or FULL\n');
  });

  test('QUIT replies Goodbye and asks for the connection to close', () => {
    const { ctx, closed } = context(registry);
    const reply = run('QUIT', [], ctx);
    assert.equal(line(reply), 'Goodbye\n');
    assert.equal(encodeResp(reply, 2), '+OK\r\n');
    assert.equal(closed(), true);
  });

  test('HELP lists every command on one line, or describes one', () => {
    assert.equal(
      run('HELP'),
      'Commands: PING [message], ECHO <message>, TIME, STATS [FULL], QUIT, HELP [command], AUTH [username] <token>, ' +
        'SUBSCRIBE <channel> ..., UNSUBSCRIBE [channel ...], PSUBSCRIBE <pattern> ..., PUNSUBSCRIBE [pattern ...], ' +
        'PUBLISH <channel> <message>, PUBSUB CHANNELS|NUMSUB|NUMPAT [...]',
    );
    assert.equal(run('HELP', ['echo']), 'ECHO <message>: Replies the message, byte for byte.');
    assert.equal(line(run('HELP', ['nope'])), "ERROR: Unknown command 'nope'\n");
  });

  test('arity: too many arguments is an error naming the usage', () => {
    assert.equal(
      line(run('TIME', ['x'])),
      "ERROR: Wrong number of arguments for 'TIME' (usage: TIME)\n",
    );
  });
});

describe('registry', () => {
  test('lookup is case-insensitive', () => {
    assert.equal(registry.lookup('ping')?.name, 'PING');
    assert.equal(registry.lookup('PiNg')?.name, 'PING');
    assert.equal(registry.lookup('nope'), undefined);
    assert.equal(registry.lookup(''), undefined);
  });

  test('defineCommand validates and fills defaults', () => {
    const spec = defineCommand({ name: 'hello', usage: '', summary: 'x', run: () => 'hi' });
    assert.equal(spec.name, 'HELLO');
    assert.equal(spec.usage, 'HELLO');
    assert.equal(spec.minArgs, 0);
    assert.equal(spec.maxArgs, 0);
    assert.equal(spec.restOfLine, false);
    const bad = (def: object, why: RegExp) =>
      assert.throws(
        () => defineCommand(def as never),
        (e: Error) => e instanceof TcpoolError && why.test(e.message),
      );
    bad({ name: 'has space', run: () => 1 }, /name must be/);
    bad({ name: 'X' }, /run must be a function/);
    bad({ name: 'X', run: () => 1, minArgs: -1 }, /minArgs/);
    bad({ name: 'X', run: () => 1, minArgs: 2, maxArgs: 1 }, /maxArgs/);
  });

  test('a name can be registered once', () => {
    const r = new Registry();
    r.register(builtins[0]);
    assert.throws(() => r.register(builtins[0]), /already registered/);
  });

  test('COMMANDS_MODULE adds commands; a broken module is refused with its path', async () => {
    const fixture = new URL('../fixtures/commands.js', import.meta.url).pathname;
    const r = await createRegistry(fixture);
    assert.equal(r.lookup('greet')?.name, 'GREET');
    assert.equal(r.lookup('PING')?.name, 'PING');
    await assert.rejects(
      createRegistry('/nonexistent/module.js'),
      /^TcpoolError: COMMANDS_MODULE \/nonexistent\/module.js: cannot load it/,
    );
    const notArray = new URL('../fixtures/commands-bad.js', import.meta.url).pathname;
    await assert.rejects(createRegistry(notArray), /default export must be an array/);
  });

  test('reply errors keep their stable codes', () => {
    const r = run('ECHO');
    assert.ok(r instanceof ReplyError);
    assert.equal(r.code, 'ERR_WRONG_ARITY');
  });
});

describe('Redis compatibility commands (RESP only)', () => {
  const respRun = (
    name: string,
    args: string[] = [],
    ctx = context(registry, SharedStats.create(2), 'resp').ctx,
  ) => {
    const spec = registry.lookup(name)!;
    assert.equal(spec.family, 'redis');
    return (checkArity(spec, args.length) ??
      spec.run(
        ctx,
        args.map((a) => Buffer.from(a)),
      )) as Reply;
  };
  const resp2 = (r: Reply) => encodeResp(r, 2).toString();

  test('the line protocol does not offer them; RESP offers every command', () => {
    assert.deepEqual(
      registry.list(lineProtocol.offers).map((c) => c.name),
      [
        'PING',
        'ECHO',
        'TIME',
        'STATS',
        'QUIT',
        'HELP',
        'AUTH',
        'SUBSCRIBE',
        'UNSUBSCRIBE',
        'PSUBSCRIBE',
        'PUNSUBSCRIBE',
        'PUBLISH',
        'PUBSUB',
      ],
    );
    assert.equal(registry.list(respProtocol.offers).length, registry.list().length);
    assert.ok(registry.list().length > 6);
  });

  test('COMMAND COUNT, INFO and DOCS describe the registry', () => {
    assert.equal(respRun('COMMAND', ['COUNT']), registry.list().length);
    assert.equal(
      resp2(respRun('COMMAND', ['INFO', 'echo', 'nope'])),
      '*2\r\n*10\r\n$4\r\necho\r\n:2\r\n*3\r\n+fast\r\n+stale\r\n+loading\r\n:0\r\n:0\r\n:0\r\n*1\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n$-1\r\n',
    );
    assert.match(
      resp2(respRun('COMMAND', ['DOCS', 'ping'])),
      /^\*2\r\n\$4\r\nping\r\n\*10\r\n\$7\r\nsummary\r\n/,
    );
    assert.match(
      resp2(respRun('COMMAND', ['DOCS', 'ping'])),
      /\$5\r\nflags\r\n\*1\r\n\+optional\r\n/,
    );
    assert.equal(
      resp2(respRun('COMMAND', ['NOPE'])),
      "-ERR unknown subcommand 'NOPE'. Try COMMAND HELP.\r\n",
    );
  });

  test('CONFIG GET matches globs over tcpool and Redis names; CONFIG SET is refused', () => {
    assert.equal(
      resp2(respRun('CONFIG', ['GET', 'maxclients'])),
      '*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n',
    );
    assert.equal(
      resp2(respRun('CONFIG', ['GET', 'thread_pool_*'])),
      `*4\r\n$16\r\nthread_pool_size\r\n$${String(POOL).length}\r\n${POOL}\r\n` +
        '$15\r\nthread_pool_max\r\n$2\r\n64\r\n',
    );
    assert.equal(
      resp2(respRun('CONFIG', ['GET', 'appendonly', 'save'])),
      '*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n',
    );
    assert.match(
      resp2(respRun('CONFIG', ['SET', 'port', '1'])),
      /^-ERR CONFIG SET is not supported/,
    );
  });

  test('CLIENT names are validated as in Redis', () => {
    const { ctx } = context(registry, SharedStats.create(2), 'resp');
    assert.equal(respRun('CLIENT', ['SETNAME', 'ok-name'], ctx), 'OK');
    assert.equal(respRun('CLIENT', ['GETNAME'], ctx), 'ok-name');
    assert.equal(
      resp2(respRun('CLIENT', ['SETNAME', 'two words'], ctx)),
      '-ERR Client names cannot contain spaces, newlines or special characters.\r\n',
    );
    assert.equal(respRun('CLIENT', ['ID'], ctx), 42);
    assert.equal(
      resp2(respRun('CLIENT', ['NOPE'], ctx)),
      "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n",
    );
  });

  test('INFO keeps only the sections asked for', () => {
    const text = (respRun('INFO', ['clients']) as Verbatim).text;
    assert.equal(
      text,
      `# Clients\r\nconnected_clients:0\r\nmaxclients:10000\r\nblocked_clients:0\r\n`,
    );
    assert.equal((respRun('INFO', ['nosuchsection']) as Verbatim).text, '');
    const all = (respRun('INFO') as Verbatim).text;
    assert.deepEqual(
      [...all.matchAll(/^# (.*)\r$/gm)].map((m) => m[1]),
      [
        'Server',
        'Clients',
        'Memory',
        'Persistence',
        'Stats',
        'Replication',
        'CPU',
        'Cluster',
        'Keyspace',
      ],
    );
    assert.match(all, /\r\n\r\n# Persistence\r\nloading:0\r\n\r\n# Stats\r\n/);
    assert.ok(all.endsWith('\r\n\r\n# Keyspace\r\n'), 'an empty keyspace, as Redis with no keys');
  });

  test('INFO replication and memory carry the fields clients read', () => {
    const replication = (respRun('INFO', ['replication']) as Verbatim).text;
    assert.match(replication, /^# Replication\r\nrole:master\r\nconnected_slaves:0\r\n/);
    assert.match(replication, /\r\nmaster_replid:[0-9a-f]{40}\r\n/);
    const memory = (respRun('INFO', ['memory']) as Verbatim).text;
    const used = Number(memory.match(/\r\nused_memory:(\d+)\r\n/)![1]);
    assert.ok(used > 1 << 20 && used < 2 ** 40, String(used));
    assert.match(memory, /\r\nused_memory_human:\d+\.\d\dM\r\n/);
    assert.equal(bytesToHuman(1023), '1023B');
    assert.equal(bytesToHuman(1024), '1.00K');
    assert.equal(bytesToHuman(1536 * 1024 * 1024), '1.50G');
  });

  test('HELLO switches the protocol version and validates its options', async () => {
    const { ctx } = context(registry, SharedStats.create(2), 'resp');
    assert.equal(
      resp2(await respRun('HELLO', ['x'], ctx)),
      '-ERR Protocol version is not an integer or out of range\r\n',
    );
    assert.equal(
      resp2(await respRun('HELLO', ['3', 'BOGUS'], ctx)),
      "-ERR Syntax error in HELLO option 'BOGUS'\r\n",
    );
    const map = (await respRun(
      'HELLO',
      ['3', 'AUTH', 'default', 'pw', 'SETNAME', 'me'],
      ctx,
    )) as RespMap;
    assert.equal(ctx.respVersion, 3);
    assert.equal(ctx.clientName, 'me');
    assert.deepEqual(Object.fromEntries(map.entries as [string, Reply][]).proto, 3);
  });
});

describe('Transaction (MULTI … EXEC)', () => {
  const spec = (name: string) => registry.lookup(name)!;
  const defined = (name: string, run: () => Reply | Promise<Reply>) =>
    defineCommand({ name, usage: name, summary: '', minArgs: 0, maxArgs: Infinity, run });

  test('EXEC replies in queue order, awaiting each async command before the next starts', async () => {
    const { ctx } = context(registry, SharedStats.create(2), 'resp');
    const t = new Transaction(100, 1000);
    const started: string[] = [];
    const slow = defined('SLOW', async () => {
      started.push('slow');
      await new Promise((r) => setTimeout(r, 20));
      started.push('slow done');
      return 'late';
    });
    const after = defined('AFTER', () => {
      started.push('after');
      return 'next';
    });
    const fails = defined('FAILS', () => {
      throw new Error('boom');
    });
    const rejects = defined('REJECTS', () => Promise.reject(new Error('boom')));
    for (const [s, args] of [
      [spec('ECHO'), ['a']],
      [slow, []],
      [after, []],
      [fails, []],
      [rejects, []],
      [spec('PING'), []],
    ] as const)
      assert.equal(
        encodeResp(
          t.queue(
            ctx,
            s,
            args.map((a) => Buffer.from(a)),
          ),
          2,
        ),
        '+QUEUED\r\n',
      );
    assert.equal(t.size, 6);
    const replies = await t.run(ctx);
    assert.deepEqual(started, ['slow', 'slow done', 'after']);
    assert.equal(
      encodeResp(replies, 2).toString(),
      '*6\r\n$1\r\na\r\n+late\r\n+next\r\n-ERR Internal error\r\n-ERR Internal error\r\n+PONG\r\n',
    );
  });

  test('queued arguments are copies: the received bytes may be reused', () => {
    const { ctx } = context(registry, SharedStats.create(2), 'resp');
    const t = new Transaction(100, 1000);
    const arg = Buffer.from('abc');
    t.queue(ctx, spec('ECHO'), [arg]);
    arg.fill(0x78);
    assert.deepEqual((t.run(ctx) as Replies).items, [Buffer.from('abc')]);
  });

  test('a refused command makes EXEC abort; a refused EXEC aborts at once', () => {
    const { ctx } = context(registry, SharedStats.create(2), 'resp');
    const t = new Transaction(100, 1000);
    ctx.transaction = t;
    const arity = checkArity(spec('ECHO'), 0)!;
    assert.equal(t.refuse(ctx, arity, spec('ECHO')), arity);
    assert.equal(
      encodeResp(t.run(ctx) as Reply, 2),
      '-EXECABORT Transaction discarded because of previous errors.\r\n',
    );
    const t2 = new Transaction(100, 1000);
    ctx.transaction = t2;
    const execArity = checkArity(spec('EXEC'), 1)!;
    assert.equal(
      encodeResp(t2.refuse(ctx, execArity, spec('EXEC')), 2),
      "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n",
    );
    assert.equal(ctx.transaction, null);
  });

  test('the queue is bounded like one request: MAX_ARGS and MAX_REQUEST_BYTES, then close', () => {
    for (const [maxArgs, maxBytes, error] of [
      [3, 1000, 'transaction with more than MAX_ARGS arguments'],
      [100, 20, 'transaction larger than MAX_REQUEST_BYTES'],
    ] as const) {
      const { ctx, closed } = context(registry, SharedStats.create(2), 'resp');
      const t = new Transaction(maxArgs, maxBytes);
      ctx.transaction = t;
      assert.equal(
        encodeResp(t.queue(ctx, spec('ECHO'), [Buffer.from('12345678')]), 2),
        '+QUEUED\r\n',
      );
      assert.equal(closed(), false);
      const r = t.queue(ctx, spec('ECHO'), [Buffer.from('12345678')]);
      assert.equal(encodeResp(r, 2), `-ERR Protocol error: ${error}\r\n`);
      assert.equal(closed(), true);
      assert.equal(ctx.transaction, null);
    }
  });

  test('MULTI, EXEC, DISCARD, WATCH, UNWATCH and RESET, with Redis texts', () => {
    const { ctx } = context(registry, SharedStats.create(2), 'resp');
    const resp = (name: string, args: string[] = []) =>
      encodeResp(run(name, args, ctx), 2).toString();
    assert.equal(resp('EXEC'), '-ERR EXEC without MULTI\r\n');
    assert.equal(resp('DISCARD'), '-ERR DISCARD without MULTI\r\n');
    assert.equal(
      resp('WATCH', ['k']),
      '-ERR WATCH is not supported: tcpool keeps no keys to watch\r\n',
    );
    assert.equal(resp('UNWATCH'), '+OK\r\n');
    assert.equal(resp('MULTI'), '+OK\r\n');
    assert.ok(ctx.transaction instanceof Transaction);
    assert.equal(resp('MULTI'), '-ERR MULTI calls can not be nested\r\n');
    assert.equal(resp('WATCH', ['k']), '-ERR WATCH inside MULTI is not allowed\r\n');
    assert.equal(ctx.transaction!.queues(spec('PING')), true);
    for (const name of ['MULTI', 'EXEC', 'DISCARD', 'WATCH', 'QUIT', 'RESET'])
      assert.equal(ctx.transaction!.queues(spec(name)), false, name);
    assert.equal(resp('EXEC'), '*0\r\n');
    assert.equal(ctx.transaction, null);
    resp('MULTI');
    assert.equal(resp('DISCARD'), '+OK\r\n');
    assert.equal(ctx.transaction, null);
    resp('MULTI');
    assert.equal(resp('RESET'), '+RESET\r\n');
    assert.equal(ctx.transaction, null);
  });
});
