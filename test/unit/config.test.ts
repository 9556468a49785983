import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

const ORIGINAL = new URL('../fixtures/config.txt', import.meta.url).pathname;

function file(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'tcpool-config-')), 'config.txt');
  writeFileSync(path, text);
  return path;
}

function failure(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('config loading', () => {
  test("the original's config.txt loads unchanged", () => {
    const { config, origin, warnings } = loadConfig({ file: ORIGINAL, env: {} });
    assert.equal(config.PORT, 8080);
    assert.equal(config.THREAD_POOL_SIZE, 4);
    assert.equal(config.MAX_CONNECTIONS, 100);
    assert.equal(config.LOG_LEVEL, 'INFO');
    assert.equal(config.LOG_FILE, 'server.log');
    assert.equal(origin.PORT, `${ORIGINAL}:4`);
    assert.equal(origin.LOG_FILE, `${ORIGINAL}:10`);
    assert.deepEqual(warnings, []);
  });

  test('defaults without any source', () => {
    const { config, origin } = loadConfig({ env: {} });
    assert.deepEqual(config, {
      PORT: 8080,
      HOST: '0.0.0.0',
      THREAD_POOL_SIZE: Math.max(1, availableParallelism() - 1),
      MAX_CONNECTIONS: 10000,
      MAX_LINE_BYTES: 65536,
      MAX_BULK_BYTES: 16777216,
      MAX_ARGS: 1048576,
      MAX_REQUEST_BYTES: 67108864,
      OUTPUT_HIGH_WATER_BYTES: 262144,
      SHUTDOWN_TIMEOUT_MS: 5000,
      WORKER_YOUNG_GENERATION_MB: 8,
      LOG_LEVEL: 'INFO',
      LOG_FILE: '',
      LOG_FORMAT: 'text',
      LOG_BUFFER_BYTES: 1048576,
      COMMANDS_MODULE: '',
      COMMAND_TIMEOUT_MS: 30000,
      AUTH_TOKENS: [],
      AUTH_TOKENS_FILE: '',
      AUTH_MAX_FAILURES: 10,
      AUTH_FAILURE_WINDOW_MS: 60000,
      AUTH_EXEMPT_NETWORKS: [],
      PROTECTED_MODE: true,
      MAX_CONNECTIONS_PER_IP: 0,
      RATE_LIMIT: 0,
      RATE_LIMIT_BURST: 0,
      IDLE_TIMEOUT_MS: 0,
      REQUEST_TIMEOUT_MS: 10000,
      OUTPUT_BUFFER_LIMIT: 67108864,
      PUBSUB_OUTPUT_LIMIT_BYTES: 33554432,
      EVICT_SILENT_AFTER_MS: 5000,
      PROXY_PROTOCOL: 'off',
      TRUSTED_PROXIES: [],
      IP_TABLE_SLOTS: 65536,
      TLS_PORT: 0,
      TLS_CERT: '',
      TLS_KEY: '',
      TLS_CA: '',
      TLS_MIN_VERSION: 'TLSv1.2',
      TLS_HANDSHAKE_TIMEOUT_MS: 10000,
      WS_PORT: 0,
      WS_TLS: false,
      WS_ALLOWED_ORIGINS: [],
      WS_MAX_MESSAGE_BYTES: 1048576,
      WS_PING_INTERVAL_MS: 30000,
      HTTP_PORT: 0,
      HTTP_TLS: false,
      HTTP_MAX_BODY_BYTES: 1048576,
      TRACING: false,
      THREAD_POOL_MAX: 64,
      POOL_AUTOSCALE: null,
      POOL_AUTOSCALE_HIGH_PERCENT: 75,
      POOL_AUTOSCALE_LOW_PERCENT: 25,
      POOL_AUTOSCALE_WINDOW_MS: 30000,
      POOL_AUTOSCALE_COOLDOWN_MS: 60000,
      DRAIN_TIMEOUT_MS: 30000,
      DRAIN_DELAY_MS: 0,
      ADMIN_PORT: 9464,
      ADMIN_HOST: '127.0.0.1',
      ADMIN_TOKENS: [],
      TCP_READ_PATH: 'handle',
    });
    assert.equal(origin.PORT, 'default');
  });

  test('flags beat env, env beats the file, the file beats defaults', () => {
    const path = file('PORT=1000\nTHREAD_POOL_SIZE=3\nMAX_CONNECTIONS=7\n');
    const { config, origin } = loadConfig({
      file: path,
      env: { PORT: '2000', THREAD_POOL_SIZE: '5' },
      flags: { PORT: '3000' },
    });
    assert.equal(config.PORT, 3000);
    assert.equal(origin.PORT, 'flag');
    assert.equal(config.THREAD_POOL_SIZE, 5);
    assert.equal(origin.THREAD_POOL_SIZE, 'env');
    assert.equal(config.MAX_CONNECTIONS, 7);
    assert.equal(origin.MAX_CONNECTIONS, `${path}:3`);
  });

  test('comments, blank lines and whitespace around keys and values', () => {
    const path = file('  # comment\n\n\t PORT =  9000 \r\n LOG_LEVEL= debug\n');
    const { config } = loadConfig({ file: path, env: {} });
    assert.equal(config.PORT, 9000);
    assert.equal(config.LOG_LEVEL, 'DEBUG');
  });

  test('./config.txt is read only when it exists; an explicit file must exist', () => {
    const missing = join(tmpdir(), 'tcpool-no-such-dir', 'config.txt');
    assert.equal(loadConfig({ defaultFile: missing, env: {} }).file, null);
    assert.equal(loadConfig({ defaultFile: ORIGINAL, env: {} }).config.MAX_CONNECTIONS, 100);
    assert.equal(
      failure(() => loadConfig({ file: missing, env: {} })).message,
      `Cannot read config file ${missing}: no such file`,
    );
  });

  test('an unknown key is a warning naming file:line; a repeated key warns too', () => {
    const path = file('PORT=1\nCOLOUR=blue\nPORT=2\n');
    const { config, warnings } = loadConfig({ file: path, env: {} });
    assert.equal(config.PORT, 2);
    assert.deepEqual(warnings, [
      `Unknown config key COLOUR at ${path}:2 (ignored)`,
      `PORT at ${path}:3 overrides the value at ${path}:1`,
    ]);
  });

  test('a line without KEY=VALUE is an error naming file:line', () => {
    const path = file('PORT=1\njust words\n');
    const err = failure(() => loadConfig({ file: path, env: {} }));
    assert.equal(err.code, 'ERR_CONFIG_SYNTAX');
    assert.equal(err.message, `${path}:2: expected KEY=VALUE, got "just words"`);
    assert.equal(
      failure(() => loadConfig({ file: file('=5\n'), env: {} })).code,
      'ERR_CONFIG_SYNTAX',
    );
  });

  test('MAX_REQUEST_BYTES below MAX_BULK_BYTES is refused, naming both', () => {
    const path = file('MAX_REQUEST_BYTES=1000\n');
    assert.equal(
      failure(() => loadConfig({ file: path, env: { MAX_BULK_BYTES: '2000' } })).message,
      `Invalid MAX_REQUEST_BYTES "1000" (at ${path}:1): must be at least MAX_BULK_BYTES (2000, from environment variable MAX_BULK_BYTES)`,
    );
  });

  test('POOL_AUTOSCALE: off or min..max; max within THREAD_POOL_MAX; low below high', () => {
    assert.deepEqual(loadConfig({ env: { POOL_AUTOSCALE: '2..8' } }).config.POOL_AUTOSCALE, {
      min: 2,
      max: 8,
    });
    assert.deepEqual(loadConfig({ env: { POOL_AUTOSCALE: '3..3' } }).config.POOL_AUTOSCALE, {
      min: 3,
      max: 3,
    });
    assert.equal(loadConfig({ env: { POOL_AUTOSCALE: 'OFF' } }).config.POOL_AUTOSCALE, null);
    const path = file('THREAD_POOL_MAX=8\nPOOL_AUTOSCALE=2..16\n');
    assert.equal(
      failure(() => loadConfig({ file: path, env: {} })).message,
      `Invalid POOL_AUTOSCALE "2..16" (at ${path}:2): max must be at most THREAD_POOL_MAX (8, at ${path}:1): the pool cannot grow past it`,
    );
    const thresholds = file('POOL_AUTOSCALE_LOW_PERCENT=80\n');
    assert.equal(
      failure(() => loadConfig({ file: thresholds, env: { POOL_AUTOSCALE_HIGH_PERCENT: '80' } }))
        .message,
      `Invalid POOL_AUTOSCALE_LOW_PERCENT "80" (at ${thresholds}:1): must be below POOL_AUTOSCALE_HIGH_PERCENT (80, from environment variable POOL_AUTOSCALE_HIGH_PERCENT)`,
    );
  });

  const autoscaleAllowed =
    'off, or min..max workers with 1 ≤ min ≤ max ≤ 1024 (e.g. 2..8), max at most THREAD_POOL_MAX';
  const badValues: [string, string, string][] = [
    ['POOL_AUTOSCALE', '4..2', autoscaleAllowed],
    ['POOL_AUTOSCALE', '0..4', autoscaleAllowed],
    ['POOL_AUTOSCALE', '2..2000', autoscaleAllowed],
    ['POOL_AUTOSCALE', '2-8', autoscaleAllowed],
    ['POOL_AUTOSCALE', 'on', autoscaleAllowed],
    ['POOL_AUTOSCALE_HIGH_PERCENT', '0', 'an integer from 1 to 100'],
    ['POOL_AUTOSCALE_WINDOW_MS', '10', 'an integer from 100 to 3600000'],
    ['PORT', '65536', 'an integer from 0 to 65535 (0 picks a free port), or off (TLS only)'],
    ['PORT', '-1', 'an integer from 0 to 65535 (0 picks a free port), or off (TLS only)'],
    ['PORT', '80x', 'an integer from 0 to 65535 (0 picks a free port), or off (TLS only)'],
    ['PORT', '', 'an integer from 0 to 65535 (0 picks a free port), or off (TLS only)'],
    ['THREAD_POOL_SIZE', '0', 'an integer from 1 to 1024'],
    ['THREAD_POOL_SIZE', '2.5', 'an integer from 1 to 1024'],
    ['MAX_CONNECTIONS', '0', 'an integer from 1 to 1000000'],
    ['MAX_LINE_BYTES', '8', 'an integer from 16 to 67108864'],
    ['OUTPUT_HIGH_WATER_BYTES', '1000', 'an integer from 1024 to 1073741824'],
    ['MAX_BULK_BYTES', '0', 'an integer from 1 to 536870912'],
    ['MAX_ARGS', '1e6', 'an integer from 1 to 2147483647'],
    ['SHUTDOWN_TIMEOUT_MS', 'soon', 'an integer from 0 to 3600000'],
    ['LOG_LEVEL', 'LOUD', 'one of DEBUG, INFO, WARN, ERROR'],
    ['LOG_FORMAT', 'xml', 'one of text, json'],
    ['HOST', 'two words', 'an IP address or host name, e.g. 127.0.0.1, ::1 or 0.0.0.0'],
  ];
  for (const [key, value, allowed] of badValues) {
    test(`bad ${key}=${JSON.stringify(value)} names the key, value, source and what is allowed`, () => {
      const path = file(`# first\n${key}=${value}\n`);
      assert.equal(
        failure(() => loadConfig({ file: path, env: {} })).message,
        `Invalid ${key} "${value}" (at ${path}:2): must be ${allowed}`,
      );
      assert.equal(
        failure(() => loadConfig({ env: { [key]: value } })).message,
        `Invalid ${key} "${value}" (from environment variable ${key}): must be ${allowed}`,
      );
      const flagName = key.toLowerCase().replaceAll('_', '-');
      const err = failure(() => loadConfig({ env: {}, flags: { [key]: value } }));
      assert.equal(
        err.message,
        `Invalid ${key} "${value}" (from flag --${flagName}): must be ${allowed}`,
      );
      assert.equal(err.code, 'ERR_CONFIG_VALUE');
    });
  }
});
