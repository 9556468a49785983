// POOL_AUTOSCALE against a real server: load from `tcpool bench` (a command that keeps the event
// loop busy) grows the pool, idleness shrinks it, within min..max; logged, counted in /metrics and
// STATS FULL, shown by /api/v1/pool; explicit sizes outside the range are refused; a reload turns
// it on (bringing the pool within the range) and off (back to THREAD_POOL_SIZE).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { type AdminServer, admin, startAdminServer } from '../helpers/admin.ts';
import { TestClient } from '../helpers/client.ts';
import { BIN, cleanEnv, runTcpool, SERVER_RUNTIME } from '../helpers/server.ts';

const BUSY = new URL('../fixtures/busy-commands.js', import.meta.url).pathname;
/** Bun reports no event-loop utilisation, so POOL_AUTOSCALE stays off there (last test). */
const nodeOnly = {
  skip: SERVER_RUNTIME === 'bun' ? 'Bun reports no event-loop utilisation' : false,
};
/** One worker, autoscaled within 1..2 on short windows, serving BUSY (a command that blocks). */
const ONE_TO_TWO = {
  THREAD_POOL_SIZE: '1',
  COMMANDS_MODULE: BUSY,
  POOL_AUTOSCALE: '1..2',
  POOL_AUTOSCALE_HIGH_PERCENT: '60',
  POOL_AUTOSCALE_LOW_PERCENT: '20',
  POOL_AUTOSCALE_WINDOW_MS: '1500',
  POOL_AUTOSCALE_COOLDOWN_MS: '500',
};
const servers: AdminServer[] = [];
after(async () => {
  for (const s of servers) await s.kill();
});

// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, checked field by field
type Pool = any;

/**
 * Polls /api/v1/pool (every 50 ms, at most 400 times) until `done` says so; returns every size
 * seen on the way.
 */
async function poolUntil(server: AdminServer, done: (pool: Pool) => boolean): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < 400; i++) {
    const pool = (await admin(server.adminPort, 'GET', '/api/v1/pool')).json;
    seen.push(pool.size);
    if (done(pool)) return seen;
    await sleep(50);
  }
  assert.fail(`the pool did not get there: ${seen.slice(-10)}; log:\n${server.stdout}`);
}

