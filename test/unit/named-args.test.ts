// The HTTP API's named arguments, socket-free: an object of declared arguments becomes the words a
// request in order would send (so the one parser checks the values), and what only an object can
// get wrong is refused naming the argument. Over HTTP: test/integration/http-declared.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defineCommand } from '../../src/commands/registry.ts';
import { codes, ReplyError } from '../../src/errors.ts';
import { namedArgs } from '../../src/transport/http/named-args.ts';

const note = defineCommand({
  name: 'NOTE',
  summary: 'Files a note.',
  args: [
    { name: 'title', type: 'string' },
    { name: 'body', type: 'bytes', optional: true },
    { name: 'mood', type: 'string', optional: true },
    {
      name: 'opts',
      type: 'options',
      options: { pin: { type: 'enum', values: ['yes', 'no'] }, ttl: { type: 'integer' } },
    },
  ],
  run: () => 'OK',
});
const words = defineCommand({
  name: 'WORDS',
  summary: 'Counts words.',
  args: [
    { name: 'first', type: 'integer' },
    { name: 'list', type: 'string', variadic: true, optional: true },
  ],
  run: () => 0,
});
const say = defineCommand({
  name: 'SAY',
  summary: 'Says it.',
  args: [{ name: 'text', type: 'string', rest: true }],
  run: () => 'OK',
});

/** The words, as text, or the error's code and message. */
function mapped(spec: Parameters<typeof namedArgs>[0], named: Record<string, unknown>) {
  const r = namedArgs(spec, named);
  return r instanceof ReplyError ? `${r.code}: ${r.message}` : r.map((w) => w.toString());
}

describe('named arguments', () => {
  test('become the words in declared order, whatever the order of the keys', () => {
    assert.deepEqual(mapped(note, { opts: { ttl: 60, pin: 'yes' }, title: 't' }), [
      't',
      'ttl=60',
      'pin=yes',
    ]);
    assert.deepEqual(mapped(note, { body: { base64: '/w==' }, title: 't', mood: 'ok' }), [
      't',
      '\ufffd',
      'ok',
    ]);
    assert.deepEqual(namedArgs(note, { title: 't', body: { base64: '/w==' } }), [
      Buffer.from('t'),
      Buffer.from([0xff]),
    ]);
    assert.deepEqual(mapped(words, { list: ['a', 'b'], first: -1 }), ['-1', 'a', 'b']);
    assert.deepEqual(mapped(words, { first: 2, list: [] }), ['2']);
    assert.deepEqual(mapped(say, { text: 'two words' }), ['two words']);
    assert.match(String(mapped(say, {})), /^ERR_WRONG_ARITY: .*missing 'text'/);
  });

  test('what only an object can get wrong is refused, naming the argument', () => {
    const usage = note.usage;
    const cases: [Record<string, unknown>, string][] = [
      [{ mood: 'ok' }, `${codes.ERR_WRONG_ARITY}: Wrong arguments for 'NOTE': missing 'title'`],
      [{ title: 't', mood: 'ok' }, "'mood' is given without 'body' before it"],
      [{ title: 't', body: 'pin=yes' }, "'body' would read as an option"],
      [{ title: 't', body: 'b', mood: 'PIN=no' }, "'mood' would read as an option"],
      [{ title: 't', opts: [] }, "'opts' must be an object of options"],
      [{ title: 't', opts: { ttl: '60' } }, "option 'ttl' must be a JSON integer"],
      [{ title: 't', body: { base64: 'AA', x: 1 } }, `'body' must be a JSON string or {"base64"`],
      [{ title: 't', body: 1 }, `'body' must be a JSON string or {"base64"`],
      [{ title: 't', ['x'.repeat(100)]: 1 }, `no argument '${'x'.repeat(64)}' (it takes`],
    ];
    for (const [named, why] of cases) {
      const got = mapped(note, named);
      assert.ok(typeof got === 'string' && got.includes(why), `${JSON.stringify(named)}: ${got}`);
      assert.ok(got.endsWith(`(usage: ${usage})`), got);
    }
    assert.match(
      String(mapped(words, { first: 1, list: [1] })),
      /^ERR_BAD_ARGUMENT: .*each of 'list' must be a JSON string/,
    );
    assert.match(String(mapped(words, { first: 1, list: 'a' })), /'list' must be an array/);
    assert.match(String(mapped(words, { first: 2 ** 53 })), /'first' must be a JSON integer/);
    assert.match(String(mapped(say, { text: ['a'] })), /'text' must be a JSON string/);
  });

  test('a command without declarations takes its arguments in order only', () => {
    const raw = defineCommand({ name: 'RAW', usage: 'RAW <x>', minArgs: 1, run: () => 'OK' });
    assert.match(
      String(mapped(raw, { x: '1' })),
      /declares no argument names, so "args" must be an array/,
    );
  });
});
