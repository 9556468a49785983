import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ReplyError, replyErrors, wrongArity } from '../../src/errors.ts';
import { Double, Push, RespMap, RespSet, Status, Verbatim } from '../../src/protocol/reply.ts';
import {
  encodeResp,
  encodeRespRequest,
  RespDecoder,
  type RespLimits,
} from '../../src/protocol/resp.ts';
import { scanReply } from '../../src/protocol/resp-reply.ts';

const limits: RespLimits = { maxLine: 64, maxBulk: 1024, maxArgs: 16, maxRequest: 4096 };
type Out = string[] | string;

function decode(chunks: Buffer[], l = limits): Out[] {
  const d = new RespDecoder(l);
  const out: Out[] = [];
  for (const c of chunks) {
    d.push(c);
    for (let r = d.next(); r !== null; r = d.next()) {
      out.push(r instanceof ReplyError ? r.resp : r.map((b) => b.toString('latin1')));
    }
  }
  return out;
}

function forEverySplit(input: Buffer, expected: Out[], l = limits): void {
  for (let i = 0; i <= input.length; i++) {
    assert.deepEqual(
      decode([input.subarray(0, i), input.subarray(i)], l),
      expected,
      `split at ${i}`,
    );
  }
  assert.deepEqual(
    decode(
      [...input].map((b) => Buffer.from([b])),
      l,
    ),
    expected,
    'byte by byte',
  );
}

