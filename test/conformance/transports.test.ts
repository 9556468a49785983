// The conformance suite: the same tests, run against every transport (as hono runs one suite
// against every runtime). Each transport must give a client the same executor, limits, counters,
// logging, AUTH, rate limit, timeouts, output limit and shutdown as plain TCP. The clients are in
// clients.ts; servers are real processes with every transport on.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashTokenSha256 } from '../../src/auth/tokens.ts';
import { makeCerts } from '../helpers/certs.ts';
import { freePort, type ServerProcess, startServer } from '../helpers/server.ts';
import {
  type ConformanceClient,
  type Outcome,
  observer,
  type Ports,
  transports,
} from './clients.ts';

const TOKEN = 'conformance-token';
const STARTED = new URL('../fixtures/started-commands.js', import.meta.url).pathname;
const certs = makeCerts();
const ca = readFileSync(certs.ca, 'utf8');

async function start(
  env: Record<string, string>,
): Promise<{ server: ServerProcess; ports: Ports }> {
  const [tlsPort, wsPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const server = await startServer({
    env: {
      TLS_PORT: String(tlsPort),
      TLS_CERT: certs.serverCert,
      TLS_KEY: certs.serverKey,
      WS_PORT: String(wsPort),
      HTTP_PORT: String(httpPort),
      LOG_LEVEL: 'INFO',
      ...env,
    },
  });
  return { server, ports: { port: server.port, tlsPort, wsPort, httpPort, ca } };
}

/** Every counter, read over the line protocol (authenticating when the server wants it). */
async function counters(ports: Ports, token?: string): Promise<Record<string, number>> {
  const client = await observer(ports);
  if (token !== undefined) await client.auth(token);
  const r = await client.command('STATS', 'FULL');
  client.close();
  assert.ok('ok' in r, JSON.stringify(r));
  return Object.fromEntries(
    r.ok.split(' ').map((kv) => {
      const [k, v] = kv.split('=');
      return [k, Number(v)];
    }),
  );
}

const ok = (r: Outcome): string => {
  assert.ok('ok' in r, `expected a reply, got ${JSON.stringify(r)}`);
  return r.ok;
};
const err = (r: Outcome): string => {
  assert.ok('err' in r, `expected an error, got ${JSON.stringify(r)}`);
  return r.err;
};

/** Polls `check` (bounded) until it holds. */
async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 5000) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(25);
  }
}

const plain = await start({
  IDLE_TIMEOUT_MS: '800',
  OUTPUT_BUFFER_LIMIT: '65536',
  MAX_LINE_BYTES: '262144',
});
const guarded = await start({
  AUTH_TOKENS: hashTokenSha256(TOKEN),
  // A rate low next to the burst: what refills while a burst is sent (sequentially over HTTP/1.1,
  // slowly on a loaded machine) stays small next to what is refused.
  RATE_LIMIT: '10',
  RATE_LIMIT_BURST: '20',
});
const perIp = await start({ MAX_CONNECTIONS_PER_IP: '2' });
// Protected mode needs a public HOST. Tests reach the server on 127.0.0.1 only: a "remote"
// client is one a trusted proxy (127.0.0.1, PROXY v1) says is at a documentation address
// (RFC 5737); the observer that reads counters connects from 127.0.0.2, loopback and no proxy.
const behindProxy = { HOST: '0.0.0.0', PROXY_PROTOCOL: 'v1', TRUSTED_PROXIES: '127.0.0.1' };
const exposed = await start(behindProxy);
const exposedWithAuth = await start({ ...behindProxy, AUTH_TOKENS: hashTokenSha256(TOKEN) });
after(async () => {
  for (const s of [plain, guarded, perIp, exposed, exposedWithAuth]) await s.server.kill();
});

// Bun serves no h2c (docs/PERFORMANCE.md; test/integration/http.test.ts checks its refusal).
const tested = transports.filter(
  (t) => !(process.env.TCPOOL_TEST_RUNTIME === 'bun' && t.name === 'http/2 (h2c)'),
);

