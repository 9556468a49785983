// The tcpool command line: serve's start-up errors and help, and the client in every mode.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configKeys, flagName } from '../../src/config/schema.ts';
import { hashTokenSha256 } from '../../src/auth/tokens.ts';
import { type Certs, makeCerts } from '../helpers/certs.ts';
import { TestClient } from '../helpers/client.ts';
import { spawn } from 'node:child_process';
import {
  BIN,
  cleanEnv,
  freePort,
  runTcpool,
  ServerProcess,
  startServer,
} from '../helpers/server.ts';

const ORIGINAL = new URL('../fixtures/config.txt', import.meta.url).pathname;
const servers: ServerProcess[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.kill()));
});

describe('tcpool client', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer();
    servers.push(server);
  });

  test('one-shot: prints the reply and exits 0', async () => {
    const r = await runTcpool(['client', '--port', String(server.port), 'ECHO', 'hello', 'there']);
    assert.equal(r.stdout, 'hello there\n');
    assert.equal(r.code, 0);
    const ping = await runTcpool(['client', '--port', String(server.port), 'ping']);
    assert.equal(ping.stdout, 'PONG\n');
  });

  test('piped: one command per line, replies in order', async () => {
    const input = 'PING\nECHO one\nNOPE\nECHO two\nSTATS\n';
    const r = await runTcpool(['client', '--host', '127.0.0.1', '--port', String(server.port)], {
      input,
    });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'PONG\none\nERROR: Unknown command\ntwo\nActive clients: 1\n');
  });

  test('piped: QUIT ends the session; the rest is not sent', async () => {
    const r = await runTcpool(['client', '--port', String(server.port)], {
      input: 'PING\nQUIT\nPING\n',
    });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'PONG\nGoodbye\n');
  });

  test('piped: many commands are pipelined and all answered', async () => {
    const input = Array.from({ length: 2000 }, (_, i) => `ECHO ${i}`).join('\n') + '\n';
    const r = await runTcpool(['client', '--port', String(server.port)], { input });
    assert.equal(r.code, 0);
    assert.deepEqual(
      r.stdout.split('\n').slice(0, -1),
      Array.from({ length: 2000 }, (_, i) => String(i)),
    );
  });

  test('on a terminal: a prompt, replies, history saved, Ctrl-D quits', async () => {
    // `script` (util-linux, always on Debian) gives the client a real pseudo-terminal.
    const home = mkdtempSync(join(tmpdir(), 'tcpool-home-'));
    const cmd = `${process.execPath} ${BIN} client --port ${server.port}`;
    const child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], {
      env: cleanEnv({ HOME: home, TERM: 'dumb' }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 100 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, re);
    };
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await waitFor(new RegExp(`127\\.0\\.0\\.1:${server.port}> `));
      child.stdin.write('ECHO from a tty\r');
      await waitFor(/from a tty\r?\n/);
      child.stdin.write('PING\r');
      await waitFor(/PONG\r?\n/);
      child.stdin.write('\x04'); // Ctrl-D
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    assert.deepEqual(readFileSync(join(home, '.tcpool_history'), 'utf8').split('\n'), [
      'ECHO from a tty',
      'PING',
      '',
    ]);
  });

  test('a refused connection exits non-zero with a clear message', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const r = await runTcpool(['client', '--port', String(port), 'PING']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `tcpool: Could not connect to 127.0.0.1:${port}: connection refused\n`);
  });

  test('bad options are refused with exit 2', async () => {
    const r = await runTcpool(['client', '--port', 'eighty', 'PING']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'tcpool: Invalid --port "eighty": must be an integer from 0 to 65535\n');
    const u = await runTcpool(['client', '--nope']);
    assert.equal(u.code, 2);
    assert.equal(u.stderr, 'tcpool: Unknown option --nope (see tcpool client --help)\n');
  });
});

