import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { hashTokenScrypt, hashTokenSha256, TokenVerifier } from '../../src/auth/tokens.ts';
import { loadConfig } from '../../src/config/load.ts';
import { IpTable } from '../../src/stats/ip-table.ts';
import { monotonicMs } from '../../src/stats/clock.ts';

const limits = { rate: 0, rateBurst: 1, authMaxFailures: 3, authWindowS: 60 };

describe('AUTH tokens', () => {
  test('sha256 and scrypt hashes verify the right token only', async () => {
    const v = new TokenVerifier([hashTokenSha256('alpha'), await hashTokenScrypt('beta')]);
    assert.equal(v.enabled, true);
    assert.equal(await v.verify(Buffer.from('alpha')), true);
    assert.equal(await v.verify(Buffer.from('beta')), true);
    assert.equal(await v.verify(Buffer.from('gamma')), false);
    assert.equal(await v.verify(Buffer.from('')), false);
    assert.equal(new TokenVerifier([]).enabled, false);
  });

  test('config takes hashes only: a plain token is refused, naming where it came from', () => {
    assert.deepEqual(
      loadConfig({ env: { AUTH_TOKENS: hashTokenSha256('x') } }).config.AUTH_TOKENS,
      [hashTokenSha256('x')],
    );
    assert.throws(
      () => loadConfig({ env: { AUTH_TOKENS: 'hunter2' } }),
      /^ConfigError: Invalid AUTH_TOKENS "hunter2" \(from environment variable AUTH_TOKENS\): must be a comma-separated list of token hashes made by `tcpool hash-token`/,
    );
  });

  test('AUTH_TOKENS_FILE adds hashes; a bad line is named by file:line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpool-tokens-'));
    const good = join(dir, 'tokens');
    writeFileSync(good, `# ops team\n${hashTokenSha256('a')}\n\n${hashTokenSha256('b')}\n`);
    assert.equal(loadConfig({ env: { AUTH_TOKENS_FILE: good } }).config.AUTH_TOKENS.length, 2);
    const bad = join(dir, 'bad');
    writeFileSync(bad, `${hashTokenSha256('a')}\nplaintext\n`);
    assert.throws(
      () => loadConfig({ env: { AUTH_TOKENS_FILE: bad } }),
      new RegExp(`${bad}:2: not a token hash`),
    );
  });

  test('PROXY_PROTOCOL needs TRUSTED_PROXIES; CIDRs are validated', () => {
    assert.throws(() => loadConfig({ env: { PROXY_PROTOCOL: 'v2' } }), /needs TRUSTED_PROXIES/);
    assert.deepEqual(
      loadConfig({ env: { TRUSTED_PROXIES: '10.0.0.0/8, ::1' } }).config.TRUSTED_PROXIES,
      ['10.0.0.0/8', '::1/128'],
    );
    assert.throws(
      () => loadConfig({ env: { TRUSTED_PROXIES: '10.0.0.0/33' } }),
      /Invalid TRUSTED_PROXIES "10.0.0.0\/33"/,
    );
    assert.throws(
      () => loadConfig({ env: { AUTH_EXEMPT_NETWORKS: 'example.com' } }),
      /Invalid AUTH_EXEMPT_NETWORKS/,
    );
  });
});

describe('IpTable (per-IP state shared by workers)', () => {
  test('connections per IP are limited and released', () => {
    const t = IpTable.create(64);
    const a = t.connect('10.0.0.1', 2, limits)!;
    assert.ok(a >= 0);
    assert.equal(t.connect('10.0.0.1', 2, limits), a);
    assert.equal(t.connect('10.0.0.1', 2, limits), null);
    assert.ok(t.connect('10.0.0.2', 2, limits)! >= 0, 'another IP is unaffected');
    t.disconnect(a);
    assert.equal(t.connect('10.0.0.1', 2, limits), a);
    assert.equal(t.connect('10.0.0.1', 2, limits), null, 'the release was counted once');
  });

  test('the token bucket allows the burst, then RATE_LIMIT per second', () => {
    const t = IpTable.create(64);
    const l = { ...limits, rate: 10, rateBurst: 5 };
    const entry = t.connect('10.0.0.9', 0, l)!;
    const takeOne = (now: number) => t.takeTokens(entry, l, now, 1) === 1;
    const start = monotonicMs();
    const allowed = Array.from({ length: 8 }, () => takeOne(start)).filter(Boolean).length;
    assert.equal(allowed, 5);
    assert.equal(takeOne(start + 99), false, '0.99 token after 99 ms');
    assert.equal(takeOne(start + 200), true, 'one token back after 100 ms');
    assert.equal(takeOne(start + 10_000), true);
    const burst = Array.from({ length: 8 }, () => takeOne(start + 10_000)).filter(Boolean).length;
    assert.equal(burst, 4, 'refill never exceeds the burst');
  });

  test('AUTH failures block an IP for the rest of the window', () => {
    const t = IpTable.create(64);
    const entry = t.connect('10.0.0.3', 0, limits)!;
    assert.equal(t.authBlocked(entry, limits), false);
    for (let i = 1; i <= 3; i++) assert.equal(t.authFailed(entry, limits), i);
    assert.equal(t.authBlocked(entry, limits), true);
  });

  test('exact under threads racing for the same IP', async () => {
    const t = IpTable.create(1024);
    const code = `
      const { workerData } = require('node:worker_threads');
      const { buffer, path } = workerData;
      import(path).then(({ IpTable }) => {
        const t = new IpTable(buffer);
        const l = { rate: 0, rateBurst: 1, authMaxFailures: 0, authWindowS: 60 };
        for (let i = 0; i < 5000; i++) { const s = t.connect('192.0.2.1', 0, l); t.connect('192.0.2.1', 0, l); t.disconnect(s); }
      });`;
    const path = new URL('../../src/stats/ip-table.ts', import.meta.url).href;
    await Promise.all(
      [0, 1, 2, 3].map(
        () =>
          new Promise((resolve, reject) => {
            const w = new Worker(code, { eval: true, workerData: { buffer: t.buffer, path } });
            w.on('exit', resolve);
            w.on('error', reject);
          }),
      ),
    );
    // Exactly 4 × 5000 connections are counted: one more fits under a limit of 20001, two do not.
    assert.notEqual(t.connect('192.0.2.1', 4 * 5000 + 1, limits), null);
    assert.equal(t.connect('192.0.2.1', 4 * 5000 + 1, limits), null);
  });
});