describe('RespDecoder', () => {
  test('pipelined requests, empty and binary bulks, at every split offset', () => {
    const input = Buffer.concat([
      Buffer.from('*1\r\n$4\r\nPING\r\n'),
      Buffer.from('*2\r\n$4\r\nECHO\r\n$0\r\n\r\n'),
      Buffer.from('*0\r\n*-1\r\n'), // empty and null arrays are skipped, as in Redis
      Buffer.from('*3\r\n$3\r\nSET\r\n$3\r\na\r\n\r\n$4\r\n'),
      Buffer.from([0, 0xff, 0x0a, 0x0d]),
      Buffer.from('\r\n'),
    ]);
    forEverySplit(input, [['PING'], ['ECHO', ''], ['SET', 'a\r\n', '\x00\xff\n\r']]);
  });

  test('inline requests and blank lines between arrays, at every split offset (as Redis)', () => {
    const input = Buffer.from(
      '*1\r\n$4\r\nPING\r\n\r\nPING\r\n\n  \t \r\nECHO  hello\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\nQUIT\n',
    );
    forEverySplit(input, [['PING'], ['PING'], ['ECHO', 'hello'], ['ECHO', 'x'], ['QUIT']]);
  });

  // Each expected result was checked against redis-server 7.0.15.
  const inline: [string, string, string[] | string][] = [
    ['words split on runs of white space', 'SET  a\tb', ['SET', 'a', 'b']],
    ['\\v and \\f skipped between words only', 'ECHO \v\fa b\vc', ['ECHO', 'a', 'b\vc']],
    ['a \\r before the \\r\\n ends the last word', 'ECHO a\r', ['ECHO', 'a']],
    ['double quotes keep spaces', 'ECHO "a b"', ['ECHO', 'a b']],
    [
      'double-quote escapes',
      'ECHO "\\x41\\x4g\\n\\r\\t\\b\\a\\"\\q"',
      ['ECHO', 'Ax4g\n\r\t\b\x07"q'],
    ],
    ["single quotes: only \\' is special", "ECHO 'it\\'s \\x41'", ['ECHO', "it's \\x41"]],
    ['an unquoted start joins its quoted end', 'ECHO a"b c"', ['ECHO', 'ab c']],
    ['an empty quoted word', 'ECHO "" \'\'', ['ECHO', '', '']],
    ['a NUL byte is an ordinary byte', 'ECHO a\x00b', ['ECHO', 'a\x00b']],
    ['text after a closing quote', "ECHO 'a'b", 'ERR Protocol error: unbalanced quotes in request'],
    ['an unclosed quote', 'ECHO "a\\"', 'ERR Protocol error: unbalanced quotes in request'],
    [
      'a trailing backslash in quotes',
      'ECHO "a\\',
      'ERR Protocol error: unbalanced quotes in request',
    ],
  ];
  for (const [what, line, expected] of inline) {
    test(`inline: ${what}`, () => {
      const input = Buffer.concat([
        encodeRespRequest(['PING']),
        Buffer.from(`${line}\r\n`, 'latin1'),
      ]);
      forEverySplit(input, [['PING'], expected]);
    });
  }

  test('an inline request is limited by MAX_LINE_BYTES, before and after its end arrives', () => {
    const d = new RespDecoder(limits);
    d.push(Buffer.from('ECHO ' + 'a'.repeat(70)));
    assert.equal((d.next() as ReplyError).resp, 'ERR Protocol error: too big inline request');
    const d2 = new RespDecoder(limits);
    d2.push(Buffer.from('ECHO ' + 'a'.repeat(70) + '\r\n'));
    assert.equal((d2.next() as ReplyError).resp, 'ERR Protocol error: too big inline request');
    forEverySplit(Buffer.from('ECHO ' + 'a'.repeat(59) + '\r\n'), [['ECHO', 'a'.repeat(59)]]);
  });

  test('an inline request with more words than MAX_ARGS is refused', () => {
    forEverySplit(Buffer.from('a '.repeat(17) + '\n'), [
      'ERR Protocol error: invalid multibulk length',
    ]);
    forEverySplit(Buffer.from('a '.repeat(16) + '\n'), [Array(16).fill('a')]);
  });

  test('a bulk that fills its chunk exactly is not copied', () => {
    const d = new RespDecoder(limits);
    const chunk = Buffer.from('*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n');
    d.push(chunk);
    const args = d.next() as Buffer[];
    assert.equal(args[1].buffer, chunk.buffer);
    assert.equal(d.pending, false);
  });

  const malformed: [string, string, string][] = [
    [
      'out-of-range multibulk count',
      '*3000000000\r\n',
      'ERR Protocol error: invalid multibulk length',
    ],
    ['count over MAX_ARGS', '*17\r\n', 'ERR Protocol error: invalid multibulk length'],
    ['negative multibulk count', '*-10\r\n', 'ERR Protocol error: invalid multibulk length'],
    ['* followed by junk', '*x1\r\n', 'ERR Protocol error: invalid multibulk length'],
    ['* with nothing', '*\r\n', 'ERR Protocol error: invalid multibulk length'],
    ['missing $', '*1\r\nfoo\r\n', "ERR Protocol error: expected '$', got 'f'"],
    [
      'wrong payload header',
      '*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n',
      "ERR Protocol error: expected '$', got 'f'",
    ],
    [
      'negative bulk length',
      '*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n',
      'ERR Protocol error: invalid bulk length',
    ],
    ['bulk length too big', '*1\r\n$2000000000\r\n', 'ERR Protocol error: invalid bulk length'],
    ['bulk over MAX_BULK_BYTES', '*1\r\n$1025\r\n', 'ERR Protocol error: invalid bulk length'],
    [
      'non-numeric bulk length',
      '*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n',
      'ERR Protocol error: invalid bulk length',
    ],
    [
      'unexpected byte after a bulk',
      '*1\r\n$4\r\nPINGx\r\n',
      "ERR Protocol error: expected CRLF after bulk string, got 'x'",
    ],
    [
      '\\r not followed by \\n after a bulk',
      '*1\r\n$4\r\nPING\rx',
      "ERR Protocol error: expected CRLF after bulk string, got 'x'",
    ],
    [
      'unbalanced quotes in an inline request',
      '*1\r\n$4\r\nPING\r\nECHO "a\r\n',
      'ERR Protocol error: unbalanced quotes in request',
    ],
    [
      'a closing quote followed by a letter',
      '*1\r\n$4\r\nPING\r\nECHO "a"b\r\n',
      'ERR Protocol error: unbalanced quotes in request',
    ],
  ];
  for (const [what, input, error] of malformed) {
    test(`malformed: ${what}, at every split offset`, () => {
      const good = input.startsWith('*1\r\n$4\r\nPING\r\n') ? [['PING']] : [];
      forEverySplit(Buffer.from(input), [...good, error]);
    });
  }

  test('MAX_REQUEST_BYTES counts every bulk of one request', () => {
    const l = { ...limits, maxRequest: 10 };
    forEverySplit(
      Buffer.from('*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n*1\r\n$4\r\nPING\r\n'),
      [['hello', 'world'], ['PING']],
      l,
    );
    forEverySplit(
      Buffer.from('*2\r\n$5\r\nhello\r\n$6\r\nworld!\r\n'),
      ['ERR Protocol error: request larger than MAX_REQUEST_BYTES'],
      l,
    );
  });

  test('header lines are limited before their end arrives', () => {
    const d = new RespDecoder(limits);
    d.push(Buffer.from('*' + '1'.repeat(70)));
    assert.equal((d.next() as ReplyError).resp, 'ERR Protocol error: too big mbulk count string');
    const d2 = new RespDecoder(limits);
    d2.push(Buffer.from('*1\r\n$' + '1'.repeat(70)));
    assert.equal((d2.next() as ReplyError).resp, 'ERR Protocol error: too big bulk count string');
  });

  test('a bulk is not held before its length is checked', () => {
    const d = new RespDecoder(limits);
    d.push(Buffer.from('*1\r\n$99999\r\n'));
    const err = d.next() as ReplyError;
    assert.equal(err.code, 'ERR_PROTOCOL');
    d.push(Buffer.alloc(1000));
    assert.equal(d.next(), null, 'nothing after an error');
    assert.equal(d.pending, false);
  });

  test('property: requests of random binary arguments, cut anywhere, round-trip', () => {
    const big = { maxLine: 64, maxBulk: 1 << 20, maxArgs: 1 << 20, maxRequest: 1 << 24 };
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 6 }), {
          minLength: 1,
          maxLength: 5,
        }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (requests, cuts) => {
          const bytes = Buffer.concat(
            requests.map((r) => encodeRespRequest(r.map((a) => Buffer.from(a)))),
          );
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort(
            (a, b) => a - b,
          );
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const p of [...points, bytes.length]) {
            chunks.push(bytes.subarray(prev, p));
            prev = p;
          }
          const d = new RespDecoder(big);
          const got: Buffer[][] = [];
          for (const c of chunks) {
            d.push(c);
            for (let r = d.next(); r !== null; r = d.next()) got.push(r as Buffer[]);
          }
          assert.deepEqual(
            got.map((r) => r.map((b) => [...b])),
            requests.map((r) => r.map((a) => [...a])),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: RESP arrays, quoted inline requests and blank lines, mixed and cut anywhere, round-trip', () => {
    const big = { maxLine: 1 << 16, maxBulk: 1 << 20, maxArgs: 1 << 20, maxRequest: 1 << 24 };
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            args: fc.array(fc.uint8Array({ maxLength: 20 }), { minLength: 1, maxLength: 5 }),
            inline: fc.boolean(),
            blank: fc.constantFrom('', '\n', '\r\n', ' \t\r\n'),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.array(fc.nat(), { maxLength: 8 }),
        (requests, cuts) => {
          const bytes = Buffer.concat(
            requests.flatMap((r) => [
              Buffer.from(r.blank),
              r.inline
                ? encodeInline(r.args)
                : encodeRespRequest(r.args.map((a) => Buffer.from(a))),
            ]),
          );
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort(
            (a, b) => a - b,
          );
          const d = new RespDecoder(big);
          const got: Buffer[][] = [];
          let prev = 0;
          for (const p of [...points, bytes.length]) {
            d.push(bytes.subarray(prev, p));
            prev = p;
            for (let r = d.next(); r !== null; r = d.next()) got.push(r as Buffer[]);
          }
          assert.deepEqual(
            got.map((r) => r.map((b) => [...b])),
            requests.map((r) => r.args.map((a) => [...a])),
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});

/** An inline request with every argument in double quotes, every byte that needs it as \xHH. */
function encodeInline(args: Uint8Array[]): Buffer {
  const word = (a: Uint8Array) =>
    `"${[...a].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('')}"`;
  return Buffer.from(`${args.map(word).join(' ')}\r\n`, 'latin1');
}

describe('encodeResp', () => {
  const enc = (r: Parameters<typeof encodeResp>[0], v: 2 | 3) => encodeResp(r, v).toString();

  test('RESP2 shapes', () => {
    assert.equal(enc('PONG', 2), '+PONG\r\n');
    assert.equal(enc('two\r\nlines', 2), '$10\r\ntwo\r\nlines\r\n');
    assert.equal(enc(Buffer.from('hi'), 2), '$2\r\nhi\r\n');
    assert.equal(enc(Buffer.alloc(0), 2), '$0\r\n\r\n');
    assert.equal(enc(42, 2), ':42\r\n');
    assert.equal(enc(-1, 2), ':-1\r\n');
    assert.equal(enc(null, 2), '$-1\r\n');
    assert.equal(enc(true, 2), ':1\r\n');
    assert.equal(enc(1.5, 2), '$3\r\n1.5\r\n');
    assert.equal(enc(['a', Buffer.from('b'), 1], 2), '*3\r\n$1\r\na\r\n$1\r\nb\r\n:1\r\n');
    assert.equal(enc([], 2), '*0\r\n');
    assert.equal(
      enc(RespMap.from({ k: 'v', n: 1 }), 2),
      '*4\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n',
    );
    assert.equal(enc(new RespSet(['x']), 2), '*1\r\n$1\r\nx\r\n');
    assert.equal(enc(new Verbatim('a:1\r\n'), 2), '$5\r\na:1\r\n\r\n');
    assert.equal(enc([new Status('fast')], 2), '*1\r\n+fast\r\n');
    assert.equal(enc(new Push(['message']), 2), '*1\r\n$7\r\nmessage\r\n');
  });

  test('RESP3 shapes', () => {
    assert.equal(enc(null, 3), '_\r\n');
    assert.equal(enc(false, 3), '#f\r\n');
    assert.equal(enc(new Double(3), 3), ',3\r\n');
    assert.equal(enc(2.5, 3), ',2.5\r\n');
    assert.equal(enc(new Double(Infinity), 3), ',inf\r\n');
    assert.equal(enc(RespMap.from({ proto: 3 }), 3), '%1\r\n$5\r\nproto\r\n:3\r\n');
    assert.equal(enc(new RespSet([1, 2]), 3), '~2\r\n:1\r\n:2\r\n');
    assert.equal(enc(new Verbatim('héllo'), 3), '=10\r\ntxt:héllo\r\n');
    assert.equal(enc(new Push(['pubsub', 1]), 3), '>2\r\n$6\r\npubsub\r\n:1\r\n');
  });

  test('errors use the RESP text with its Redis code word, on one line', () => {
    assert.equal(enc(replyErrors.unknownCommand, 2), '-ERR Unknown command\r\n');
    assert.equal(
      enc(wrongArity('ECHO', 'ECHO <message>'), 3),
      "-ERR wrong number of arguments for 'echo' command\r\n",
    );
    assert.equal(enc(new ReplyError('ERR_INTERNAL', 'x', 'ERR a\r\nb'), 2), '-ERR a b\r\n');
  });

  test('bulk bytes are sent exactly', () => {
    const bytes = Buffer.from([0, 13, 10, 255]);
    assert.deepEqual(
      encodeResp(bytes, 2),
      Buffer.concat([Buffer.from('$4\r\n'), bytes, Buffer.from('\r\n')]),
    );
  });
});

describe('scanReply (the client side)', () => {
  const values = fc.letrec((tie) => ({
    reply: fc.oneof(
      { depthSize: 'small' },
      fc.string().map((s) => s),
      fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
      fc.integer(),
      fc.double({ noNaN: true }),
      fc.boolean(),
      fc.constant(null),
      fc.string().map((s) => new Verbatim(s)),
      fc.string().map((s) => new ReplyError('ERR_INTERNAL', s, `ERR ${s}`)),
      fc.array(tie('reply'), { maxLength: 4 }),
      fc
        .array(fc.tuple(fc.string(), tie('reply')), { maxLength: 3 })
        .map((e) => new RespMap(e as [string, never][])),
      fc.array(tie('reply'), { maxLength: 3 }).map((i) => new RespSet(i as never[])),
    ),
  }));

  test('property: every encoded reply, RESP2 and RESP3, frames exactly and is incomplete when cut short', () => {
    fc.assert(
      fc.property(
        fc.array(values.reply, { minLength: 1, maxLength: 4 }),
        fc.constantFrom(2, 3),
        (replies, v) => {
          const parts = replies.map((r) => Buffer.from(encodeResp(r as never, v as 2 | 3)));
          const all = Buffer.concat(parts);
          let at = 0;
          for (const p of parts) {
            const end = scanReply(all, at);
            assert.equal(end, at + p.length);
            for (let cut = at; cut < end; cut++)
              assert.equal(scanReply(all.subarray(0, cut), at), -1);
            at = end;
          }
          assert.equal(at, all.length);
        },
      ),
      { numRuns: 200 },
    );
  });
});
