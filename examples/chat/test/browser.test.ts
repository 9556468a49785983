// The chat page in a real browser (Chromium through playwright-core) over a WebSocket, in one room
// with a line client (the real `nc`) and Redis clients (ioredis), on a server of two workers: the
// page hears them, and they hear what is typed into the page.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer as netServer } from 'node:net';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { startTestServer, type TestServer } from 'tcpool/testing';
import { servePage } from '../src/web.ts';

const CHROMIUM = '/usr/bin/chromium';
const missing = [
  existsSync(CHROMIUM) ? null : 'chromium (apt-get install chromium)',
  spawnSync('sh', ['-c', 'command -v nc']).status === 0
    ? null
    : 'nc (apt-get install netcat-openbsd)',
].filter((m) => m !== null);
if (missing.length > 0 && process.env.CI) throw new Error(`not installed: ${missing.join(', ')}`);
const skip = missing.length > 0 ? `not installed: ${missing.join(', ')}` : false;

async function freePort(): Promise<number> {
  const s = netServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

let server: TestServer<unknown>;
let page: Awaited<ReturnType<typeof servePage>>;
let wsPort = 0;
before(async () => {
  if (skip) return;
  page = await servePage(0);
  wsPort = await freePort();
  server = await startTestServer({
    commands: new URL('../src/commands.ts', import.meta.url),
    threads: 2,
    env: { WS_PORT: String(wsPort), WS_ALLOWED_ORIGINS: page.origin },
  });
});
after(async () => {
  await server?.stop();
  page?.server.close();
});

/** Until every worker together counts `n` subscribers of the channel. */
async function subscribers(channel: string, n: number): Promise<void> {
  const probe = new Redis({ port: server.port, host: '127.0.0.1' });
  try {
    for (let i = 0; i < 300; i++) {
      const [, count] = (await probe.pubsub('NUMSUB', channel)) as [string, number];
      if (count === n) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.fail(`${channel} never had ${n} subscribers`);
  } finally {
    probe.disconnect();
  }
}

test('a browser page, nc and Redis clients talk in one room', { skip }, async (t) => {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  t.after(() => browser.close());

  // The page joins through its form, as a person would.
  const tab = await browser.newPage();
  await tab.goto(`${page.origin}/?ws=${wsPort}`);
  await tab.fill('input[name=nick]', 'cat');
  await tab.fill('input[name=room]', 'lobby');
  await tab.click('#join button');
  await tab.waitForFunction(
    () => document.getElementById('status')?.textContent === 'in room lobby as cat',
    undefined,
    { timeout: 10_000 },
  );

  // nc joins the same room.
  const nc = spawn('nc', ['127.0.0.1', String(server.port)]);
  t.after(() => nc.kill());
  let ncOut = '';
  nc.stdout.on('data', (d: Buffer) => (ncOut += d));
  const ncLines = async (n: number): Promise<string[]> => {
    for (let i = 0; i < 250 && ncOut.split('\n').length <= n; i++)
      await new Promise((r) => setTimeout(r, 20));
    return ncOut.split('\n').slice(0, n);
  };
  nc.stdin.write('NICK ann\nSUBSCRIBE room.lobby\n');
  assert.deepEqual(await ncLines(2), ['OK', 'SUBSCRIBE room.lobby 1']);

  // A Redis client listens; another talks.
  const listener = new Redis({ port: server.port, host: '127.0.0.1' });
  const heard: string[] = [];
  listener.on('message', (_ch: string, m: string) => heard.push(m));
  await listener.subscribe('room.lobby');
  const bob = new Redis({ port: server.port, host: '127.0.0.1' });
  t.after(() => {
    listener.disconnect();
    bob.disconnect();
  });
  await subscribers('room.lobby', 3);

  await bob.call('NICK', 'bob');
  assert.equal(await bob.call('SAY', 'lobby', 'hello', 'page'), 3);
  // Order is kept per publisher; across workers a message takes a turn to arrive: nc answers
  // what it has heard, as a person would.
  assert.deepEqual((await ncLines(3)).slice(2), ['MESSAGE room.lobby bob: hello page']);
  nc.stdin.write('SAY lobby hi cat, from nc\n');

  // The page shows both, in order, and types its own answer.
  const log = () => tab.$$eval('#log li', (items) => items.map((li) => li.textContent));
  for (let i = 0; i < 250 && (await log()).length < 2; i++)
    await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await log(), ['bob: hello page', 'ann: hi cat, from nc']);
  await tab.fill('input[name=text]', 'hello both, from the browser');
  await tab.click('#say button');
  await tab.waitForFunction(() => document.getElementById('status')?.textContent === 'heard by 3');
  assert.deepEqual((await log()).at(-1), 'cat: hello both, from the browser');

  // nc and the Redis listener heard everyone, the page included.
  assert.deepEqual((await ncLines(6)).slice(2), [
    'MESSAGE room.lobby bob: hello page',
    'MESSAGE room.lobby ann: hi cat, from nc',
    '3',
    'MESSAGE room.lobby cat: hello both, from the browser',
  ]);
  for (let i = 0; i < 250 && heard.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(heard, [
    'bob: hello page',
    'ann: hi cat, from nc',
    'cat: hello both, from the browser',
  ]);
});
