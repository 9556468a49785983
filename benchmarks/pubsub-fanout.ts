// npm run bench:pubsub -- [--subscribers 1000] [--channels 4] [--messages 20000] [--payload 64]
//                          [--threads 4] [--server-threads 2] [--no-redis] [--json]
// Pub/sub fan-out: messages per second delivered to `subscribers` RESP2 subscribers spread over
// `channels` channels, while one publisher pipelines PUBLISH round-robin over the channels.
// The same run measures tcpool and, when redis-server is installed, Redis, with the same
// subscriber threads (each counts the bytes of the fixed-size message frames it receives).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { startTestServer } from '../src/testing/index.ts';

interface Job {
  port: number;
  channels: string[]; // this thread's subscribers, one channel each
  frameBytes: Record<string, number>;
  expectedPerChannel: number;
}

const frame = (ch: string, payload: number) =>
  `*3\r\n$7\r\nmessage\r\n$${ch.length}\r\n${ch}\r\n$${payload}\r\n${'x'.repeat(payload)}\r\n`
    .length;

if (!isMainThread) {
  // A subscriber thread: connects, subscribes, then counts bytes until every message is in.
  const job = workerData as Job;
  const sockets: Socket[] = [];
  let left = job.channels.length;
  const confirm = (ch: string) =>
    `*3\r\n$9\r\nsubscribe\r\n$${ch.length}\r\n${ch}\r\n:1\r\n`.length;
  for (const ch of job.channels) {
    const s = createConnection({ port: job.port, host: '127.0.0.1' });
    const want = confirm(ch) + job.frameBytes[ch] * job.expectedPerChannel;
    let got = 0;
    s.on('data', (d: Buffer) => {
      const before = got;
      got += d.length;
      if (before < confirm(ch) && got >= confirm(ch)) parentPort!.postMessage({ t: 'subscribed' });
      if (got >= want && before < want && --left === 0) parentPort!.postMessage({ t: 'done' });
    });
    s.write(`*2\r\n$9\r\nSUBSCRIBE\r\n$${ch.length}\r\n${ch}\r\n`);
    sockets.push(s);
  }
  parentPort!.on('message', () => {
    for (const s of sockets) s.destroy();
    parentPort!.close();
  });
} else {
  const { values } = parseArgs({
    options: {
      subscribers: { type: 'string', default: '1000' },
      channels: { type: 'string', default: '4' },
      messages: { type: 'string', default: '20000' },
      payload: { type: 'string', default: '64' },
      threads: { type: 'string', default: '4' },
      'server-threads': { type: 'string', default: '2' },
      'no-redis': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const subscribers = Number(values.subscribers);
  const channelCount = Number(values.channels);
  const messages = Number(values.messages);
  const payload = Number(values.payload);
  const threads = Number(values.threads);
  const channels = Array.from({ length: channelCount }, (_, i) => `ch${i}`);

  async function measure(name: string, port: number) {
    const perChannel = Math.floor(messages / channelCount);
    const all = Array.from({ length: subscribers }, (_, i) => channels[i % channelCount]);
    const frameBytes = Object.fromEntries(channels.map((c) => [c, frame(c, payload)]));
    let subscribed = 0;
    let done = 0;
    let onSubscribed = () => {};
    let onDone = () => {};
    const workers = Array.from({ length: threads }, (_, t) => {
      const w = new Worker(new URL(import.meta.url), {
        workerData: {
          port,
          channels: all.filter((_, i) => i % threads === t),
          frameBytes,
          expectedPerChannel: perChannel,
        } satisfies Job,
      });
      w.on('message', (m: { t: string }) => {
        if (m.t === 'subscribed' && ++subscribed === subscribers) onSubscribed();
        if (m.t === 'done' && ++done === threads) onDone();
      });
      return w;
    });
    await new Promise<void>((r) => (onSubscribed = r));
    // Subscription counts reach every worker a moment after the confirmation.
    await new Promise((r) => setTimeout(r, 200));
    const finished = new Promise<void>((r) => (onDone = r));
    const pub = createConnection({ port, host: '127.0.0.1' });
    await new Promise((r) => pub.once('connect', r));
    const body = 'x'.repeat(payload);
    const t0 = performance.now();
    // Pipelined in batches of 500, each sent when the previous batch's replies are in.
    let replies = 0;
    let batchDone = () => {};
    pub.on('data', (d: Buffer) => {
      for (const b of d) if (b === 0x0a) replies++;
      batchDone();
    });
    for (let sent = 0; sent < perChannel * channelCount; ) {
      let batch = '';
      for (let i = 0; i < 500 && sent < perChannel * channelCount; i++, sent++) {
        const ch = channels[sent % channelCount];
        batch += `*3\r\n$7\r\nPUBLISH\r\n$${ch.length}\r\n${ch}\r\n$${payload}\r\n${body}\r\n`;
      }
      pub.write(batch);
      await new Promise<void>((r) => {
        batchDone = () => replies >= sent && r();
        batchDone();
      });
    }
    await finished;
    const seconds = (performance.now() - t0) / 1000;
    pub.destroy();
    for (const w of workers) w.postMessage('stop');
    await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
    const delivered = perChannel * channelCount * (subscribers / channelCount);
    return {
      server: name,
      delivered,
      seconds: Number(seconds.toFixed(3)),
      messagesPerSecond: Math.round(delivered / seconds),
    };
  }

  const results = [];
  const tcpool = await startTestServer({
    threads: Number(values['server-threads']),
    env: { MAX_CONNECTIONS: '100000' },
  });
  try {
    results.push(await measure(`tcpool (${values['server-threads']} workers)`, tcpool.port));
  } finally {
    await tcpool.stop();
  }
  const haveRedis = spawnSync('sh', ['-c', 'command -v redis-server']).status === 0;
  if (!values['no-redis'] && haveRedis) {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as { port: number }).port;
    await new Promise((r) => s.close(r));
    const redis: ChildProcess = spawn(
      'redis-server',
      ['--port', String(port), '--save', '', '--appendonly', 'no', '--maxclients', '100000'],
      { stdio: 'ignore' },
    );
    await new Promise((r) => setTimeout(r, 300));
    try {
      results.push(await measure('redis-server', port));
    } finally {
      redis.kill('SIGKILL');
    }
  }
  if (values.json)
    process.stdout.write(
      `${JSON.stringify({ subscribers, channels: channelCount, messages, payload, results })}\n`,
    );
  else {
    process.stdout.write(
      `${subscribers} subscribers on ${channelCount} channels, ${messages} messages of ${payload} bytes\n`,
    );
    for (const r of results)
      process.stdout.write(
        `${r.server.padEnd(22)} ${String(r.messagesPerSecond).padStart(10)} messages/s delivered (${r.delivered} in ${r.seconds} s)\n`,
      );
  }
}
