// Pub/sub across workers. Each worker has one hub (module state is per worker thread): its own
// subscribers by channel and by pattern. A message published in any worker is delivered to that
// worker's subscribers at once and posted on a BroadcastChannel that every worker listens to;
// a BroadcastChannel delivers one sender's messages in order, so subscribers everywhere see a
// publisher's messages in publish order. Every message is posted when there are other workers,
// whatever the counts say: a client whose SUBSCRIBE was confirmed must get every message published
// after that, even from a worker that has not heard of the subscription yet (as with Redis).
// Workers also post their subscription counts, to answer PUBLISH's receiver count and PUBSUB
// across workers (those are eventually consistent: a subscription made a moment ago in another
// worker may not be counted yet).
import { BroadcastChannel } from 'node:worker_threads';
import { globMatcher } from './glob.ts';

/** What a hub needs of a connection (src/worker/connection.ts implements it). */
export interface PubSubClient {
  /** The codec's name: "line" gets MESSAGE lines, "resp" RESP2 arrays or RESP3 pushes. */
  readonly protocol: string;
  readonly respVersion: 2 | 3;
  /** Channels and patterns this client is subscribed to (RESP2's subscribe mode when > 0). */
  subscriptions: number;
  /** Sends pre-encoded bytes now (or in the reply batch being built); false if it was cut off for passing `limit`. */
  deliver(data: string | Buffer, limit: number): boolean;
  /** Runs `fn` once when the connection closes. */
  whenClosed(fn: () => void): void;
}

interface Subscriber {
  client: PubSubClient;
  channels: Set<string>;
  patterns: Set<string>;
}

interface Pattern {
  match: (channel: string) => boolean;
  subs: Set<Subscriber>;
}

type BusMessage =
  | { t: 'pub'; items: [string, Uint8Array][] }
  | { t: 'count'; w: number; kind: 'ch' | 'pat'; name: string; n: number }
  | { t: 'hello'; w: number }
  | { t: 'state'; w: number; to: number; ch: [string, number][]; pat: [string, number][] };

export interface HubOptions {
  workerId: number;
  /**
   * How many workers serve now (the pool can be resized live): with one, nothing is posted.
   * Default: always two or more.
   */
  workers?: () => number;
  /** PUBSUB_OUTPUT_LIMIT_BYTES: a subscriber with more unsent bytes is cut off (0 = none). */
  outputLimit: number;
}

/** Channel names and patterns are kept as latin1 strings: one char per byte, any bytes. */
export const nameOf = (b: Buffer): string => b.toString('latin1');

export class Hub {
  private readonly workerId: number;
  private readonly outputLimit: number;
  private readonly subscribers = new Map<PubSubClient, Subscriber>();
  private readonly channels = new Map<string, Set<Subscriber>>();
  private readonly patterns = new Map<string, Pattern>();
  /** Other workers' subscription counts: name → (worker → count). */
  private readonly remoteChannels = new Map<string, Map<number, number>>();
  private readonly remotePatterns = new Map<
    string,
    { match: (c: string) => boolean; by: Map<number, number> }
  >();
  private readonly bus: BroadcastChannel;
  /** How many workers serve now: when others exist, every message is posted to them. */
  private readonly workers: () => number;
  /** close() was called: a batch still queued for this turn is dropped (the worker is leaving). */
  private closed = false;

  constructor(options: HubOptions) {
    this.workerId = options.workerId;
    this.workers = options.workers ?? (() => 2);
    this.outputLimit = options.outputLimit;
    this.bus = new BroadcastChannel('tcpool:pubsub');
    this.bus.onmessage = (event) => this.onBus((event as MessageEvent).data as BusMessage);
    // Must not keep a draining worker alive.
    (this.bus as unknown as { unref?: () => void }).unref?.();
    this.post({ t: 'hello', w: this.workerId });
  }

  close(): void {
    this.closed = true;
    this.bus.close();
  }

  subscribe(client: PubSubClient, names: string[], kind: 'ch' | 'pat'): [string, number][] {
    const sub = this.subscriberOf(client);
    const confirmations: [string, number][] = [];
    for (const name of names) {
      const mine = kind === 'ch' ? sub.channels : sub.patterns;
      if (!mine.has(name)) {
        mine.add(name);
        client.subscriptions++;
        if (kind === 'ch') {
          const set = this.channels.get(name) ?? new Set<Subscriber>();
          this.channels.set(name, set);
          set.add(sub);
          this.announce('ch', name, set.size);
        } else {
          const p = this.patterns.get(name) ?? { match: globMatcher(name), subs: new Set() };
          this.patterns.set(name, p);
          p.subs.add(sub);
          this.announce('pat', name, p.subs.size);
        }
      }
      confirmations.push([name, client.subscriptions]);
    }
    return confirmations;
  }

