import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ReplyError, replyErrors } from '../../src/errors.ts';
import { encodeLineReply, LineDecoder, splitWords } from '../../src/protocol/line.ts';

type Out = string | 'TOO_LONG';

/** Feeds `chunks` and drains after each push, as a connection does. */
function decode(chunks: Buffer[], max = 64): Out[] {
  const d = new LineDecoder(max);
  const out: Out[] = [];
  for (const c of chunks) {
    d.push(c);
    for (let r = d.next(); r !== null; r = d.next()) {
      out.push(r instanceof ReplyError ? 'TOO_LONG' : r.toString('latin1'));
    }
  }
  return out;
}

/** Every way of cutting `input` in two, plus byte by byte. */
function splits(input: Buffer): Buffer[][] {
  const all: Buffer[][] = [];
  for (let i = 0; i <= input.length; i++) all.push([input.subarray(0, i), input.subarray(i)]);
  all.push([...input].map((b) => Buffer.from([b])));
  return all;
}

function forEverySplit(input: Buffer, max: number, expected: Out[]): void {
  for (const chunks of splits(input)) {
    assert.deepEqual(
      decode(chunks, max),
      expected,
      `split ${chunks.map((c) => c.length).join('+')}`,
    );
  }
}

describe('LineDecoder', () => {
  test('lines, CRLF, empty lines and a trailing partial line at every split offset', () => {
    const input = Buffer.from('PING\r\nECHO  a b \nTIME\n\r\n\nQUIT\r\npartial');
    forEverySplit(input, 64, ['PING', 'ECHO  a b ', 'TIME', '', '', 'QUIT']);
  });

  test('only the \\r just before \\n is dropped', () => {
    forEverySplit(Buffer.from('a\rb\r\r\n\rc\n'), 64, ['a\rb\r', '\rc']);
  });

  test('a line of exactly MAX_LINE_BYTES is accepted, with or without \\r', () => {
    const max = 16;
    const line = 'x'.repeat(max);
    forEverySplit(Buffer.from(`${line}\n${line}\r\nok\n`), max, [line, line, 'ok']);
  });

  test('one byte over the limit is refused at every split, and nothing after it is read', () => {
    const max = 16;
    const over = 'y'.repeat(max + 1);
    forEverySplit(Buffer.from(`first\n${over}\nPING\n`), max, ['first', 'TOO_LONG']);
    forEverySplit(Buffer.from(`${over}\r\nPING\n`), max, ['TOO_LONG']);
  });

  test('an over-long line is refused before its newline arrives (never buffered whole)', () => {
    const max = 16;
    const d = new LineDecoder(max);
    d.push(Buffer.from('z'.repeat(max)));
    assert.equal(d.next(), null);
    d.push(Buffer.from('\r')); // could still be the \r of \r\n
    assert.equal(d.next(), null);
    const d2 = new LineDecoder(max);
    d2.push(Buffer.from('z'.repeat(max + 1)));
    assert.equal(d2.next(), replyErrors.lineTooLong);
    d2.push(Buffer.from('\nPING\n'));
    assert.equal(d2.next(), null, 'a failed decoder takes nothing more');
    assert.equal(d2.pending, false);
  });

  test('the too-long error reply', () => {
    assert.equal(encodeLineReply(replyErrors.lineTooLong), 'ERROR: Line too long\n');
  });

  test('binary input: NUL, invalid UTF-8 and high bytes pass through untouched', () => {
    const input = Buffer.from([0x45, 0x00, 0xff, 0xfe, 0x0d, 0x0a, 0xc3, 0x28, 0x0a]);
    const expected = [Buffer.from([0x45, 0x00, 0xff, 0xfe]), Buffer.from([0xc3, 0x28])];
    for (const chunks of splits(input)) {
      const d = new LineDecoder(64);
      const got: Buffer[] = [];
      for (const c of chunks) {
        d.push(c);
        for (let r = d.next(); r !== null; r = d.next()) got.push(r as Buffer);
      }
      assert.deepEqual(got, expected);
    }
  });

  test('pending tells whether part of a request is held', () => {
    const d = new LineDecoder(64);
    assert.equal(d.pending, false);
    d.push(Buffer.from('PI'));
    assert.equal(d.next(), null);
    assert.equal(d.pending, true);
    d.push(Buffer.from('NG\nEC'));
    assert.equal(d.next()!.toString(), 'PING');
    assert.equal(d.pending, true);
    d.push(Buffer.from('HO x\n'));
    assert.equal(d.next()!.toString(), 'ECHO x');
    assert.equal(d.next(), null);
    assert.equal(d.pending, false);
  });

  test('a pulled line stops the decoder mid-chunk and resumes there (back-pressure)', () => {
    const d = new LineDecoder(64);
    d.push(Buffer.from('A\nB\nC\n'));
    assert.equal(d.next()!.toString(), 'A');
    d.push(Buffer.from('D\n')); // arrives while the connection is paused
    assert.deepEqual(
      [d.next(), d.next(), d.next(), d.next()].map((b) => b?.toString() ?? null),
      ['B', 'C', 'D', null],
    );
  });

  test('property: any bytes cut anywhere decode like a reference split on \\n', () => {
    const max = 32;
    const reference = (bytes: Uint8Array): Out[] => {
      const out: Out[] = [];
      let start = 0;
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] !== 10) {
          const partialLen = i - start + 1;
          if (partialLen > max + 1 || (partialLen === max + 1 && bytes[i] !== 13))
            return [...out, 'TOO_LONG'];
          continue;
        }
        let line = Buffer.from(bytes.subarray(start, i));
        if (line.length > 0 && line[line.length - 1] === 13) line = line.subarray(0, -1);
        if (line.length > max) return [...out, 'TOO_LONG'];
        out.push(line.toString('latin1'));
        start = i + 1;
      }
      return out;
    };
    fc.assert(
      fc.property(
        fc
          .array(fc.oneof(fc.constantFrom(10, 13, 0, 32, 65), fc.integer({ min: 0, max: 255 })), {
            maxLength: 200,
          })
          .map((a) => Uint8Array.from(a))
          .chain((u) => fc.tuple(fc.constant(u), fc.array(fc.nat(u.length), { maxLength: 10 }))),
        ([bytes, cuts]) => {
          const points = [...new Set(cuts)].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const p of [...points, bytes.length]) {
            chunks.push(Buffer.from(bytes.subarray(prev, p)));
            prev = p;
          }
          assert.deepEqual(decode(chunks, max), reference(bytes));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('splitWords', () => {
  test('words split on runs of spaces', () => {
    assert.deepEqual(splitWords(Buffer.from('  a bb   c ')).map(String), ['a', 'bb', 'c']);
    assert.deepEqual(splitWords(null), []);
    assert.deepEqual(splitWords(Buffer.from('   ')), []);
  });
});

describe('encodeLineReply', () => {
  test('every reply is one line ending in \\n', () => {
    assert.equal(encodeLineReply('PONG'), 'PONG\n');
    assert.equal(encodeLineReply(42), '42\n');
    assert.equal(encodeLineReply(null), '(nil)\n');
    assert.equal(encodeLineReply(replyErrors.unknownCommand), 'ERROR: Unknown command\n');
    assert.equal(encodeLineReply(['a', 1, null]), 'a 1 (nil)\n');
    assert.equal(encodeLineReply('two\nlines\r\nhere'), 'two lines here\n');
  });

  test('bytes come back exactly, except that a newline inside would split the reply', () => {
    const bytes = Buffer.from([0x00, 0xff, 0x0d, 0x41]);
    assert.deepEqual(encodeLineReply(bytes), Buffer.from([0x00, 0xff, 0x0d, 0x41, 0x0a]));
    assert.deepEqual(encodeLineReply(Buffer.from('a\nb')), Buffer.from('a b\n'));
    assert.equal(encodeLineReply(Buffer.alloc(0)), '\n');
  });
});
