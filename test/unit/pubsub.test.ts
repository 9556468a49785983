// Pub/sub's socket-free parts: Redis's glob patterns, the line form's escaping, and a hub's
// delivery, counts and clean-up with fake clients (cross-worker delivery is tested over real
// sockets in test/integration/pubsub.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeLine, Hub, type PubSubClient } from '../../src/pubsub/hub.ts';
import { globMatcher } from '../../src/pubsub/glob.ts';

test("glob patterns match as Redis's stringmatchlen does", () => {
  const cases: [string, string, boolean][] = [
    ['*', 'anything', true],
    ['news.*', 'news.sport', true],
    ['news.*', 'news', false],
    ['h?llo', 'hello', true],
    ['h?llo', 'hllo', false],
    ['h[ae]llo', 'hallo', true],
    ['h[ae]llo', 'hillo', false],
    ['h[^e]llo', 'hallo', true],
    ['h[^e]llo', 'hello', false],
    ['h[a-b]llo', 'hbllo', true],
    ['h[b-a]llo', 'hallo', true], // a reversed range is the same range
    ['h\\*llo', 'h*llo', true],
    ['h\\*llo', 'hello', false],
    ['a.b', 'aXb', false], // "." is literal
    ['[', '[', true], // an unclosed "[" is literal
    ['x\nz', 'x\nz', true],
  ];
  for (const [pattern, name, want] of cases)
    assert.equal(globMatcher(pattern)(name), want, `${pattern} ~ ${JSON.stringify(name)}`);
});

test('line form escapes backslash, LF and CR', () => {
  assert.equal(escapeLine(Buffer.from('a\nb\\c\rd')).toString(), 'a\\nb\\\\c\\rd');
  const plain = Buffer.from('plain');
  assert.equal(escapeLine(plain), plain, 'no copy when nothing needs escaping');
});

function fakeClient(protocol: 'line' | 'resp', respVersion: 2 | 3, opts: { full?: boolean } = {}) {
  const got: string[] = [];
  const closers: (() => void)[] = [];
  const client: PubSubClient & { got: string[]; close(): void } = {
    protocol,
    respVersion,
    subscriptions: 0,
    got,
    deliver: (data) => {
      if (opts.full) return false;
      got.push(data.toString());
      return true;
    },
    whenClosed: (fn) => closers.push(fn),
    close: () => {
      for (const fn of closers) fn();
    },
  };
  return client;
}

test('a hub delivers each protocol its form, counts receivers, and forgets closed clients', () => {
  const hub = new Hub({ workerId: 0, outputLimit: 0 });
  try {
    const line = fakeClient('line', 2);
    const r2 = fakeClient('resp', 2);
    const r3 = fakeClient('resp', 3);
    const full = fakeClient('resp', 2, { full: true });
    assert.deepEqual(hub.subscribe(line, ['ch', 'ch'], 'ch'), [
      ['ch', 1],
      ['ch', 1],
    ]);
    hub.subscribe(r2, ['ch'], 'ch');
    hub.subscribe(r3, ['c*'], 'pat');
    hub.subscribe(full, ['ch'], 'ch');
    assert.equal(
      hub.publish(Buffer.from('ch'), Buffer.from('hi\n')),
      3,
      'the cut-off one is not counted',
    );
    assert.deepEqual(line.got, ['MESSAGE ch hi\\n\n']);
    assert.deepEqual(r2.got, ['*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhi\n\r\n']);
    assert.deepEqual(r3.got, ['>4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$3\r\nhi\n\r\n']);
    assert.deepEqual(hub.activeChannels(null), ['ch']);
    assert.equal(hub.numsub('ch'), 3);
    assert.equal(hub.numpat(), 1);
    line.close();
    r3.close();
    assert.equal(hub.numsub('ch'), 2);
    assert.equal(hub.numpat(), 0);
    assert.equal(line.subscriptions, 0);
    assert.deepEqual(hub.unsubscribe(r2, null, 'ch'), [['ch', 0]]);
    assert.deepEqual(hub.unsubscribe(r2, null, 'ch'), [[null, 0]]);
    assert.deepEqual(hub.activeChannels('c?'), ['ch'], 'the full client is still subscribed');
  } finally {
    hub.close();
  }
});

test('a message published just after a subscription in another worker reaches it (counts lag)', async () => {
  const a = new Hub({ workerId: 0, outputLimit: 0, workers: () => 2 });
  const b = new Hub({ workerId: 1, outputLimit: 0, workers: () => 2 });
  try {
    const sub = fakeClient('line', 2);
    b.subscribe(sub, ['news'], 'ch');
    // Hub a has not heard of the subscription yet (counts travel like messages): it still posts.
    assert.equal(a.publish(Buffer.from('news'), Buffer.from('first')), 0);
    for (let i = 0; i < 200 && sub.got.length === 0; i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(sub.got, ['MESSAGE news first\n']);
  } finally {
    a.close();
    b.close();
  }
});

test('a single worker posts nothing', async () => {
  const only = new Hub({ workerId: 0, outputLimit: 0, workers: () => 1 });
  const listener = new Hub({ workerId: 1, outputLimit: 0, workers: () => 2 });
  try {
    const sub = fakeClient('line', 2);
    listener.subscribe(sub, ['news'], 'ch');
    only.publish(Buffer.from('news'), Buffer.from('kept home'));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(sub.got, []);
  } finally {
    only.close();
    listener.close();
  }
});