describe('tcpool client: error replies, AUTH and TLS', () => {
  const TOKEN = 'cli-test-token-0123456789';
  let server: ServerProcess;
  let tlsPort: number;
  let certs: Certs;
  before(async () => {
    certs = makeCerts();
    tlsPort = await freePort();
    server = await startServer({
      env: {
        AUTH_TOKENS: hashTokenSha256(TOKEN),
        TLS_PORT: String(tlsPort),
        TLS_CERT: certs.serverCert,
        TLS_KEY: certs.serverKey,
      },
    });
    servers.push(server);
  });

  test('one-shot: an error reply is printed and exits 1', async () => {
    const r = await runTcpool(['client', '--port', String(server.port), 'PING']);
    assert.equal(r.stdout, 'ERROR: Authentication required\n');
    assert.equal(r.code, 1);
  });

  test('--auth and TCPOOL_AUTH authenticate first, in one-shot and piped mode', async () => {
    const port = String(server.port);
    const flag = await runTcpool(['client', '--port', port, '--auth', TOKEN, 'ECHO', 'in']);
    assert.deepEqual([flag.code, flag.stdout, flag.stderr], [0, 'in\n', '']);
    const env = await runTcpool(['client', '--port', port, 'PING'], {
      env: { TCPOOL_AUTH: TOKEN },
    });
    assert.deepEqual([env.code, env.stdout], [0, 'PONG\n']);
    const piped = await runTcpool(['client', '--port', port], {
      env: { TCPOOL_AUTH: TOKEN },
      input: 'PING\nNOPE\n',
    });
    assert.deepEqual([piped.code, piped.stdout], [0, 'PONG\nERROR: Unknown command\n']);
  });

  test('a refused token exits 1 with one line', async () => {
    const r = await runTcpool(['client', '--port', String(server.port), '--auth', 'wrong', 'PING']);
    assert.deepEqual(
      [r.code, r.stdout, r.stderr],
      [1, '', 'tcpool: AUTH refused: Invalid token\n'],
    );
  });

  test('--tls with --cacert talks to the TLS port; without the CA the certificate is refused', async () => {
    const port = String(tlsPort);
    const ok = await runTcpool(
      ['client', '--port', port, '--tls', '--cacert', certs.ca, '--auth', TOKEN, 'ECHO', 'tls'],
      { timeoutMs: 15_000 },
    );
    assert.deepEqual([ok.code, ok.stdout, ok.stderr], [0, 'tls\n', '']);
    const host = await runTcpool(
      ['client', '--host', 'localhost', '--port', port, '--cacert', certs.ca, 'PING'],
      { env: { TCPOOL_AUTH: TOKEN } },
    );
    assert.deepEqual([host.code, host.stdout], [0, 'PONG\n']);
    const untrusted = await runTcpool(['client', '--port', port, '--tls', 'PING']);
    assert.equal(untrusted.code, 1);
    assert.match(
      untrusted.stderr,
      new RegExp(`^tcpool: Could not connect to 127\\.0\\.0\\.1:${port}: .*certificate.*\\n$`),
    );
    const missing = await runTcpool(['client', '--tls', '--cacert', '/no/such.crt', 'PING']);
    assert.deepEqual(
      [missing.code, missing.stderr],
      [2, 'tcpool: Cannot read --cacert /no/such.crt: ENOENT\n'],
    );
  });
});

describe('one error style for every subcommand', () => {
  test('usage errors: one line, exit 2; runtime failures: one line, exit 1', async () => {
    const token = await runTcpool(['hash-token', 'a', 'b']);
    assert.deepEqual(
      [token.code, token.stderr],
      [2, 'tcpool: give one token, or --generate (see tcpool hash-token --help)\n'],
    );
    const timeout = await runTcpool(['client', '--timeout', '0', 'PING']);
    assert.deepEqual(
      [timeout.code, timeout.stderr],
      [2, 'tcpool: Invalid --timeout "0": must be an integer from 1 to 2147483647\n'],
    );
    const bench = await runTcpool(['bench', '--duration', '4000']);
    assert.deepEqual(
      [bench.code, bench.stderr],
      [2, 'tcpool: Invalid --duration "4000": must be an integer from 1 to 3600\n'],
    );
  });
});

