// The forms a reply takes on each protocol that the built-in commands do not all reach: the line
// protocol's one-line rendering of every RESP3 shape, RESP3/RESP2 doubles that are not finite, and
// the decoder's error texts for bytes that cannot be shown as they are.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ReplyError } from '../../src/errors.ts';
import { encodeLineReply } from '../../src/protocol/line.ts';
import {
  Double,
  Preencoded,
  Push,
  Replies,
  RespMap,
  RespSet,
  Status,
  Verbatim,
} from '../../src/protocol/reply.ts';
import { encodeResp, RespDecoder } from '../../src/protocol/resp.ts';

const line = (r: Parameters<typeof encodeLineReply>[0]) => encodeLineReply(r).toString();

describe('line protocol: every reply shape on one line', () => {
  test('maps as key=value, sets, pushes and EXEC results as words', () => {
    assert.equal(
      line(
        new RespMap([
          ['role', 'master'],
          ['clients', 3],
        ]),
      ),
      'role=master clients=3\n',
    );
    assert.equal(line(new RespSet(['a', Buffer.from('b')])), 'a b\n');
    assert.equal(line(new Push(['message', 'news', 'hi'])), 'message news hi\n');
    assert.equal(line(new Replies([new Preencoded('OK'), 7, null])), 'OK 7 (nil)\n');
  });

  test('verbatim, status, doubles, booleans and nested lists', () => {
    assert.equal(line(new Verbatim('some text')), 'some text\n');
    assert.equal(line(new Status('fast')), 'fast\n');
    assert.equal(line(new Double(1.5)), '1.5\n');
    assert.equal(line(true), 'true\n');
    assert.equal(
      line(['a', ['b', 'c'], new ReplyError('ERR_X' as never, 'bad')]),
      'a b c ERROR: bad\n',
    );
  });

  test('a newline inside any text becomes a space: one request, one reply line', () => {
    assert.equal(line(new Verbatim('two\nlines\r\n')), 'two lines\n');
    assert.equal(line(new RespMap([['k', 'v\nw']])), 'k=v w\n');
  });
});

describe('RESP: doubles that are not finite', () => {
  test('RESP3 writes inf, -inf and nan; RESP2 sends the same words as bulk strings', () => {
    assert.equal(encodeResp(new Double(Infinity), 3).toString(), ',inf\r\n');
    assert.equal(encodeResp(new Double(-Infinity), 3).toString(), ',-inf\r\n');
    assert.equal(encodeResp(new Double(Number.NaN), 3).toString(), ',nan\r\n');
    assert.equal(encodeResp(new Double(Number.NaN), 2).toString(), '$3\r\nnan\r\n');
  });
});

describe('RespDecoder error texts', () => {
  const limits = { maxLine: 64, maxBulk: 1024, maxArgs: 16, maxRequest: 4096 };
  const first = (input: string): string => {
    const d = new RespDecoder(limits);
    d.push(Buffer.from(input, 'latin1'));
    const r = d.next();
    assert.ok(r instanceof ReplyError, `expected a protocol error for ${JSON.stringify(input)}`);
    return r.resp;
  };

  test('a lone minus sign is not a length', () => {
    assert.equal(first('*-\r\n'), 'ERR Protocol error: invalid multibulk length');
    assert.equal(first('*1\r\n$-\r\n'), 'ERR Protocol error: invalid bulk length');
  });

  test('a byte that cannot be shown is written as \\xHH', () => {
    assert.equal(first('*1\r\n\x01\r\n'), "ERR Protocol error: expected '$', got '\\x01'");
  });
});
