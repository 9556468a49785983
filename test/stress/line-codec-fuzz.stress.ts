// Line codec fuzz: 10 million generated inputs (commands, spaces, CR/LF in every arrangement,
// binary bytes, over-long lines), each fed to LineDecoder in random chunks and compared with a
// reference model (split on "\n", drop one "\r", MAX_LINE_BYTES with its allowance for the "\r"
// of a "\r\n"), the words after the command name as splitWords() gives them, and ECHO's reply
// (the line's bytes and one "\n": the original's byte-compatible reply).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  encodeLineReply,
  LINE,
  LineDecoder,
  NEED_MORE,
  splitWords,
} from '../../src/protocol/line.ts';

const INPUTS = Number(process.env.FUZZ_INPUTS ?? 10_000_000);
const SEED = Number(process.env.FUZZ_SEED ?? 0x11e5);
const BUDGET_MS = 170_000;
const MAX_LINE = 12;

let state = SEED >>> 0 || 1;
/** xorshift32: cheap, seeded, reproducible. */
function rand(n: number): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) % n;
}

const ALPHABET = Buffer.from('PINGECHOTIMESTATS  \r\n\n\r\t\0\xff\xc3(ab');
const WORDS = ['PING', 'ECHO', 'ECHO ', 'TIME', 'STATS FULL', 'QUIT', 'HELP ECHO', 'AUTH x'];

function generate(): Buffer {
  const bytes: number[] = [];
  const push = (s: string) => {
    for (let i = 0; i < s.length; i++) bytes.push(s.charCodeAt(i) & 0xff);
  };
  const pieces = 1 + rand(4);
  for (let p = 0; p < pieces; p++) {
    const kind = rand(6);
    if (kind < 2) push(WORDS[rand(WORDS.length)]);
    else if (kind < 4) {
      const len = rand(kind === 2 ? 6 : MAX_LINE + 4);
      for (let i = 0; i < len; i++) bytes.push(ALPHABET[rand(ALPHABET.length)]);
    } else if (kind === 4) push(' '.repeat(1 + rand(3)));
    if (rand(3) > 0) push(['\n', '\r\n', '\r\r\n', '\n\n'][rand(4)]);
  }
  return Buffer.from(bytes);
}

const words = (line: Buffer) => {
  const sp = line.indexOf(0x20);
  return sp === -1 ? '' : splitWordsModel(line.toString('latin1', sp + 1));
};
const splitWordsModel = (rest: string) =>
  rest
    .split(' ')
    .filter((w) => w !== '')
    .join('\u0001');

/** Whole-input results: each line's bytes and words, then TOO_LONG if a line is over the limit. */
function model(buf: Buffer): string[] {
  const out: string[] = [];
  let pos = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl === -1) {
      const tail = buf.length - pos;
      const overLimit =
        tail > MAX_LINE + 1 || (tail === MAX_LINE + 1 && buf[buf.length - 1] !== 0x0d);
      if (overLimit) out.push('TOO_LONG');
      return out;
    }
    const end = nl > pos && buf[nl - 1] === 0x0d ? nl - 1 : nl;
    if (end - pos > MAX_LINE) {
      out.push('TOO_LONG');
      return out;
    }
    const line = buf.subarray(pos, end);
    out.push(`${line.toString('latin1')}\u0002${words(line)}`);
    pos = nl + 1;
  }
}

function decode(buf: Buffer): string[] {
  const d = new LineDecoder(MAX_LINE);
  const out: string[] = [];
  const cuts = rand(4);
  let prev = 0;
  for (let c = 0; c <= cuts; c++) {
    const to = c === cuts ? buf.length : prev + rand(buf.length - prev + 1);
    d.push(buf.subarray(prev, to));
    prev = to;
    for (let r = d.step(); r !== NEED_MORE; r = d.step()) {
      if (r !== LINE) {
        out.push('TOO_LONG');
        break;
      }
      const line = d.buf.subarray(d.start, d.end);
      const sp = line.indexOf(0x20);
      const w =
        sp === -1
          ? ''
          : splitWords(line.subarray(sp + 1))
              .map((b) => b.toString('latin1'))
              .join('\u0001');
      out.push(`${line.toString('latin1')}\u0002${w}`);
      const echo = encodeLineReply(Buffer.from(line));
      const expected = Buffer.concat([line, Buffer.from('\n')]);
      if (!Buffer.from(echo as Buffer | string).equals(expected)) out.push('ECHO REPLY DIFFERS');
    }
  }
  return out;
}

test('line decoder against the reference model, 10 million inputs cut at random', () => {
  const started = Date.now();
  let lines = 0;
  let tooLong = 0;
  let bytes = 0;
  for (let i = 0; i < INPUTS; i++) {
    const input = generate();
    bytes += input.length;
    const expected = model(input);
    const got = decode(input);
    if (got.length !== expected.length || got.some((g, k) => g !== expected[k])) {
      assert.deepEqual(
        got,
        expected,
        `input #${i} (seed ${SEED}): ${JSON.stringify(input.toString('latin1'))}`,
      );
    }
    lines += expected.length;
    if (expected[expected.length - 1] === 'TOO_LONG') tooLong++;
    if ((i & 0xffff) === 0 && Date.now() - started > BUDGET_MS)
      assert.fail(`only ${i} inputs in ${BUDGET_MS} ms`);
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(
    `STRESS line-codec-fuzz: inputs=${INPUTS} seed=${SEED} bytes=${bytes} lines=${lines - tooLong} too_long=${tooLong} mismatches=0 seconds=${seconds.toFixed(1)}`,
  );
});