/** What a client gets for PING: the reply or error, "closed", or why its connection failed. */
async function firstReply(connect: () => Promise<ConformanceClient>): Promise<string> {
  let client: ConformanceClient;
  try {
    client = await connect();
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
  const r = await client.command('PING');
  return 'ok' in r ? `ok: ${r.ok}` : 'err' in r ? `err: ${r.err}` : 'closed';
}

for (const [i, transport] of tested.entries()) {
  describe(`conformance: ${transport.name}`, () => {
    const open: ConformanceClient[] = [];
    const connect = async (ports: Ports, via?: string) => {
      const c = await transport.connect(ports, via);
      open.push(c);
      return c;
    };
    before(() => sleep(0));
    after(() => {
      for (const c of open) c.close();
    });

    test('commands run through the one executor and are counted', async () => {
      const before = await counters(plain.ports);
      const c = await connect(plain.ports);
      assert.equal(ok(await c.command('PING')), 'PONG');
      assert.equal(ok(await c.command('ECHO', 'hello')), 'hello');
      assert.match(err(await c.command('NOSUCHCOMMAND')), /unknown command/i);
      assert.match(err(await c.command('ECHO')), /wrong number of arguments/i);
      const after = await counters(plain.ports);
      // PING, ECHO and the ECHO refused for its arity ran (the unknown one is refused before).
      assert.ok(after.commands - before.commands >= 3, `${before.commands} → ${after.commands}`);
      c.close();
    });

    test('connections are logged when they come and go', async () => {
      const c = await connect(plain.ports);
      ok(await c.command('PING'));
      const logged = (plain.server.stdout.match(/Client connected: 127\.0\.0\.1:\d+/g) ?? [])
        .length;
      assert.ok(logged > 0);
      const gone = (plain.server.stdout.match(/Client disconnected: /g) ?? []).length;
      c.close();
      await eventually(
        () => (plain.server.stdout.match(/Client disconnected: /g) ?? []).length > gone,
        'a "Client disconnected" line',
      );
    });

    test('a reply over OUTPUT_BUFFER_LIMIT cuts the client off, counted', async () => {
      const before = await counters(plain.ports);
      const c = await connect(plain.ports);
      const r = await c.command('ECHO', 'x'.repeat(100_000));
      assert.ok(!('ok' in r), 'the 100 kB reply must not arrive');
      await c.closed;
      const after = await counters(plain.ports);
      assert.equal(after.output_limit_disconnects - before.output_limit_disconnects, 1);
    });

    test('an idle client is closed after IDLE_TIMEOUT_MS, counted', async () => {
      const before = await counters(plain.ports);
      const c = await connect(plain.ports);
      ok(await c.command('PING'));
      const t0 = Date.now();
      await c.closed;
      assert.ok(Date.now() - t0 >= 500, `closed after ${Date.now() - t0} ms`);
      const after = await counters(plain.ports);
      assert.ok(after.idle_timeouts - before.idle_timeouts >= 1);
    });

    test('AUTH: refused before, a wrong token refused and counted, the right one works', async () => {
      await sleep(1100); // the rate limit's bucket refills between transports
      const before = await counters(guarded.ports, TOKEN);
      const c = await connect(guarded.ports);
      assert.match(err(await c.command('PING')), /auth/i);
      const wrong = await c.auth('not-the-token');
      assert.ok('err' in wrong && /invalid|wrong|auth/i.test(wrong.err), JSON.stringify(wrong));
      const c2 = await connect(guarded.ports);
      ok(await c2.auth(TOKEN));
      assert.equal(ok(await c2.command('ECHO', 'in')), 'in');
      const after = await counters(guarded.ports, TOKEN);
      assert.equal(after.auth_failures - before.auth_failures, 1);
    });

    test('RATE_LIMIT refuses past the burst, counted', async () => {
      await sleep(1100);
      const c = await connect(guarded.ports);
      ok(await c.auth(TOKEN));
      const t0 = performance.now();
      const outcomes = await Promise.all(Array.from({ length: 40 }, () => c.command('PING')));
      const seconds = (performance.now() - t0) / 1000;
      const refused = outcomes.filter((o) => 'err' in o && /rate/i.test(o.err)).length;
      const served = outcomes.filter((o) => 'ok' in o).length;
      // At most the burst (20) at once, and RATE_LIMIT (10/s) more for the time the 40 took.
      const most = 20 + Math.floor(10 * seconds) + 1;
      const why = `${served} served, ${refused} refused of 40 in ${seconds.toFixed(2)} s`;
      assert.ok(served <= most, why);
      assert.ok(refused >= 40 - most && refused > 0, why);
      await sleep(1100);
      const after = await counters(guarded.ports, TOKEN);
      assert.ok(after.rate_limited >= refused);
    });

    test('MAX_CONNECTIONS_PER_IP refuses the next client, counted', async () => {
      const before = await counters(perIp.ports);
      // The STATS client's slot is freed when its worker sees it close, which may lag behind the
      // next accept (on another worker): retry until two clients are in, counting the refusals.
      let a = await connect(perIp.ports);
      let b = await connect(perIp.ports);
      let refusedEarly = 0;
      await eventually(async () => {
        const replies = [await a.command('PING'), await b.command('PING')];
        const refused = replies.filter((r) => !('ok' in r)).length;
        if (refused === 0) return true;
        refusedEarly += refused;
        a.close();
        b.close();
        await sleep(50);
        a = await connect(perIp.ports);
        b = await connect(perIp.ports);
        return false;
      }, 'two clients of one IP admitted');
      let outcome: Outcome | Error;
      try {
        const c = await connect(perIp.ports);
        outcome = await c.command('PING');
      } catch (e) {
        outcome = e as Error;
      }
      assert.ok(
        outcome instanceof Error ||
          'closed' in outcome ||
          ('err' in outcome && /too many|max number of clients|503/i.test(outcome.err)),
        JSON.stringify(outcome),
      );
      a.close();
      b.close();
      await sleep(100);
      const after = await counters(perIp.ports);
      assert.equal(after.rejected_per_ip - before.rejected_per_ip, 1 + refusedEarly);
    });

    test("protected mode: a remote client is refused in this transport's words, counted and logged; loopback is served", async () => {
      await sleep(1100); // the last transport's refusal no longer holds the log throttle
      const remote = `203.0.113.${10 + i}`;
      const before = await counters(exposed.ports);
      const got = await firstReply(() => connect(exposed.ports, remote));
      const why = 'Protected mode: tcpool listens on a public address without AUTH';
      if (transport.refusal === 'close')
        // TLS is refused before its handshake, by closing: nothing could be read before it.
        assert.match(got, /^refused: .*(disconnected|ECONNRESET|socket hang up)/i);
      else if (transport.refusal === 'http')
        // HTTP/1.1 and upgrades: a 403 with the API's error JSON; h2c: a GOAWAY carrying it.
        assert.match(got, new RegExp(`^(refused|err): (403|GOAWAY 7) ERR_PROTECTED_MODE ${why}`));
      else
        assert.match(
          got,
          new RegExp(`^err: (ERROR: )?(${why}|DENIED tcpool is running in protected mode)`),
        );
      await exposed.server.waitForLog(
        new RegExp(
          `\\[WARN\\] Connection refused by protected mode: ${remote.replaceAll('.', '\\.')}:\\d+`,
        ),
      );
      assert.equal(await firstReply(() => connect(exposed.ports, '127.0.0.1')), 'ok: PONG');
      const after = await counters(exposed.ports);
      assert.equal(after.protected_mode_rejections - before.protected_mode_rejections, 1);
    });

    test('protected mode is off with AUTH_TOKENS: the remote client is served once authenticated', async () => {
      const c = await connect(exposedWithAuth.ports, `198.51.100.${10 + i}`);
      assert.match(err(await c.command('PING')), /auth/i);
      ok(await c.auth(TOKEN));
      assert.equal(ok(await c.command('ECHO', 'afar')), 'afar');
      const stats = await counters(exposedWithAuth.ports, TOKEN);
      assert.equal(stats.protected_mode_rejections, 0);
      c.close();
    });

    test('shutdown answers what was asked, then closes the client; the server exits 0', async () => {
      const { server, ports } = await start({ COMMANDS_MODULE: STARTED });
      try {
        const c = await connect(ports);
        ok(await c.command('PING'));
        // SIGTERM once the request is in (its command has started), while it is being answered.
        const mark = join(mkdtempSync(join(tmpdir(), 'tcpool-conformance-')), 'started');
        const pending = c.command('SLOWMARK', mark, '300', 'last');
        await eventually(() => existsSync(mark), 'SLOWMARK started', 10_000);
        const stopped = server.stop('SIGTERM', 10_000);
        assert.equal(ok(await pending), 'last');
        await c.closed;
        const { code } = await stopped;
        assert.equal(code, 0);
      } finally {
        await server.kill();
      }
    });
  });
}