  /** No names: every channel (or pattern) of the client. */
  unsubscribe(
    client: PubSubClient,
    names: string[] | null,
    kind: 'ch' | 'pat',
  ): [string | null, number][] {
    const sub = this.subscribers.get(client);
    const mine = sub === undefined ? null : kind === 'ch' ? sub.channels : sub.patterns;
    const list = names ?? [...(mine ?? [])];
    if (list.length === 0) return [[null, client.subscriptions]];
    const confirmations: [string | null, number][] = [];
    for (const name of list) {
      if (sub !== undefined && mine!.delete(name)) {
        client.subscriptions--;
        if (kind === 'ch') {
          const set = this.channels.get(name)!;
          set.delete(sub);
          if (set.size === 0) this.channels.delete(name);
          this.announce('ch', name, set.size);
        } else {
          const p = this.patterns.get(name)!;
          p.subs.delete(sub);
          if (p.subs.size === 0) this.patterns.delete(name);
          this.announce('pat', name, p.subs.size);
        }
      }
      confirmations.push([name, client.subscriptions]);
    }
    if (sub !== undefined && sub.channels.size === 0 && sub.patterns.size === 0)
      this.subscribers.delete(client);
    return confirmations;
  }

  /** Delivers here and to every other worker; returns the receivers counted across workers. */
  publish(channel: Buffer, message: Buffer): number {
    const ch = nameOf(channel);
    const local = this.deliver(ch, message);
    let remote = 0;
    for (const n of this.remoteChannels.get(ch)?.values() ?? []) remote += n;
    let remotePatterns = 0;
    for (const p of this.remotePatterns.values())
      if (p.match(ch)) for (const n of p.by.values()) remotePatterns += n;
    if (this.workers() > 1) this.forward(ch, message);
    return local + remote + remotePatterns;
  }

  /** Channels with subscribers in any worker, matching the pattern when given. */
  activeChannels(pattern: string | null): string[] {
    const names = new Set(this.channels.keys());
    for (const [name, by] of this.remoteChannels) if (sum(by) > 0) names.add(name);
    const match = pattern === null ? null : globMatcher(pattern);
    return [...names].filter((n) => match === null || match(n)).sort();
  }

  numsub(channel: string): number {
    return (this.channels.get(channel)?.size ?? 0) + sum(this.remoteChannels.get(channel));
  }

  numpat(): number {
    let n = this.patterns.size;
    for (const [name, p] of this.remotePatterns) if (!this.patterns.has(name) && sum(p.by) > 0) n++;
    return n;
  }

  private subscriberOf(client: PubSubClient): Subscriber {
    let sub = this.subscribers.get(client);
    if (sub === undefined) {
      sub = { client, channels: new Set(), patterns: new Set() };
      this.subscribers.set(client, sub);
      client.whenClosed(() => {
        this.unsubscribe(client, null, 'ch');
        this.unsubscribe(client, null, 'pat');
      });
    }
    return sub;
  }

  /** This worker's subscribers get the message, each protocol's bytes encoded once. */
  private deliver(ch: string, message: Buffer): number {
    const subs = this.channels.get(ch);
    let n = 0;
    if (subs !== undefined) {
      const wire = new Encodings(['message', ch], message);
      for (const sub of subs) if (sub.client.deliver(wire.for(sub.client), this.outputLimit)) n++;
    }
    for (const [pattern, p] of this.patterns) {
      if (!p.match(ch)) continue;
      const wire = new Encodings(['pmessage', pattern, ch], message);
      for (const sub of p.subs) if (sub.client.deliver(wire.for(sub.client), this.outputLimit)) n++;
    }
    return n;
  }

  /**
   * Messages for other workers posted once per turn, in one message: one structured clone and one
   * wake-up of each other worker per batch, not per message. Order is kept.
   */
  private outgoing: [string, Uint8Array][] | null = null;
  private forward(ch: string, message: Buffer): void {
    if (this.outgoing === null) {
      this.outgoing = [];
      queueMicrotask(() => {
        const items = this.outgoing!;
        this.outgoing = null;
        this.post({ t: 'pub', items });
      });
    }
    this.outgoing.push([ch, message]);
  }

  private announce(kind: 'ch' | 'pat', name: string, n: number): void {
    this.post({ t: 'count', w: this.workerId, kind, name, n });
  }

