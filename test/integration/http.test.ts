// The HTTP API: curl over HTTP/1.1, h2c prior knowledge and TLS with ALPN h2; Node's HTTP/2
// client with 1,000 concurrent streams on one connection; JSON replies keeping the RESP3 types;
// the OpenAPI document, checked by a validator; bearer AUTH, the body limit and bad requests.
// What every transport shares is in test/conformance/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { hashTokenSha256 } from '../../src/auth/tokens.ts';
import { makeCerts } from '../helpers/certs.ts';
import { freePort, SERVER_RUNTIME, type ServerProcess, startServer } from '../helpers/server.ts';

const hasCurl = spawnSync('sh', ['-c', 'command -v curl']).status === 0;
if (!hasCurl && process.env.CI) throw new Error('curl is not installed');
const curlOnly = { skip: hasCurl ? false : 'curl not installed' };
/** Bun's node:http2 cannot take over an accepted socket: no h2c there (docs/PERFORMANCE.md). */
const onBun = SERVER_RUNTIME === 'bun';
const h2c = { skip: onBun ? 'no h2c on Bun: the refusal is tested instead' : false };

/** curl's body and the HTTP version it used ("1.1" or "2"). */
function curl(...args: string[]): { body: string; version: string; status: number } {
  const r = spawnSync('curl', ['-sS', '-w', '\n%{http_version} %{http_code}', ...args], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const cut = r.stdout.lastIndexOf('\n');
  const [version, status] = r.stdout.slice(cut + 1).split(' ');
  return { body: r.stdout.slice(0, cut), version, status: Number(status) };
}

const servers: ServerProcess[] = [];
after(async () => {
  for (const s of servers) await s.kill();
});
async function start(env: Record<string, string> = {}) {
  const httpPort = await freePort();
  const server = await startServer({ env: { HTTP_PORT: String(httpPort), ...env } });
  servers.push(server);
  return { server, base: `http://127.0.0.1:${httpPort}`, httpPort };
}

async function post(
  base: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('HTTP API', () => {
  let base = '';
  before(async () => {
    ({ base } = await start());
  });

  test('curl --http1.1 and --http2-prior-knowledge (h2c) on the same plain port', curlOnly, () => {
    const h1 = curl('--http1.1', '-X', 'POST', `${base}/v1/commands/PING`);
    assert.deepEqual(
      [h1.version, h1.status, JSON.parse(h1.body)],
      ['1.1', 200, { result: 'PONG' }],
    );
    if (onBun) return;
    const h2 = curl(
      '--http2-prior-knowledge',
      '-H',
      'content-type: application/json',
      '-d',
      '{"args":["hi there"]}',
      `${base}/v1/commands/echo`,
    );
    assert.deepEqual(
      [h2.version, h2.status, JSON.parse(h2.body)],
      ['2', 200, { result: 'hi there' }],
    );
  });

  test('curl over TLS negotiates h2 by ALPN (and http/1.1 when asked)', curlOnly, async () => {
    const certs = makeCerts();
    const { httpPort: port } = await start({
      HTTP_TLS: 'yes',
      TLS_CERT: certs.serverCert,
      TLS_KEY: certs.serverKey,
    });
    const url = `https://127.0.0.1:${port}/v1/commands/PING`;
    const h2 = curl('--cacert', certs.ca, '--http2', '-X', 'POST', url);
    assert.deepEqual([h2.version, JSON.parse(h2.body)], ['2', { result: 'PONG' }]);
    const h1 = curl('--cacert', certs.ca, '--http1.1', '-X', 'POST', url);
    assert.deepEqual([h1.version, JSON.parse(h1.body)], ['1.1', { result: 'PONG' }]);
  });

  test('on Bun, an h2c client is told HTTP_1_1_REQUIRED, with the reason', {
    skip: onBun ? false : 'Node serves h2c',
  }, async () => {
    const session = connect(base);
    const goaway = await new Promise<{ code: number; reason: string }>((resolve, reject) => {
      session.on('goaway', (code, _last, data) => resolve({ code, reason: String(data) }));
      session.on('error', reject);
      setTimeout(() => reject(new Error('no GOAWAY within 5 s')), 5000).unref();
    });
    session.destroy();
    assert.deepEqual(goaway, {
      code: 0x0d,
      reason: 'h2c is not available on this server (Bun): use HTTP/1.1 or h2 over TLS',
    });
  });

  test("Node's HTTP/2 client: 1,000 concurrent streams on one connection", h2c, async () => {
    const session = connect(base, { settings: { maxConcurrentStreams: 1000 } });
    try {
      const one = (i: number) =>
        new Promise<string>((resolve, reject) => {
          const stream = session.request({
            ':method': 'POST',
            ':path': '/v1/commands/ECHO',
            'content-type': 'application/json',
          });
          let body = '';
          stream.on('data', (d) => (body += d));
          stream.on('end', () => resolve(body));
          stream.on('error', reject);
          stream.end(JSON.stringify({ args: [`n${i}`] }));
        });
      const bodies = await Promise.all(Array.from({ length: 1000 }, (_, i) => one(i)));
      for (const [i, b] of bodies.entries()) assert.deepEqual(JSON.parse(b), { result: `n${i}` });
    } finally {
      session.close();
    }
  });

  test('replies keep their RESP3 types in JSON; errors become statuses', async () => {
    const pipeline = await post(base, '/v1/pipeline', [
      ['HELLO', '3'],
      ['TIME'],
      ['ECHO', { base64: Buffer.from([0xff, 0x00, 0x41]).toString('base64') }],
      ['CLIENT', 'GETNAME'],
      ['INFO', 'server'],
      ['NOPE'],
      ['MULTI'],
      ['PING'],
      ['EXEC'],
    ]);
    assert.equal(pipeline.status, 200);
    const [hello, time, bytes, name, info, nope, multi, queued, exec] = pipeline.json
      .results as Record<string, unknown>[];
    assert.equal((hello.result as { map: Record<string, unknown> }).map.server, 'tcpool');
    assert.match(String((time.result as string[])[0]), /^\d{10}$/);
    assert.deepEqual(bytes, {
      result: { base64: Buffer.from([0xff, 0x00, 0x41]).toString('base64') },
    });
    assert.deepEqual(name, { result: null });
    assert.equal((info.result as { format: string }).format, 'txt');
    assert.match((info.result as { verbatim: string }).verbatim, /^# Server\r\n/);
    assert.equal((nope.error as { code: string }).code, 'ERR_UNKNOWN_COMMAND');
    assert.deepEqual(
      [multi, queued, exec],
      [{ result: 'OK' }, { result: 'QUEUED' }, { result: ['PONG'] }],
    );

    assert.deepEqual(await post(base, '/v1/commands/NOPE'), {
      status: 404,
      json: { error: { code: 'ERR_UNKNOWN_COMMAND', message: "Unknown command 'NOPE'" } },
    });
    const arity = await post(base, '/v1/commands/ECHO', { args: [] });
    assert.equal(arity.status, 400);
    assert.equal((arity.json.error as { code: string }).code, 'ERR_WRONG_ARITY');
    const res = await fetch(`${base}/v1/commands/ECHO`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from('raw\r\nbytes'),
    });
    assert.deepEqual(await res.json(), { result: 'raw\r\nbytes' });
  });

  test('malformed requests are refused with 4xx and counted', async () => {
    const badJson = await fetch(`${base}/v1/commands/PING`, { method: 'POST', body: '{' });
    assert.equal(badJson.status, 400);
    assert.equal(
      ((await badJson.json()) as { error: { code: string } }).error.code,
      'ERR_HTTP_REQUEST',
    );
    assert.equal((await post(base, '/v1/commands/ECHO', { args: [{ x: 1 }] })).status, 400);
    assert.equal((await post(base, '/v1/pipeline', [])).status, 400);
    assert.equal((await fetch(`${base}/nowhere`)).status, 404);
    assert.equal((await fetch(`${base}/v1/commands/PING`)).status, 405);
    const { json } = await post(base, '/v1/commands/STATS', { args: ['FULL'] });
    assert.match(String(json.result), / http_bad_requests=5( |$)/);
  });

  test('GET /v1/commands lists the registry; /v1/openapi.json is valid OpenAPI 3.1', async () => {
    const list = (await (await fetch(`${base}/v1/commands`)).json()) as {
      commands: { name: string; usage: string; maxArgs: number | null }[];
    };
    const echo = list.commands.find((c) => c.name === 'ECHO');
    assert.deepEqual([echo?.usage, echo?.maxArgs], ['ECHO <message>', 1]);
    assert.ok(list.commands.some((c) => c.name === 'HELLO'));
    const doc = (await (await fetch(`${base}/v1/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    assert.equal(doc.openapi, '3.1.0');
    for (const c of list.commands) assert.ok(`/v1/commands/${c.name}` in doc.paths, c.name);
    const validator = new Validator();
    const result = await validator.validate(doc);
    assert.equal(result.valid, true, JSON.stringify(result.errors));
    assert.equal(validator.version, '3.1');
  });

  test('AUTH by Authorization: Bearer; a wrong token is 401 and counted', async () => {
    const { base: guarded } = await start({ AUTH_TOKENS: hashTokenSha256('s3cret') });
    const none = await post(guarded, '/v1/commands/PING');
    assert.equal(none.status, 401);
    assert.equal((none.json.error as { code: string }).code, 'ERR_AUTH_REQUIRED');
    // Named arguments are checked after AUTH, as arguments in order are: no 400 before it.
    const named = await post(guarded, '/v1/commands/ECHO', { args: { message: 'hi' } });
    assert.equal(named.status, 401);
    assert.equal((named.json.error as { code: string }).code, 'ERR_AUTH_REQUIRED');
    const wrong = await post(guarded, '/v1/commands/PING', undefined, {
      authorization: 'Bearer nope',
    });
    assert.equal(wrong.status, 401);
    assert.equal((wrong.json.error as { code: string }).code, 'ERR_AUTH_INVALID');
    const auth = { authorization: 'Bearer s3cret' };
    assert.deepEqual(await post(guarded, '/v1/commands/PING', undefined, auth), {
      status: 200,
      json: { result: 'PONG' },
    });
    const { json } = await post(guarded, '/v1/commands/STATS', { args: ['FULL'] }, auth);
    assert.match(String(json.result), / auth_failures=1 /);
  });

  test('a body over HTTP_MAX_BODY_BYTES is 413, declared or not', async () => {
    const { base: small } = await start({ HTTP_MAX_BODY_BYTES: '1024' });
    const declared = await post(small, '/v1/commands/ECHO', { args: ['x'.repeat(2000)] });
    assert.equal(declared.status, 413);
    if (onBun) return; // the undeclared length is sent over h2c
    // Sent in chunks with no declared length: refused once the limit is passed.
    const session = connect(small);
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/v1/commands/ECHO' });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', reject);
      for (let i = 0; i < 4; i++) stream.write('y'.repeat(512));
      stream.end();
    });
    session.close();
    assert.equal(status, 413);
  });
});
