// A real HAProxy in front of tcpool, speaking PROXY protocol v2 (send-proxy-v2): tcpool must see
// the client's own address and port, not HAProxy's.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeRespRequest } from '../../src/protocol/resp.ts';
import { TestClient } from '../helpers/client.ts';
import { freePort, type ServerProcess, startServer } from '../helpers/server.ts';

const found = spawnSync('sh', ['-c', 'command -v haproxy']).status === 0;
if (!found && process.env.CI) throw new Error('haproxy is not installed (apt-get install haproxy)');

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup) await f();
});

test('behind HAProxy with send-proxy-v2, logs and CLIENT LIST show the real client', {
  skip: found ? false : 'haproxy not installed',
}, async () => {
  const server: ServerProcess = await startServer({
    env: { PROXY_PROTOCOL: 'v2', TRUSTED_PROXIES: '127.0.0.1' },
  });
  cleanup.push(() => server.kill());
  const front = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tcpool-haproxy-'));
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 200',
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      '  timeout client 10s',
      '  timeout server 10s',
      'frontend fe',
      `  bind 127.0.0.1:${front}`,
      '  default_backend be',
      'backend be',
      `  server tcpool 127.0.0.1:${server.port} send-proxy-v2`,
      '',
    ].join('\n'),
  );
  const haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let haproxyLog = '';
  haproxy.stderr.on('data', (d) => (haproxyLog += d));
  const exited = new Promise((r) => haproxy.on('exit', r));
  cleanup.push(async () => {
    if (haproxy.exitCode === null) process.kill(haproxy.pid!, 'SIGTERM');
    await exited;
  });

  let client: TestClient | null = null;
  for (let i = 0; i < 50 && client === null; i++) {
    client = await TestClient.connect(front).catch(() => null);
    if (client === null) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(client, `HAProxy listens (${haproxyLog})`);
  const localPort = client.socket.localPort!;
  client.write(encodeRespRequest(['PING']));
  assert.equal(await client.readLine(), '+PONG\r');
  client.write(encodeRespRequest(['CLIENT', 'INFO']));
  const header = await client.readLine();
  const info = (await client.readBytes(Number(header.slice(1, -1)) + 2)).toString();
  assert.match(
    info,
    new RegExp(`^id=\\d+ addr=127\\.0\\.0\\.1:${localPort} `),
    'the client as HAProxy saw it',
  );
  await server.waitForLog(
    new RegExp(`Client connected: 127\\.0\\.0\\.1:${localPort} \\(Active: 1\\)`),
  );

  // Line protocol through HAProxy too.
  const line = await TestClient.connect(front);
  assert.equal(await line.request('ECHO via haproxy'), 'via haproxy');
  line.close();
  client.close();
});
