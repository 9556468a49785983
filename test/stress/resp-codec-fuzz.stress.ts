// RESP decoder fuzz: 10 million generated inputs (valid and broken arrays, inline requests with
// quotes and escapes, blank lines, random bytes, then mutated or cut short), each fed to
// RespDecoder in random chunks and compared with a reference model: a plain whole-buffer parser
// and a transliteration of Redis's sdssplitargs(). Limits are small so that every length check
// fires; MAX_LINE_BYTES is larger than any input here (its split-dependent messages are covered by
// the unit tests).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplyError } from '../../src/errors.ts';
import { RespDecoder, type RespLimits } from '../../src/protocol/resp.ts';

const INPUTS = Number(process.env.FUZZ_INPUTS ?? 10_000_000);
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const BUDGET_MS = 170_000;
const limits: RespLimits = { maxLine: 1 << 16, maxBulk: 8, maxArgs: 5, maxRequest: 20 };

let state = SEED >>> 0 || 1;
/** xorshift32: cheap, seeded, reproducible. */
function rand(n: number): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) % n;
}

const ALPHABET = Buffer.from('*$-0123456789\r\n\r\n  \t"\'\\xAaz\0\xff');
const pick = () => ALPHABET[rand(ALPHABET.length)];
const ESCAPES = [
  '\\x41',
  '\\xfF',
  '\\x4',
  '\\xg1',
  '\\n',
  '\\r',
  '\\t',
  '\\b',
  '\\a',
  '\\q',
  '\\"',
  "\\'",
  '\\',
];

function piece(out: number[]): void {
  const kind = rand(10);
  const push = (s: string) => {
    for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
  };
  if (kind < 4) {
    const argc = rand(10) === 0 ? rand(8) - 1 : 1 + rand(4);
    push(`*${argc}\r\n`);
    for (let a = 0; a < argc; a++) {
      const len = rand(12) === 0 ? 9 + rand(4) : rand(7);
      push(`$${len}\r\n`);
      for (let i = 0; i < len; i++) out.push(rand(4) === 0 ? pick() : 0x61 + rand(26));
      push('\r\n');
    }
  } else if (kind < 7) {
    const words = 1 + rand(4);
    for (let w = 0; w < words; w++) {
      if (w > 0) push([' ', '  ', '\t', ' \x0b'][rand(4)]);
      const style = rand(5);
      if (style === 1) push('"');
      if (style === 2) push("'");
      const len = rand(6);
      for (let i = 0; i < len; i++) {
        const r = rand(8);
        if (r === 0) push(ESCAPES[rand(ESCAPES.length)]);
        else out.push(r === 1 ? pick() : 0x61 + rand(26));
      }
      if (style === 1) push('"');
      if (style === 2) push("'");
    }
    push(rand(2) === 0 ? '\r\n' : '\n');
  } else if (kind < 8) {
    push(['\n', '\r\n', ' \r\n', '\t\n'][rand(4)]);
  } else {
    const len = 1 + rand(12);
    for (let i = 0; i < len; i++) out.push(pick());
  }
}

function generate(): Buffer {
  const bytes: number[] = [];
  const pieces = 1 + rand(4);
  for (let p = 0; p < pieces; p++) piece(bytes);
  const m = rand(10);
  if (m < 2 && bytes.length > 0) bytes[rand(bytes.length)] = pick();
  else if (m === 2) bytes.length = rand(bytes.length + 1);
  return Buffer.from(bytes);
}

// ---- The reference model ----

const show = (b: number) =>
  b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
const isspace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const ishex = (c: number) => /[0-9a-fA-F]/.test(String.fromCharCode(c));

/**
 * Redis's sdssplitargs(), statement for statement; -1 stands for the string's end (a NUL is a
 * byte).
 */
