// The decoders on a transport that reuses its read buffer (Node's handle and onread paths, Bun): every chunk
// lies in one buffer that is overwritten after each read, so whatever a decoder keeps across reads
// (a partial request, requests left unread by back-pressure or an async command, the arguments of
// a request still arriving) and every argument it hands out must be a copy. Here the buffer is
// filled with garbage after each read; the requests must come out as they were sent.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { CommandSpec } from '../../src/commands/registry.ts';
import { line } from '../../src/protocol/line.ts';
import {
  FAILED,
  NEED_MORE,
  type Protocol,
  type RequestLimits,
} from '../../src/protocol/protocol.ts';
import { encodeRespRequest, resp } from '../../src/protocol/resp.ts';

const limits: RequestLimits = { maxLine: 256, maxBulk: 256, maxArgs: 16, maxRequest: 4096 };
const words = { restOfLine: false, minArgs: 0 } as CommandSpec;
const restOfLine = { restOfLine: true, minArgs: 0 } as CommandSpec;

/**
 * Decodes `input` cut at `cuts`. Shared: each piece is copied into one buffer that is pushed as a
 * view, then overwritten once the "read" is over. After each read at most `perRead` requests are
 * taken (the rest wait, as behind back-pressure or an async command). Every request is kept until
 * the end, arguments included.
 */
function decode(
  protocol: Protocol,
  spec: CommandSpec,
  input: Buffer,
  cuts: number[],
  shared: boolean,
  perRead = Infinity,
): string[][] {
  const d = protocol.decoder(limits);
  d.copyArgs = shared;
  const buffer = Buffer.allocUnsafeSlow(input.length + 1);
  const kept: { name: string; args: Buffer[] }[] = [];
  const failures: string[][] = [];
  const bounds = [0, ...cuts.filter((c) => c > 0 && c < input.length).sort((a, b) => a - b)];
  bounds.push(input.length);
  const take = (max: number): boolean => {
    for (let n = 0; n < max; n++) {
      const r = d.request();
      if (r === NEED_MORE) return true;
      if (r === FAILED) {
        failures.push(['FAILED', d.failure.message]);
        return false;
      }
      kept.push({
        name: d.nameBuf.toString('latin1', d.nameStart, d.nameEnd),
        args: d.args(spec),
      });
    }
    return true;
  };
  let ok = true;
  for (let i = 0; i + 1 < bounds.length && ok; i++) {
    const piece = input.subarray(bounds[i], bounds[i + 1]);
    if (piece.length === 0) continue;
    let chunk = piece;
    if (shared) {
      piece.copy(buffer);
      chunk = buffer.subarray(0, piece.length);
    }
    d.push(chunk);
    ok = take(perRead);
    if (shared) {
      d.retain(buffer.buffer);
      buffer.fill(0xee); // the next read overwrites it
    }
  }
  if (ok) {
    d.boundary();
    take(Infinity);
  }
  const out = kept.map(({ name, args }) => [name, ...args.map((a) => a.toString('latin1'))]);
  return [...out, ...failures];
}

const arg = fc.uint8Array({ minLength: 0, maxLength: 40 }).map((a) => Buffer.from(a));
const respInput = fc
  .array(fc.array(arg, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 8 })
  .map((reqs) => Buffer.concat(reqs.map((r) => encodeRespRequest(r))));
const word = fc.stringMatching(/^[A-Za-z0-9]{1,12}$/);
const lineInput = fc
  .array(fc.array(word, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 8 })
  .map((reqs) => Buffer.from(reqs.map((r) => `${r.join(' ')}\r\n`).join(''), 'latin1'));
const cuts = fc.array(fc.nat({ max: 600 }), { maxLength: 12 });
const perRead = fc.integer({ min: 0, max: 3 });

describe('decoders over a reused read buffer', () => {
  test('RESP: requests and arguments survive the buffer being overwritten (property)', () => {
    fc.assert(
      fc.property(respInput, cuts, perRead, (input, cut, n) => {
        const expected = decode(resp, words, input, [], false);
        assert.deepEqual(decode(resp, words, input, cut, true, n), expected);
        assert.deepEqual(decode(resp, words, input, cut, true), expected);
      }),
      { numRuns: 300 },
    );
  });

  test('line: requests and arguments survive the buffer being overwritten (property)', () => {
    fc.assert(
      fc.property(lineInput, cuts, perRead, fc.boolean(), (input, cut, n, rest) => {
        const spec = rest ? restOfLine : words;
        const expected = decode(line, spec, input, [], false);
        assert.deepEqual(decode(line, spec, input, cut, true, n), expected);
      }),
      { numRuns: 300 },
    );
  });

  test('RESP inline requests and a bulk split across reads, at every split offset', () => {
    const input = Buffer.concat([
      Buffer.from('PING\r\nECHO "a b" c\r\n'),
      encodeRespRequest(['SET', 'key', Buffer.alloc(100, 0x61)]),
      encodeRespRequest(['ECHO', '']),
    ]);
    const expected = decode(resp, words, input, [], false);
    assert.equal(expected.length, 4);
    for (let i = 0; i <= input.length; i++) {
      assert.deepEqual(decode(resp, words, input, [i], true, 0), expected, `split at ${i}`);
      assert.deepEqual(decode(resp, words, input, [i, i + 7], true, 1), expected, `at ${i}, +7`);
    }
  });

  test('a line cut at every offset, with a partial line left after each read', () => {
    const input = Buffer.from('ECHO first line\nECHO  spaced  out \r\nPING\nlast without newline');
    const expected = decode(line, restOfLine, input, [], false);
    assert.equal(expected.length, 4);
    for (let i = 0; i <= input.length; i++)
      for (const n of [0, 1, Infinity])
        assert.deepEqual(decode(line, restOfLine, input, [i], true, n), expected, `split at ${i}`);
  });

  test('copyArgs: arguments share no memory with the pushed chunk', () => {
    for (const [protocol, input] of [
      [resp, encodeRespRequest(['ECHO', 'hello'])],
      [line, Buffer.from('ECHO hello\n')],
    ] as const) {
      const d = protocol.decoder(limits);
      d.copyArgs = true;
      const own = Buffer.allocUnsafeSlow(input.length); // its own memory, as the read buffer
      input.copy(own);
      d.push(own);
      assert.equal(d.request(), 1);
      const [a] = d.args(restOfLine);
      own.fill(0);
      assert.equal(a.toString(), 'hello', protocol.name);
      assert.notEqual(a.buffer, own.buffer, protocol.name);
    }
  });
});