describe('tcpool serve start-up', () => {
  test('--help lists every option with its default', async () => {
    for (const args of [['--help'], ['serve', '--help']]) {
      const r = await runTcpool(args);
      assert.equal(r.code, 0);
      for (const key of configKeys) {
        assert.match(
          r.stdout,
          new RegExp(`--${flagName(key)} <value> +\\S.*\\n +env ${key}, default [^;]+; \\S`),
          `${key} in ${args}`,
        );
      }
      assert.match(
        r.stdout,
        /--port <value> .*\n +env PORT, default 8080; an integer from 0 to 65535/,
      );
      assert.match(r.stdout, /--max-connections <value> .*\n +env MAX_CONNECTIONS, default 10000;/);
      assert.match(
        r.stdout,
        /--thread-pool-size <value> .*\n +env THREAD_POOL_SIZE, default number of CPUs - 1, at least 1 \(here \d+\);/,
      );
    }
    const top = await runTcpool(['--help']);
    assert.match(top.stdout, /tcpool client \[--host H\] \[--port P\]/);
  });

  test('a bad config value exits 2 naming key, value, file:line and what is allowed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpool-bad-'));
    writeFileSync(join(dir, 'config.txt'), 'PORT=8080\nTHREAD_POOL_SIZE=lots\n');
    const r = await runTcpool(['serve'], { cwd: dir });
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'tcpool: Invalid THREAD_POOL_SIZE "lots" (at config.txt:2): must be an integer from 1 to 1024\n',
    );
    assert.equal(r.stdout, '');
  });

  test('bad values from env and flags, unknown flags and a missing file also exit 2', async () => {
    const env = await runTcpool(['serve'], { env: { MAX_CONNECTIONS: '-5' } });
    assert.equal(env.code, 2);
    assert.equal(
      env.stderr,
      'tcpool: Invalid MAX_CONNECTIONS "-5" (from environment variable MAX_CONNECTIONS): must be an integer from 1 to 1000000\n',
    );
    const flag = await runTcpool(['serve', '--log-level', 'chatty']);
    assert.equal(flag.code, 2);
    assert.equal(
      flag.stderr,
      'tcpool: Invalid LOG_LEVEL "chatty" (from flag --log-level): must be one of DEBUG, INFO, WARN, ERROR\n',
    );
    const unknown = await runTcpool(['serve', '--prot', '1']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr, 'tcpool: Unknown option --prot (see tcpool serve --help)\n');
    const missing = await runTcpool(['serve', '/no/such/config.txt']);
    assert.equal(missing.code, 2);
    assert.equal(
      missing.stderr,
      'tcpool: Cannot read config file /no/such/config.txt: no such file\n',
    );
  });

  test('a port in use exits 1 with a one-line reason, no stack trace', async () => {
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as { port: number }).port;
    try {
      const r = await runTcpool(['serve', '--port', String(port), '--host', '127.0.0.1']);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `tcpool: Port ${port} is already in use (127.0.0.1:${port})\n`);
    } finally {
      holder.close();
    }
  });

  test('a port held by another tcpool is refused too (SO_REUSEPORT must not join it)', async () => {
    const first = await startServer();
    servers.push(first);
    const r = await runTcpool(['serve', '--port', String(first.port)], {
      env: { HOST: '127.0.0.1' },
    });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `tcpool: Port ${first.port} is already in use (127.0.0.1:${first.port})\n`,
    );
  });

  test('an unknown key in the config file is logged as a warning naming file:line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpool-warn-'));
    writeFileSync(join(dir, 'my.conf'), '# mine\nCOLOUR=blue\n');
    const server = await startServer({ cwd: dir, args: ['my.conf'] });
    servers.push(server);
    assert.match(server.stdout, /\[WARN\] Unknown config key COLOUR at my\.conf:2 \(ignored\)\n/);
    assert.match(server.stdout, /\[INFO\] Config loaded from my\.conf\n/);
    await server.stop();
  });

  test("the original's config.txt runs unchanged (PORT from the environment wins)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpool-orig-'));
    writeFileSync(join(dir, 'config.txt'), readFileSync(ORIGINAL));
    const server = await startServer({ cwd: dir, env: { PORT: '0', THREAD_POOL_SIZE: undefined } });
    servers.push(server);
    assert.match(server.stdout, /\[INFO\] Config loaded from config\.txt\n/);
    assert.match(server.stdout, /\[INFO\] Server starting on port 0\n/);
    assert.match(server.stdout, /\[INFO\] Thread pool size: 4\n/);
    assert.match(server.stdout, /\[INFO\] Max connections: 100\n/);
    const c = await TestClient.connect(server.port);
    assert.match(await c.request('STATS FULL'), / workers=4 /);
    c.close();
    await c.closedPromise;
    const { code } = await server.stop();
    assert.equal(code, 0);
    // LOG_FILE=server.log: the same lines as stdout, appended.
    assert.equal(readFileSync(join(dir, 'server.log'), 'utf8'), server.stdout);
  });
});