function sdssplitargs(line: Buffer): string[] | null {
  const n = line.length;
  const at = (i: number) => (i < n ? line[i] : -1);
  const vector: string[] = [];
  let p = 0;
  for (;;) {
    while (p < n && isspace(line[p])) p++;
    if (p >= n) return vector;
    let inq = false;
    let insq = false;
    let done = false;
    const current: number[] = [];
    while (!done) {
      const c = at(p);
      if (inq) {
        if (c === 0x5c && at(p + 1) === 0x78 && ishex(at(p + 2)) && ishex(at(p + 3))) {
          current.push(Number.parseInt(String.fromCharCode(at(p + 2), at(p + 3)), 16));
          p += 3;
        } else if (c === 0x5c && at(p + 1) !== -1) {
          p++;
          const e = at(p);
          current.push(
            e === 0x6e
              ? 10
              : e === 0x72
                ? 13
                : e === 0x74
                  ? 9
                  : e === 0x62
                    ? 8
                    : e === 0x61
                      ? 7
                      : e,
          );
        } else if (c === 0x22) {
          if (at(p + 1) !== -1 && !isspace(at(p + 1))) return null;
          done = true;
        } else if (c === -1) {
          return null;
        } else {
          current.push(c);
        }
      } else if (insq) {
        if (c === 0x5c && at(p + 1) === 0x27) {
          p++;
          current.push(0x27);
        } else if (c === 0x27) {
          if (at(p + 1) !== -1 && !isspace(at(p + 1))) return null;
          done = true;
        } else if (c === -1) {
          return null;
        } else {
          current.push(c);
        }
      } else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === -1) {
        done = true;
      } else if (c === 0x22) {
        inq = true;
      } else if (c === 0x27) {
        insq = true;
      } else {
        current.push(c);
      }
      if (c !== -1) p++;
    }
    vector.push(Buffer.from(current).toString('latin1'));
  }
}

/** The decoder's results for the whole input at once: requests, then maybe one error. */
function model(buf: Buffer): string[] {
  const out: string[] = [];
  const err = (what: string) => {
    out.push(`E:ERR Protocol error: ${what}`);
    return out;
  };
  const lineAt = (pos: number): [number, number, number] | null => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl === -1) return null;
    const end = nl > pos && buf[nl - 1] === 0x0d ? nl - 1 : nl;
    return [pos, end, nl + 1];
  };
  const integer = (s: string) => (/^-?[0-9]+$/.test(s) && s.length <= 18 ? Number(s) : Number.NaN);
  let pos = 0;
  while (pos < buf.length) {
    const line = lineAt(pos);
    if (line === null) return out;
    const [start, end, next] = line;
    if (buf[start] !== 0x2a) {
      const words = sdssplitargs(buf.subarray(start, end));
      if (words === null) return err('unbalanced quotes in request');
      if (words.length > limits.maxArgs) return err('invalid multibulk length');
      if (words.length > 0) out.push(words.join('\u0001'));
      pos = next;
      continue;
    }
    const count = integer(buf.toString('latin1', start + 1, end));
    if (Number.isNaN(count) || count > limits.maxArgs || count < -1)
      return err('invalid multibulk length');
    pos = next;
    if (count <= 0) continue;
    const args: string[] = [];
    let total = 0;
    for (let a = 0; a < count; a++) {
      const h = lineAt(pos);
      if (h === null) return out;
      if (buf[h[0]] !== 0x24) return err(`expected '$', got '${show(buf[h[0]])}'`);
      const len = integer(buf.toString('latin1', h[0] + 1, h[1]));
      if (Number.isNaN(len) || len < 0 || len > limits.maxBulk) return err('invalid bulk length');
      total += len;
      if (total > limits.maxRequest) return err('request larger than MAX_REQUEST_BYTES');
      const body = h[2];
      if (buf.length < body + len + 2) return out;
      if (buf[body + len] !== 0x0d || buf[body + len + 1] !== 0x0a) {
        const bad = buf[body + len] !== 0x0d ? buf[body + len] : buf[body + len + 1];
        return err(`expected CRLF after bulk string, got '${show(bad)}'`);
      }
      args.push(buf.toString('latin1', body, body + len));
      pos = body + len + 2;
    }
    out.push(args.join('\u0001'));
  }
  return out;
}

function decode(buf: Buffer): string[] {
  const d = new RespDecoder(limits);
  const out: string[] = [];
  const cuts = rand(4);
  let prev = 0;
  for (let c = 0; c <= cuts; c++) {
    const to = c === cuts ? buf.length : prev + rand(buf.length - prev + 1);
    d.push(buf.subarray(prev, to));
    prev = to;
    for (let r = d.next(); r !== null; r = d.next()) {
      if (r instanceof ReplyError) out.push(`E:${r.resp}`);
      else out.push(r.map((a) => a.toString('latin1')).join('\u0001'));
    }
  }
  return out;
}

test('RESP decoder against the reference model, 10 million inputs cut at random', () => {
  const started = Date.now();
  let requests = 0;
  let errors = 0;
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
    requests += expected.length;
    if (expected.length > 0 && expected[expected.length - 1].startsWith('E:')) errors++;
    if ((i & 0xffff) === 0 && Date.now() - started > BUDGET_MS)
      assert.fail(`only ${i} inputs in ${BUDGET_MS} ms`);
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(
    `STRESS resp-codec-fuzz: inputs=${INPUTS} seed=${SEED} bytes=${bytes} requests=${requests - errors} protocol_errors=${errors} mismatches=0 seconds=${seconds.toFixed(1)}`,
  );
});