test(
  'a step of the wall clock an hour back does not stop the pool from growing under load',
  nodeOnly,
  async () => {
    const preload = new URL('../fixtures/clock-step.ts', import.meta.url).pathname;
    const server = await startAdminServer({
      env: {
        ...ONE_TO_TWO,
        // Date.now() jumps an hour back in every thread after 600 ms (a worker's load samples
        // would then look older than the worker itself on a wall clock).
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}`,
        TCPOOL_TEST_CLOCK_STEP_MS: '-3600000',
        TCPOOL_TEST_CLOCK_STEP_AFTER_MS: '600',
      },
    });
    servers.push(server);
    await sleep(800); // past the step
    const load = spawn(
      process.execPath,
      [BIN, 'bench', '--port', String(server.port), '--command', 'BUSY 5', '-c', '2', '-d', '30'],
      { env: cleanEnv(), stdio: 'ignore' },
    );
    try {
      await poolUntil(server, (pool) => pool.size === 2);
    } finally {
      load.kill('SIGTERM');
    }
    await server.kill();
  },
);

test(
  'bench load grows the pool, idleness shrinks it, within min..max; logged, counted, shown',
  nodeOnly,
  async () => {
    const server = await startAdminServer({
      env: {
        ...ONE_TO_TWO,
        DRAIN_TIMEOUT_MS: '1000',
      },
    });
    servers.push(server);
    await server.waitForLog(
      /Pool autoscale: 1\.\.2 workers: one more above 60% mean event-loop utilisation, one fewer below 20%, held for 1500 ms; 500 ms between changes/,
    );
    const before = (await admin(server.adminPort, 'GET', '/api/v1/pool')).json;
    assert.deepEqual(before, {
      size: 1,
      max: 64,
      retiring: 0,
      autoscale: {
        min: 1,
        max: 2,
        highPercent: 60,
        lowPercent: 20,
        windowMs: 1500,
        cooldownMs: 500,
        grows: 0,
        shrinks: 0,
      },
    });

    // Two connections keep the one worker's event loop busy (BUSY spins 5 ms a request).
    const load = spawn(
      process.execPath,
      [BIN, 'bench', '--port', String(server.port), '--command', 'BUSY 5', '-c', '2', '-d', '120'],
      { env: cleanEnv(), stdio: 'ignore' },
    );
    const loadExit = new Promise((r) => load.on('exit', r));
    try {
      const growing = await poolUntil(server, (p) => p.size === 2 && p.autoscale.grows === 1);
      assert.ok(
        growing.every((n) => n <= 2),
        `never past max: ${growing}`,
      );
      assert.match(
        server.stdout,
        /Autoscale: growing the pool 1 -> 2 workers \(mean event-loop utilisation \d+%, above 60% for \d+ ms\)/,
      );

      // Explicit sizes: within min..max accepted; outside refused, saying why.
      const outside = await admin(server.adminPort, 'PUT', '/api/v1/pool', { body: { size: 3 } });
      assert.equal(outside.status, 400);
      assert.deepEqual(outside.json.error, {
        code: 'ERR_CONFIG_VALUE',
        message:
          'Invalid pool size 3: POOL_AUTOSCALE keeps the pool within 1..2 (change POOL_AUTOSCALE, or set it off, for another size)',
      });
      const inside = await admin(server.adminPort, 'PUT', '/api/v1/pool', { body: { size: 2 } });
      assert.equal(inside.status, 200);
    } finally {
      process.kill(load.pid!, 'SIGTERM');
      await loadExit;
    }

    const shrinking = await poolUntil(server, (p) => p.size === 1 && p.autoscale.shrinks === 1);
    assert.ok(
      shrinking.every((n) => n >= 1 && n <= 2),
      `within 1..2: ${shrinking}`,
    );
    assert.match(
      server.stdout,
      /Autoscale: shrinking the pool 2 -> 1 workers \(mean event-loop utilisation \d+%, below 20% for \d+ ms\)/,
    );

    const pool = (await admin(server.adminPort, 'GET', '/api/v1/pool')).json;
    assert.deepEqual([pool.autoscale.grows, pool.autoscale.shrinks], [1, 1]);
    const metrics = (await admin(server.adminPort, 'GET', '/metrics')).text;
    assert.match(metrics, /^tcpool_pool_autoscale_total\{direction="up"\} 1$/m);
    assert.match(metrics, /^tcpool_pool_autoscale_total\{direction="down"\} 1$/m);
    const c = await TestClient.connect(server.port);
    assert.match(await c.request('STATS FULL'), / autoscale_grows=1 autoscale_shrinks=1\b/);
    c.close();
    const ctl = (...args: string[]) =>
      runTcpool(['ctl', '--port', String(server.adminPort), 'pool', ...args]);
    const shown = await ctl();
    assert.equal(shown.stdout, 'Pool size 1 (max 64); autoscale 1..2 (1 up, 1 down so far)\n');
    const refused = await ctl('5');
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /^tcpool: Invalid pool size 5: POOL_AUTOSCALE keeps the pool within 1\.\.2 /,
    );
    const config = (await admin(server.adminPort, 'GET', '/api/v1/config')).json;
    assert.deepEqual(config.THREAD_POOL_SIZE, { value: 1, source: 'autoscale' });
    assert.deepEqual(config.POOL_AUTOSCALE, { value: { min: 1, max: 2 }, source: 'env' });

    // Drained (the autoscaler leaves the pool alone), then a clean stop, the autoscaler's timer too.
    assert.equal((await admin(server.adminPort, 'POST', '/api/v1/drain')).status, 200);
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  },
);

test(
  'reload: POOL_AUTOSCALE on brings the pool within its range, off restores THREAD_POOL_SIZE',
  nodeOnly,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpool-autoscale-'));
    const file = join(dir, 'config.txt');
    const write = (lines: string[]) => writeFileSync(file, `${lines.join('\n')}\n`);
    write(['THREAD_POOL_SIZE=3']);
    const server = await startAdminServer({ cwd: dir, env: { THREAD_POOL_SIZE: undefined } });
    servers.push(server);
    const reload = () => admin(server.adminPort, 'POST', '/api/v1/reload');

    // Long windows: only the bounds act during this test.
    const slow = ['POOL_AUTOSCALE_WINDOW_MS=3600000', 'POOL_AUTOSCALE_COOLDOWN_MS=3600000'];
    write(['THREAD_POOL_SIZE=3', 'POOL_AUTOSCALE=1..2', ...slow]);
    const on = await reload();
    assert.equal(on.status, 200, on.text);
    assert.equal(on.json.poolSize, 2, 'brought within 1..2');
    await server.waitForLog(/Pool autoscale: 1\.\.2 workers/);

    write(['THREAD_POOL_SIZE=1', 'POOL_AUTOSCALE=2..4', ...slow]);
    assert.equal((await reload()).json.poolSize, 2, 'THREAD_POOL_SIZE 1 is below min 2');

    const bad = ['THREAD_POOL_SIZE=1', 'POOL_AUTOSCALE=4..2', ...slow];
    write(bad);
    const refused = await reload();
    assert.equal(refused.status, 422);
    assert.equal(
      refused.json.error.message,
      `Reload failed, configuration unchanged: Invalid POOL_AUTOSCALE "4..2" (at config.txt:2): must be off, or min..max workers with 1 ≤ min ≤ max ≤ 1024 (e.g. 2..8), max at most THREAD_POOL_MAX`,
    );

    write(['THREAD_POOL_SIZE=3']);
    const off = await reload();
    assert.equal(off.json.poolSize, 3, 'off: THREAD_POOL_SIZE again');
    await server.waitForLog(/Pool autoscale: off/);
    assert.equal((await admin(server.adminPort, 'GET', '/api/v1/pool')).json.autoscale, null);
  },
);

test('on Bun POOL_AUTOSCALE stays off, with a WARN that says why', {
  skip: SERVER_RUNTIME === 'bun' ? false : 'Bun only',
}, async () => {
  const server = await startAdminServer({ env: { THREAD_POOL_SIZE: '3', POOL_AUTOSCALE: '1..2' } });
  servers.push(server);
  await server.waitForLog(
    /\[WARN\] POOL_AUTOSCALE is off on Bun: Bun reports no event-loop utilisation/,
  );
  const pool = (await admin(server.adminPort, 'GET', '/api/v1/pool')).json;
  assert.deepEqual([pool.size, pool.autoscale], [3, null]);
});
