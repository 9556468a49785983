// One subscriber thread of `tcpool bench --pubsub`: its share of the subscribers, each a RESP2
// connection subscribed to one channel. Message frames have a known size, so counting bytes
// counts messages without parsing them (the client must not be the bottleneck).
import { createConnection, type Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { encodeRespRequest } from '../protocol/resp.ts';
import type { FromSubscriberThread, SubscriberPlan } from './pubsub.ts';

const plan = workerData as SubscriberPlan;
const port = parentPort!;
const post = (m: FromSubscriberThread) => port.postMessage(m);
const sockets: Socket[] = [];
/** Messages each subscriber has received. */
const received: number[] = [];
let left = plan.channels.length;
let stopping = false;

const confirmBytes = (ch: string) =>
  `*3\r\n$9\r\nsubscribe\r\n$${ch.length}\r\n${ch}\r\n:1\r\n`.length;

for (const [i, ch] of plan.channels.entries()) {
  const s = createConnection({ host: plan.host, port: plan.port });
  const confirm = confirmBytes(ch);
  const frame = plan.frameBytes[ch];
  const want = confirm + frame * plan.perChannel;
  let got = 0;
  received.push(0);
  s.on('data', (d: Buffer) => {
    const before = got;
    got += d.length;
    if (before < confirm && got >= confirm) post({ t: 'subscribed' });
    if (got > confirm) received[i] = Math.floor((got - confirm) / frame);
    if (before < want && got >= want && --left === 0) post({ t: 'done', delivered: total() });
  });
  s.on('error', () => {});
  s.on('close', () => {
    if (!stopping && got < want)
      post({ t: 'lost', why: 'a subscriber connection was closed by the server' });
  });
  s.write(encodeRespRequest(['SUBSCRIBE', ch]));
  sockets.push(s);
}

function total(): number {
  let n = 0;
  for (const r of received) n += r;
  return n;
}

const timer = setInterval(() => post({ t: 'progress', delivered: total() }), 250);
port.on('message', () => {
  stopping = true;
  clearInterval(timer);
  for (const s of sockets) s.destroy();
  port.close();
});
