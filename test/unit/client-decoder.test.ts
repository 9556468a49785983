// tcpool/client's reply decoder, socket-free: every split offset of a reply stream, and a
// fast-check property against the server's own encoder (encodeResp) with a reference model of
// what each reply decodes to.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  INCOMPLETE,
  PushMessage,
  ReplyDecoder,
  ServerError,
} from '../../src/client/reply-decoder.ts';
import { badArgument } from '../../src/errors.ts';
import { Double, Push, type Reply, RespMap, RespSet, Verbatim } from '../../src/protocol/reply.ts';
import { encodeResp } from '../../src/protocol/resp.ts';

/** Every value the stream holds, fed in the given chunks. */
function decodeAll(chunks: Buffer[], buffers = false): unknown[] {
  const d = new ReplyDecoder({ buffers });
  const out: unknown[] = [];
  for (const c of chunks) {
    d.push(c);
    for (let v = d.next(); v !== INCOMPLETE; v = d.next()) out.push(v);
  }
  return out;
}

/** What the client makes of a reply (the reference model). */
function model(r: Reply): unknown {
  if (r instanceof Error) return (r as { resp: string }).resp;
  if (typeof r === 'string') return r;
  if (Buffer.isBuffer(r)) return r.toString('utf8');
  if (typeof r === 'number' || typeof r === 'boolean' || r === null) return r;
  if (r instanceof RespMap)
    return Object.fromEntries(r.entries.map(([k, v]) => [String(model(k)), model(v)]));
  if (r instanceof RespSet) return r.items.map(model);
  if (r instanceof Verbatim) return r.text;
  if (r instanceof Double) return r.value;
  if (r instanceof Push) return new PushMessage(r.items.map(model));
  return (r as Reply[]).map(model);
}

const stream = Buffer.concat(
  [
    '+OK\r\n',
    '-NOTFOUND no user 2\r\n',
    ':-42\r\n',
    '(12345678901234567890\r\n',
    '$5\r\nhe\r\nl\r\n',
    '$-1\r\n',
    '*2\r\n$1\r\na\r\n*0\r\n',
    '%2\r\n+k\r\n:1\r\n$2\r\nk2\r\n~1\r\n#t\r\n',
    '|1\r\n+ttl\r\n:3\r\n+after-attribute\r\n',
    '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n',
    ',1.5\r\n,inf\r\n_\r\n=7\r\ntxt:abc\r\n!5\r\nOOPS!\r\n*-1\r\n',
  ].map((s) => Buffer.from(s)),
);
const expected = [
  'OK',
  new ServerError('NOTFOUND no user 2'),
  -42,
  12345678901234567890n,
  'he\r\nl',
  null,
  ['a', []],
  { k: 1, k2: [true] },
  'after-attribute',
  new PushMessage(['message', 'ch', 'hi']),
  1.5,
  Infinity,
  null,
  'abc',
  new ServerError('OOPS!'),
  null,
];

test('a reply stream split at every offset decodes the same', () => {
  for (let i = 0; i <= stream.length; i++) {
    for (let j = i; j <= stream.length; j += 7) {
      const parts = [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)];
      assert.deepEqual(decodeAll(parts), expected, `split at ${i}, ${j}`);
    }
  }
  const byByte = [...stream].map((b) => Buffer.from([b]));
  assert.deepEqual(decodeAll(byByte), expected);
  const err = decodeAll([stream])[1] as ServerError;
  assert.deepEqual([err.code, err.message], ['NOTFOUND', 'no user 2']);
});

test('binary bulk strings as Buffers; a large bulk in many chunks', () => {
  const bytes = Buffer.from([0, 255, 13, 10, 7]);
  assert.deepEqual(decodeAll([Buffer.from('$5\r\n'), bytes, Buffer.from('\r\n')], true), [bytes]);
  const big = Buffer.alloc(1 << 20, 0x61);
  const wire = Buffer.concat([
    Buffer.from(`$${big.length}\r\n`),
    big,
    Buffer.from('\r\n+next\r\n'),
  ]);
  const chunks: Buffer[] = [];
  for (let i = 0; i < wire.length; i += 1000) chunks.push(wire.subarray(i, i + 1000));
  const [v, next] = decodeAll(chunks, true) as [Buffer, string];
  assert.equal(v.length, big.length);
  assert.ok(v.equals(big));
  assert.equal(next, 'next');
});

test('bytes that are not RESP throw (the connection then closes)', () => {
  for (const bad of ['?x\r\n', '+no-cr\n', '$abc\r\n', ':1.5\r\n', '*-2\r\n']) {
    const d = new ReplyDecoder();
    d.push(Buffer.from(bad));
    assert.throws(() => d.next(), /RESP/, bad);
  }
  const d = new ReplyDecoder({ maxBulk: 10 });
  d.push(Buffer.from('$11\r\n'));
  assert.throws(() => d.next(), /over the limit/);
});

/** Server errors as their wire text, at any depth, to compare with the model. */
function norm(v: unknown): unknown {
  if (v instanceof ServerError) return `${v.code} ${v.message}`;
  if (Array.isArray(v)) return v.map(norm);
  if (v instanceof PushMessage) return new PushMessage(v.items.map(norm));
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}

const scalar = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a).toString('base64')),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc
    .double({ noNaN: true, noDefaultInfinity: false })
    .filter((n) => !Number.isInteger(n))
    .map((n) => new Double(n)),
  fc.string({ maxLength: 12 }).map((s) => new Verbatim(s)),
  fc
    .string({ maxLength: 12 })
    .map((s) => badArgument(s.replace(/[\r\n]/g, ' '), `ERR ${s.replace(/[\r\n]/g, ' ')}`)),
);
const reply: fc.Arbitrary<Reply> = fc.letrec<{ r: Reply }>((tie) => ({
  r: fc.oneof(
    { depthSize: 'small' },
    scalar,
    fc.array(tie('r'), { maxLength: 4 }),
    fc
      .array(fc.tuple(fc.string({ maxLength: 6 }), tie('r')), { maxLength: 3 })
      .map(
        (entries) =>
          new RespMap(entries.filter(([k], i) => entries.findIndex(([k2]) => k2 === k) === i)),
      ),
    fc.array(tie('r'), { maxLength: 3 }).map((items) => new RespSet(items)),
  ),
})).r;

test('property: whatever the server encodes in RESP3, split anywhere, decodes to the model', () => {
  fc.assert(
    fc.property(
      fc.array(reply, { minLength: 1, maxLength: 5 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (replies, cuts) => {
        const wire = Buffer.concat(replies.map((r) => Buffer.from(encodeResp(r, 3))));
        const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let last = 0;
        for (const p of points) {
          chunks.push(wire.subarray(last, p));
          last = p;
        }
        chunks.push(wire.subarray(last));
        const got = decodeAll(chunks).map(norm);
        const want = replies.map(model);
        assert.deepEqual(got, want);
      },
    ),
    { numRuns: 500 },
  );
});
