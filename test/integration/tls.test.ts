// TLS beside the plain port and alone, both protocols over it, mutual TLS, the minimum version,
// and handshake failures that never disturb other clients.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Redis } from 'ioredis';
import { proxyV1, proxyV2 } from '../../src/protocol/proxy.ts';
import { encodeRespRequest } from '../../src/protocol/resp.ts';
import { type Certs, makeCerts } from '../helpers/certs.ts';
import { TestClient } from '../helpers/client.ts';
import { freePort, runTcpool, type ServerProcess, startServer } from '../helpers/server.ts';

if (spawnSync('sh', ['-c', 'command -v openssl']).status !== 0)
  throw new Error('openssl is not installed (apt-get install openssl)');

let certs: Certs;
const servers: ServerProcess[] = [];
before(() => {
  certs = makeCerts();
});
after(async () => {
  await Promise.all(servers.map((s) => s.kill()));
});

async function startTls(env: Record<string, string> = {}) {
  const tlsPort = await freePort();
  const server = await startServer({
    env: {
      TLS_PORT: String(tlsPort),
      TLS_CERT: certs.serverCert,
      TLS_KEY: certs.serverKey,
      ...env,
    },
  });
  servers.push(server);
  return { server, tlsPort };
}

function tlsClient(port: number, extra: ConnectionOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: readFileSync(certs.ca),
      servername: 'localhost',
      ...extra,
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

function request(
  s: TLSSocket,
  bytes: string | Buffer,
  until: (got: string) => boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => reject(new Error(`no reply; had ${JSON.stringify(got)}`)), 5000);
    s.on('data', (d) => {
      got += d;
      if (until(got)) {
        clearTimeout(timer);
        resolve(got);
      }
    });
    s.write(bytes);
  });
}