  private post(msg: BusMessage): void {
    if (!this.closed) this.bus.postMessage(msg);
  }

  private onBus(msg: BusMessage): void {
    switch (msg.t) {
      case 'pub':
        for (const [ch, m] of msg.items)
          this.deliver(ch, Buffer.from(m.buffer, m.byteOffset, m.byteLength));
        break;
      case 'count':
        this.setRemote(msg.kind, msg.name, msg.w, msg.n);
        break;
      case 'hello': {
        // A worker (re)started: what it had before is gone; tell it what this worker has.
        for (const by of this.remoteChannels.values()) by.delete(msg.w);
        for (const p of this.remotePatterns.values()) p.by.delete(msg.w);
        const count = (m: Map<string, Set<Subscriber>>) =>
          [...m].map(([k, s]) => [k, s.size] as [string, number]);
        this.post({
          t: 'state',
          w: this.workerId,
          to: msg.w,
          ch: count(this.channels),
          pat: [...this.patterns].map(([k, p]) => [k, p.subs.size]),
        });
        break;
      }
      case 'state':
        if (msg.to !== this.workerId) break;
        for (const [name, n] of msg.ch) this.setRemote('ch', name, msg.w, n);
        for (const [name, n] of msg.pat) this.setRemote('pat', name, msg.w, n);
        break;
    }
  }

  private setRemote(kind: 'ch' | 'pat', name: string, worker: number, n: number): void {
    if (kind === 'ch') {
      const by = this.remoteChannels.get(name) ?? new Map<number, number>();
      this.remoteChannels.set(name, by);
      if (n > 0) by.set(worker, n);
      else by.delete(worker);
      if (by.size === 0) this.remoteChannels.delete(name);
    } else {
      const p = this.remotePatterns.get(name) ?? { match: globMatcher(name), by: new Map() };
      this.remotePatterns.set(name, p);
      if (n > 0) p.by.set(worker, n);
      else p.by.delete(worker);
      if (p.by.size === 0) this.remotePatterns.delete(name);
    }
  }
}

const sum = (m: Map<number, number> | undefined): number => {
  let n = 0;
  for (const v of m?.values() ?? []) n += v;
  return n;
};

/**
 * One message's bytes for each kind of subscriber, made on first use: RESP2 array, RESP3 push,
 * and the line protocol's `MESSAGE <channel> <payload>` (payload escaped: \\ \n \r).
 */
class Encodings {
  private readonly head: string[];
  private readonly payload: Buffer;
  private resp2: Buffer | null = null;
  private resp3: Buffer | null = null;
  private line: Buffer | null = null;

  constructor(head: string[], payload: Buffer) {
    this.head = head;
    this.payload = payload;
  }

  for(client: PubSubClient): Buffer {
    if (client.protocol === 'line') {
      this.line ??= this.lineForm();
      return this.line;
    }
    if (client.respVersion === 3) {
      this.resp3 ??= this.resp('>');
      return this.resp3;
    }
    this.resp2 ??= this.resp('*');
    return this.resp2;
  }

  private resp(type: string): Buffer {
    let text = `${type}${this.head.length + 1}\r\n`;
    for (const h of this.head) text += `$${h.length}\r\n${h}\r\n`;
    text += `$${this.payload.length}\r\n`;
    return Buffer.concat([Buffer.from(text, 'latin1'), this.payload, CRLF]);
  }

  private lineForm(): Buffer {
    const head = `${this.head[0].toUpperCase()} ${this.head.slice(1).join(' ')} `;
    return Buffer.concat([Buffer.from(head, 'latin1'), escapeLine(this.payload), LF]);
  }
}

const CRLF = Buffer.from('\r\n');
const LF = Buffer.from('\n');

/** A payload on one line: backslash, LF and CR escaped as \\, \n, \r. */
export function escapeLine(payload: Buffer): Buffer {
  if (!payload.includes(0x5c) && !payload.includes(0x0a) && !payload.includes(0x0d)) return payload;
  const out: number[] = [];
  for (const b of payload) {
    if (b === 0x5c) out.push(0x5c, 0x5c);
    else if (b === 0x0a) out.push(0x5c, 0x6e);
    else if (b === 0x0d) out.push(0x5c, 0x72);
    else out.push(b);
  }
  return Buffer.from(out);
}

let hub: Hub | null = null;

/** This worker's hub (created by the worker at start-up; tests may create their own). */
export function currentHub(): Hub {
  if (hub === null) throw new Error('pub/sub is not running in this thread');
  return hub;
}

export function startHub(options: HubOptions): Hub {
  hub?.close();
  hub = new Hub(options);
  return hub;
}