/** Pids of every live process below `pid` (read from /proc: Linux only, like SO_REUSEPORT). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid …"; comm may hold spaces and parentheses, so split after the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      found.push(c);
      walk(c);
    }
  };
  walk(pid);
  return found;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('a signal to the process npm or npx started reaches the server', () => {
  const ROOT = new URL('../..', import.meta.url).pathname;
  const cases: [string, string, string[], NodeJS.Signals][] = [
    ['npm start', 'npm', ['start'], 'SIGTERM'],
    ['npm start', 'npm', ['start'], 'SIGINT'],
    ['npx tcpool serve', 'npx', ['tcpool', 'serve'], 'SIGTERM'],
  ];
  for (const [name, command, args, signal] of cases) {
    test(`${signal} to the pid of \`${name}\`: graceful shutdown, exit 0, nothing left behind`, async () => {
      const server = new ServerProcess(
        spawn(command, args, {
          cwd: ROOT,
          env: cleanEnv({ PORT: '0', HOST: '127.0.0.1', THREAD_POOL_SIZE: '1' }),
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      servers.push(server);
      let below: number[] = [];
      try {
        const m = await server.waitForLog(/Server listening on \S+:(\d+)/, 30_000);
        const c = await TestClient.connect(Number(m[1]));
        assert.equal(await c.request('PING'), 'PONG');
        below = descendants(server.pid);
        assert.ok(below.length > 0, 'npm started something');
        const { code, signal: killedBy } = await server.stop(signal, 10_000);
        assert.equal(killedBy, null);
        assert.equal(code, 0, server.stderr);
        await c.closedPromise;
      } finally {
        for (const pid of below) if (alive(pid)) process.kill(pid, 'SIGKILL');
      }
      assert.match(
        server.stdout,
        new RegExp(`\\[INFO\\] Received ${signal}, shutting down server`),
      );
      assert.match(
        server.stdout,
        /\[INFO\] Server stopped\. Total active clients at shutdown: 1\n/,
      );
      assert.deepEqual(below.filter(alive), [], 'processes left behind');
      assert.doesNotMatch(server.stderr, /EBADENGINE|warn/i);
    });
  }

  test('npm killed outright (SIGKILL): the server notices and shuts down gracefully', async () => {
    const npm = new ServerProcess(
      spawn('npm', ['start'], {
        cwd: ROOT,
        env: cleanEnv({ PORT: '0', HOST: '127.0.0.1', THREAD_POOL_SIZE: '1' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    servers.push(npm);
    await npm.waitForLog(/Server listening on/, 30_000);
    const below = descendants(npm.pid);
    try {
      await npm.stop('SIGKILL');
      // The server still holds npm's stdout pipe, so its last lines arrive after npm is gone.
      for (let i = 0; i < 50 && below.some(alive); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(below.filter(alive), [], 'processes left behind');
      const out = npm.child.stdout!;
      if (!out.closed) await new Promise((r) => out.once('close', r));
    } finally {
      for (const pid of below) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    assert.match(npm.stdout, /\[INFO\] Parent process \d+ \(npm\) is gone, shutting down server/);
    assert.match(npm.stdout, /\[INFO\] Server stopped\. Total active clients at shutdown: 0\n/);
  });
});
