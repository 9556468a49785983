// The command API v1 against a real server: declared arguments over both protocols, hooks per
// worker (setup before accepting, teardown at shutdown, a failing setup stops start-up), the
// startup log line, CommandError, per-command timeout (the connection carries on in order),
// noAuth and rate-limit cost.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hashTokenSha256 } from '../../src/auth/tokens.ts';
import { encodeRespRequest } from '../../src/protocol/resp.ts';
import { TestClient } from '../helpers/client.ts';
import { runTcpool, type ServerProcess, startServer } from '../helpers/server.ts';

const MODULE = new URL('../fixtures/platform-commands.ts', import.meta.url).pathname;
const resp = (...args: string[]) => encodeRespRequest(args);

describe('a v1 command module', () => {
  let server: ServerProcess;
  const teardownFile = join(mkdtempSync(join(tmpdir(), 'tcpool-teardown-')), 'closed.txt');
  before(async () => {
    server = await startServer({
      env: { COMMANDS_MODULE: MODULE, THREAD_POOL_SIZE: '2', TEARDOWN_FILE: teardownFile },
    });
  });
  after(() => server.kill());

  test('the log names the module and its commands; setup ran in every worker first', async () => {
    await server.waitForLog(
      /Commands module \S+platform-commands\.ts loaded: GREET, POOL, USER, NAP, STATUS, HEAVY/,
    );
    await server.waitForLog(/pool opened in worker 0/);
    await server.waitForLog(/pool opened in worker 1/);
    const c = await TestClient.connect(server.port);
    assert.match(await c.request('POOL'), /^pool of worker [01]$/);
    c.close();
  });

  test('declared arguments: usage, HELP, wrong arguments in each protocol style', async () => {
    const l = await TestClient.connect(server.port);
    assert.equal(await l.request('GREET two  words'), 'Hello, two  words');
    assert.equal(await l.request('HELP USER'), 'USER <id>: Looks a user up.');
    assert.equal(
      await l.request('USER zero'),
      "ERROR: Invalid 'id' for 'USER': must be an integer of at least 1 (usage: USER <id>)",
    );
    assert.equal(
      await l.request('USER'),
      "ERROR: Wrong number of arguments for 'USER' (usage: USER <id>)",
    );
    l.close();
    const r = await TestClient.connect(server.port);
    r.write(Buffer.concat([resp('greet', 'two', 'words'), resp('USER', '0')]));
    assert.equal(await r.readLine(), '+Hello, two words\r');
    assert.equal(
      await r.readLine(),
      "-ERR invalid 'id' for 'user' command: must be an integer of at least 1\r",
    );
    r.close();
  });

  test('CommandError: ERROR: message on a line, -CODE message over RESP', async () => {
    const l = await TestClient.connect(server.port);
    assert.equal(await l.request('USER 1'), 'ada');
    assert.equal(await l.request('USER 2'), 'ERROR: no user 2');
    l.close();
    const r = await TestClient.connect(server.port);
    r.write(resp('USER', '2'));
    assert.equal(await r.readLine(), '-NOTFOUND no user 2\r');
    r.close();
  });

  test('a timed-out command replies an error and the replies stay in order', async () => {
    const l = await TestClient.connect(server.port);
    l.write('NAP 5000\nNAP 1\nPING\n');
    const t0 = Date.now();
    assert.deepEqual(await l.readLines(3), [
      'ERROR: Command NAP timed out after 100 ms',
      'slept 1',
      'PONG',
    ]);
    assert.ok(Date.now() - t0 < 3000, 'answered at the timeout, not when the nap ended');
    l.close();
  });

  test('teardown runs in every worker at shutdown', async () => {
    const { code } = await server.stop('SIGTERM');
    assert.equal(code, 0);
    assert.deepEqual(readFileSync(teardownFile, 'utf8').split('\n').sort(), [
      '',
      'closed 0',
      'closed 1',
    ]);
  });
});

test('a failing setup stops start-up with a message naming the module', async () => {
  const { code, stderr } = await runTcpool(['serve'], {
    env: {
      COMMANDS_MODULE: MODULE,
      PORT: '0',
      HOST: '127.0.0.1',
      FAIL_SETUP: '1',
      THREAD_POOL_SIZE: '1',
    },
  });
  assert.equal(code, 1);
  assert.match(
    stderr,
    /^tcpool: COMMANDS_MODULE \S+platform-commands\.ts: setup failed in worker 0: cannot reach the database\n$/,
  );
});

test('noAuth commands run before AUTH; cost takes that many rate-limit tokens', async () => {
  const server = await startServer({
    env: {
      COMMANDS_MODULE: MODULE,
      AUTH_TOKENS: hashTokenSha256('sesame'),
      RATE_LIMIT: '1',
      RATE_LIMIT_BURST: '6',
    },
  });
  try {
    const c = await TestClient.connect(server.port);
    assert.equal(await c.request('STATUS'), 'up');
    assert.equal(await c.request('GREET you'), 'ERROR: Authentication required');
    assert.equal(await c.request('AUTH sesame'), 'OK');
    // 6 tokens of burst: STATUS, GREET and AUTH took 3, so HEAVY (5) is refused, however split.
    assert.equal(await c.request('HEAVY'), 'ERROR: Rate limit exceeded');
    c.close();
  } finally {
    await server.kill();
  }
});