describe('TLS', () => {
  test('beside the plain port: both protocols over TLS; the plain port still works', async () => {
    const { server, tlsPort } = await startTls();
    await server.waitForLog(
      new RegExp(`Server listening on 127\\.0\\.0\\.1:${tlsPort} \\(TLS, TLSv1\\.2 or newer\\)`),
    );
    const s = await tlsClient(tlsPort);
    assert.equal(
      await request(s, 'PING\nECHO over tls\n', (g) => g.split('\n').length > 2),
      'PONG\nover tls\n',
    );
    s.destroy();
    const r = await tlsClient(tlsPort);
    assert.equal(
      await request(
        r,
        encodeRespRequest(['ECHO', 'resp over tls']),
        (g) => g.endsWith('\r\n') && g.length > 5,
      ),
      '$13\r\nresp over tls\r\n',
    );
    r.destroy();
    const redis = new Redis({
      host: '127.0.0.1',
      port: tlsPort,
      tls: { ca: readFileSync(certs.ca), servername: 'localhost' },
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    await redis.connect();
    assert.equal(await redis.ping(), 'PONG');
    redis.disconnect();
    const plain = await TestClient.connect(server.port);
    assert.equal(await plain.request('PING'), 'PONG');
    plain.close();
  });

  test('openssl s_client talks to it', async () => {
    const { tlsPort } = await startTls();
    const out = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${tlsPort}`,
          '-CAfile',
          certs.ca,
          '-quiet',
          '-verify_return_error',
        ],
        { timeout: 10_000 },
        (err, stdout) => (err && !stdout ? reject(err) : resolve(stdout)),
      );
      child.stdin!.write('ECHO from s_client\nQUIT\n');
    });
    assert.match(out, /from s_client\nGoodbye\n/);
  });

  test('a failed handshake is logged and counted; other TLS clients are unaffected', async () => {
    const { server, tlsPort } = await startTls();
    const good = await tlsClient(tlsPort);
    const junk = createConnection({ port: tlsPort, host: '127.0.0.1' });
    junk.on('error', () => {});
    junk.write('PING\r\n'); // plain text to the TLS port
    junk.resume(); // read the server's alert and FIN (Node resets; Bun closes gracefully)
    await new Promise((r) => junk.on('close', r));
    await server.waitForLog(/\[WARN\] TLS handshake failed with 127\.0\.0\.1:\d+: /);
    assert.match(
      await request(good, 'STATS FULL\n', (g) => g.endsWith('\n')),
      /tls_handshake_failures=1/,
    );
    good.destroy();
  });

  test('behind a proxy that passes TLS through: its PROXY header, before the ClientHello, names the client', async () => {
    const { server, tlsPort } = await startTls({
      PROXY_PROTOCOL: 'auto',
      TRUSTED_PROXIES: '127.0.0.1',
      MAX_CONNECTIONS_PER_IP: '1',
    });
    /** A TLS client behind the proxy; `together`: header and ClientHello in one segment. */
    const proxied = async (header: Buffer, together: boolean): Promise<TLSSocket> => {
      const raw = createConnection({ host: '127.0.0.1', port: tlsPort });
      await new Promise((r) => raw.once('connect', r));
      if (together) raw.cork();
      raw.write(header);
      // Apart: the header is read (and the client admitted) before the ClientHello arrives.
      if (!together) await sleep(100);
      const s = tlsClient(tlsPort, { socket: raw });
      if (together) process.nextTick(() => raw.uncork());
      return s;
    };
    const a = await proxied(proxyV2('192.0.2.40', 4242, '127.0.0.1', tlsPort), true);
    assert.equal(await request(a, 'PING\n', (g) => g.endsWith('\n')), 'PONG\n');
    const b = await proxied(proxyV1('192.0.2.41', 4343, '127.0.0.1', tlsPort), false);
    assert.match(
      await request(b, encodeRespRequest(['CLIENT', 'LIST']), (g) => g.endsWith('\r\n')),
      /addr=192\.0\.2\.41:4343 .*\n.*addr=192\.0\.2\.40:4242 |addr=192\.0\.2\.40:4242 .*\n.*addr=192\.0\.2\.41:4343 /s,
    );
    await server.waitForLog(/Client connected: 192\.0\.2\.40:4242 /);
    // The limits count the client the header named: a second 192.0.2.40 is over its limit of 1.
    await assert.rejects(proxied(proxyV2('192.0.2.40', 4444, '127.0.0.1', tlsPort), true));
    assert.match(await request(b, 'STATS FULL\n', (g) => g.endsWith('\n')), /rejected_per_ip=1 /);
    a.destroy();
    b.destroy();
  });

  test('TLS_CA requires a client certificate signed by it (mutual TLS)', async () => {
    const { server, tlsPort } = await startTls({ TLS_CA: certs.ca });
    await server.waitForLog(/\(TLS, TLSv1\.2 or newer, client certificates required\)/);
    const withCert = await tlsClient(tlsPort, {
      cert: readFileSync(certs.clientCert),
      key: readFileSync(certs.clientKey),
    });
    assert.equal(await request(withCert, 'PING\n', (g) => g.endsWith('\n')), 'PONG\n');
    withCert.destroy();
    const without = await tlsClient(tlsPort).catch((e: Error) => e);
    // TLS 1.3 reports the missing certificate after the handshake: then the first read fails.
    const refused =
      without instanceof Error
        ? without
        : await request(without, 'PING\n', () => false).catch((e: Error) => e);
    assert.ok(refused instanceof Error, 'a client without a certificate is refused');
    await server.waitForLog(/TLS handshake failed with 127\.0\.0\.1:\d+: /);
  });

  test('TLS_MIN_VERSION=TLSv1.3 refuses a TLS 1.2 client', async () => {
    const { tlsPort } = await startTls({ TLS_MIN_VERSION: 'TLSv1.3' });
    await assert.rejects(tlsClient(tlsPort, { maxVersion: 'TLSv1.2' }));
    const ok = await tlsClient(tlsPort);
    assert.equal(ok.getProtocol(), 'TLSv1.3');
    ok.destroy();
  });

  test('TLS alone (PORT=off), and bad TLS settings stop start-up with a clear message', async () => {
    const tlsPort = await freePort();
    const server = await startServer({
      env: {
        PORT: 'off',
        TLS_PORT: String(tlsPort),
        TLS_CERT: certs.serverCert,
        TLS_KEY: certs.serverKey,
      },
    });
    servers.push(server);
    assert.match(server.stdout, /Server starting on port off \(TLS only\)/);
    const s = await tlsClient(tlsPort);
    assert.equal(await request(s, 'PING\n', (g) => g.endsWith('\n')), 'PONG\n');
    s.destroy();
    const noKey = await runTcpool(['serve', '--tls-port', '9999', '--tls-cert', certs.serverCert]);
    assert.equal(noKey.code, 2);
    assert.match(
      noKey.stderr,
      /^tcpool: Invalid TLS_KEY "" \(not set\): TLS_PORT needs a certificate \(TLS_CERT\) and its key \(TLS_KEY\)\n$/,
    );
    const wrongKey = await runTcpool([
      'serve',
      '--tls-port',
      '9999',
      '--tls-cert',
      certs.serverCert,
      '--tls-key',
      certs.clientKey,
    ]);
    assert.equal(wrongKey.code, 2);
    assert.match(
      wrongKey.stderr,
      /^tcpool: Invalid TLS_CERT\/TLS_KEY \(.*\): .*key values mismatch/,
    );
  });
});
