// The HTTP API and declared arguments (spec.args): GET /v1/commands lists the declarations, the
// OpenAPI document types each argument (ranges, enums, lengths, options) and stays valid, JSON
// arguments are checked with the very wrong-argument errors the line protocol gives (HTTP 400),
// and a CommandError's status is the HTTP status.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { TestClient } from '../helpers/client.ts';
import { freePort, type ServerProcess, startServer } from '../helpers/server.ts';

const MODULE = new URL('../fixtures/declared-commands.ts', import.meta.url).pathname;

let server: ServerProcess;
let base = '';
let line: TestClient;
before(async () => {
  const httpPort = await freePort();
  server = await startServer({
    env: { HTTP_PORT: String(httpPort), COMMANDS_MODULE: MODULE, THREAD_POOL_SIZE: '1' },
  });
  base = `http://127.0.0.1:${httpPort}`;
  line = await TestClient.connect(server.port);
});
after(async () => {
  line.close();
  await server.kill();
});

async function post(path: string, body: unknown) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
const call = (name: string, args: unknown[] | Record<string, unknown>) =>
  post(`/v1/commands/${name}`, { args });

const USAGE = 'BOOK <room> <seats> [<price>] [class=economy|first] [note=<string>]';

describe('HTTP API with declared arguments', () => {
  test('GET /v1/commands lists the declarations; raw commands have args null', async () => {
    const { commands } = (await (await fetch(`${base}/v1/commands`)).json()) as {
      commands: { name: string; usage: string; args: unknown }[];
    };
    const book = commands.find((c) => c.name === 'BOOK')!;
    assert.equal(book.usage, USAGE);
    assert.deepEqual(book.args, [
      { name: 'room', type: 'string', maxLength: 16, summary: 'The room name.' },
      { name: 'seats', type: 'integer', min: 1, max: 8 },
      { name: 'price', type: 'number', min: 0, optional: true },
      {
        name: 'opts',
        type: 'options',
        options: {
          class: { type: 'enum', values: ['economy', 'first'] },
          note: { type: 'string' },
        },
      },
    ]);
    assert.equal(commands.find((c) => c.name === 'ECHO')!.args, null);
  });

  test('the OpenAPI document types each argument and is valid OpenAPI 3.1', async () => {
    const doc = (await (await fetch(`${base}/v1/openapi.json`)).json()) as {
      paths: Record<string, { post: { requestBody: { content: Record<string, unknown> } } }>;
    };
    const argsOf = (name: string) =>
      (
        doc.paths[`/v1/commands/${name}`].post.requestBody.content['application/json'] as {
          schema: { properties: { args: Record<string, unknown> } };
        }
      ).schema.properties.args;
    // Declared arguments: in order (an array) or by name (an object).
    const inOrder = (name: string) => (argsOf(name).oneOf as unknown[])[0];
    const byName = (name: string) => (argsOf(name).oneOf as unknown[])[1];
    assert.equal((argsOf('BOOK').oneOf as unknown[]).length, 2);
    assert.deepEqual(inOrder('BOOK'), {
      type: 'array',
      minItems: 2,
      prefixItems: [
        { type: 'string', maxLength: 16, description: 'The room name.' },
        { type: 'integer', minimum: 1, maximum: 8 },
        { type: 'number', minimum: 0 },
      ],
      items: {
        type: 'string',
        pattern: '^(class|note)=',
        description: 'Options, each at most once: class=<economy|first>, note=<string>',
      },
    });
    assert.deepEqual(byName('BOOK'), {
      type: 'object',
      properties: {
        room: { type: 'string', maxLength: 16, description: 'The room name.' },
        seats: { type: 'integer', minimum: 1, maximum: 8 },
        price: { type: 'number', minimum: 0 },
        opts: {
          type: 'object',
          properties: {
            class: { type: 'string', enum: ['economy', 'first'] },
            note: { type: 'string' },
          },
          additionalProperties: false,
        },
      },
      required: ['room', 'seats'],
      additionalProperties: false,
    });
    assert.deepEqual(byName('TAG'), {
      type: 'object',
      properties: {
        level: { type: 'string', enum: ['low', 'high'] },
        blob: { $ref: '#/components/schemas/Argument', description: 'At most 4 bytes.' },
        tags: { type: 'array', items: { type: 'string' }, minItems: 0 },
      },
      required: ['level', 'blob'],
      additionalProperties: false,
    });
    assert.deepEqual(inOrder('TAG'), {
      type: 'array',
      minItems: 2,
      prefixItems: [
        { type: 'string', enum: ['low', 'high'] },
        { $ref: '#/components/schemas/Argument', description: 'At most 4 bytes.' },
      ],
      items: { type: 'string' },
    });
    // A raw command keeps the counts only.
    assert.deepEqual(argsOf('ECHO'), {
      type: 'array',
      items: { $ref: '#/components/schemas/Argument' },
      minItems: 1,
      maxItems: 1,
    });
    const validator = new Validator();
    const result = await validator.validate(doc);
    assert.equal(result.valid, true, JSON.stringify(result.errors));
  });

  test("JSON arguments get the line protocol's wrong-argument errors, as 400", async () => {
    const cases: [string, unknown[], string][] = [
      ['BOOK', ['a', 9], 'BOOK a 9'],
      ['BOOK', ['a', 'two'], 'BOOK a two'],
      ['BOOK', ['a', 2, -1], 'BOOK a 2 -1'],
      ['BOOK', ['a', 2, 'class=business'], 'BOOK a 2 class=business'],
      ['BOOK', ['a', 2, 'colour=red'], 'BOOK a 2 colour=red'],
      ['BOOK', ['a-room-name-too-long', 2], 'BOOK a-room-name-too-long 2'],
      ['BOOK', ['a'], 'BOOK a'],
      ['TAG', ['mid', 'x'], 'TAG mid x'],
      ['TAG', ['low', 'toolong'], 'TAG low toolong'],
    ];
    for (const [name, args, request] of cases) {
      const { status, json } = await call(name, args);
      const error = json.error as { code: string; message: string };
      const lineError = await line.request(request);
      assert.equal(status, 400, request);
      assert.match(error.code, /^ERR_(BAD_ARGUMENT|WRONG_ARITY)$/, request);
      assert.equal(`ERROR: ${error.message}`, lineError, request);
    }
    const lineOne = await line.request('BOOK a 9');
    assert.equal(
      lineOne,
      `ERROR: Invalid 'seats' for 'BOOK': must be an integer from 1 to 8 (usage: ${USAGE})`,
    );
  });

  test('valid JSON arguments run: numbers for integers, base64 for bytes, options, lists', async () => {
    assert.deepEqual(await call('BOOK', ['a', 2, 9.5, 'class=first', 'note=hi']), {
      status: 200,
      json: { result: ['a', 2, '9.5', 'first', 'hi'] },
    });
    assert.deepEqual(await call('BOOK', ['a', '3']), {
      status: 200,
      json: { result: ['a', 3, '0', 'economy', ''] },
    });
    assert.deepEqual(await call('TAG', ['HIGH', { base64: 'AAEC' }, 'x', 'y']), {
      status: 200,
      json: { result: ['high', 3, 2] },
    });
  });

  test('named arguments: {"args": {...}} by declared name, options as an object, lists as arrays', async () => {
    const named: [string, Record<string, unknown>, unknown][] = [
      [
        'BOOK',
        { seats: 2, opts: { note: 'hi', class: 'first' }, price: 9.5, room: 'a' },
        ['a', 2, '9.5', 'first', 'hi'],
      ],
      ['BOOK', { room: 'a', seats: 3 }, ['a', 3, '0', 'economy', '']],
      // An optional argument left out before options: they are key=value words, not positions.
      ['BOOK', { room: 'a', seats: 1, opts: { note: 'x y' } }, ['a', 1, '0', 'economy', 'x y']],
      ['TAG', { level: 'HIGH', blob: { base64: 'AAEC' }, tags: ['x', 'y'] }, ['high', 3, 2]],
      ['TAG', { level: 'low', blob: 'ab' }, ['low', 2, 0]],
      ['TAG', { level: 'low', blob: 'ab', tags: [] }, ['low', 2, 0]],
    ];
    for (const [name, args, result] of named)
      assert.deepEqual(
        await call(name, args),
        { status: 200, json: { result } },
        JSON.stringify(args),
      );
  });

  test('named arguments that do not fit the declarations: 400 naming the argument', async () => {
    const wrong = (what: string) => `Wrong arguments for 'BOOK': ${what} (usage: ${USAGE})`;
    const cases: [string, Record<string, unknown>, string][] = [
      [
        'BOOK',
        { room: 'a', seats: 2, colour: 'red' },
        wrong("no argument 'colour' (it takes 'room', 'seats', 'price', 'opts')"),
      ],
      ['BOOK', { room: 'a', seats: '2' }, wrong("'seats' must be a JSON integer")],
      ['BOOK', { room: 'a', seats: 2.5 }, wrong("'seats' must be a JSON integer")],
      ['BOOK', { room: 7, seats: 2 }, wrong("'room' must be a JSON string")],
      ['BOOK', { room: 'a', seats: 2, price: 'free' }, wrong("'price' must be a JSON number")],
      [
        'BOOK',
        { room: 'a', seats: 2, opts: 'class=first' },
        wrong("'opts' must be an object of options"),
      ],
      [
        'BOOK',
        { room: 'a', seats: 2, opts: { colour: 'red' } },
        wrong("no option 'colour' in 'opts' (it has 'class', 'note')"),
      ],
      [
        'BOOK',
        { room: 'a', seats: 2, opts: { class: 1 } },
        wrong('option \'class\' must be one of "economy", "first"'),
      ],
      [
        'TAG',
        { level: 'low', blob: 'ab', tags: 'x' },
        "Wrong arguments for 'TAG': 'tags' must be an array (usage: TAG low|high <blob> [<tags> ...])",
      ],
      [
        'TAG',
        { level: 'low', blob: { base64: 1 } },
        `Wrong arguments for 'TAG': 'blob' must be a JSON string or {"base64": "..."} (usage: TAG low|high <blob> [<tags> ...])`,
      ],
      [
        'ECHO',
        { message: 'hi' },
        `Wrong arguments for 'ECHO': it declares no argument names, so "args" must be an array (usage: ECHO <message>)`,
      ],
    ];
    for (const [name, args, message] of cases) {
      const { status, json } = await call(name, args);
      assert.deepEqual(
        { status, json },
        { status: 400, json: { error: { code: 'ERR_BAD_ARGUMENT', message } } },
        JSON.stringify(args),
      );
    }
    // A missing argument is a wrong number of them, as it is in order.
    assert.deepEqual(await call('BOOK', { room: 'a' }), {
      status: 400,
      json: { error: { code: 'ERR_WRONG_ARITY', message: wrong("missing 'seats'") } },
    });
    // Values are then checked by the declarations, with the line protocol's very errors.
    for (const [args, request] of [
      [{ room: 'a', seats: 9 }, 'BOOK a 9'],
      [{ room: 'a', seats: 2, opts: { class: 'business' } }, 'BOOK a 2 class=business'],
      [{ room: 'a-room-name-too-long', seats: 2 }, 'BOOK a-room-name-too-long 2'],
    ] as const) {
      const { status, json } = await call('BOOK', args);
      assert.equal(status, 400, request);
      assert.equal(
        `ERROR: ${(json.error as { message: string }).message}`,
        await line.request(request),
      );
    }
    // The body's shape: named arguments go under "args" (a top-level name is refused, not dropped).
    for (const body of [
      { room: 'a', seats: 2 },
      { args: 'a' },
      { args: { room: 'a', seats: 2 }, x: 1 },
    ]) {
      const { status, json } = await post('/v1/commands/BOOK', body);
      assert.equal(status, 400, JSON.stringify(body));
      assert.equal((json.error as { code: string }).code, 'ERR_HTTP_REQUEST');
    }
    assert.equal((await call('NOSUCH', { a: 1 })).status, 404);
  });

  test('pipeline commands may name their arguments: {"command": "NAME", "args": {...}}', async () => {
    const { status, json } = await post('/v1/pipeline', [
      { command: 'BOOK', args: { room: 'a', seats: 1 } },
      ['BOOK', 'b', 2],
      { command: 'BOOK', args: { room: 'c' } },
      { command: 'TAG', args: ['low', 'x'] },
      { command: 'PING' },
    ]);
    assert.equal(status, 200);
    assert.deepEqual(json, {
      results: [
        { result: ['a', 1, '0', 'economy', ''] },
        { result: ['b', 2, '0', 'economy', ''] },
        {
          error: {
            code: 'ERR_WRONG_ARITY',
            message: `Wrong arguments for 'BOOK': missing 'seats' (usage: ${USAGE})`,
          },
        },
        { result: ['low', 1, 0] },
        { result: 'PONG' },
      ],
    });
    // Named arguments that do not fit are refused before MULTI queues the command, as a wrong
    // number of arguments is, so the transaction is discarded; a value out of its range is
    // checked when the command runs, inside EXEC, in either form.
    const transaction = async (command: unknown) =>
      (await post('/v1/pipeline', [['MULTI'], command, ['EXEC']])).json.results as unknown[];
    const discarded = {
      error: {
        code: 'ERR_TRANSACTION',
        message: 'Transaction discarded because of previous errors',
      },
    };
    for (const command of [
      { command: 'BOOK', args: { room: 'a', seats: 'one' } },
      { command: 'BOOK', args: { room: 'a' } },
      ['BOOK', 'a'],
    ]) {
      const results = await transaction(command);
      assert.match(
        (results[1] as { error: { code: string } }).error.code,
        /^ERR_(BAD_ARGUMENT|WRONG_ARITY)$/,
      );
      assert.deepEqual(results[2], discarded, JSON.stringify(command));
    }
    const inExec = await transaction({ command: 'BOOK', args: { room: 'a', seats: 9 } });
    assert.deepEqual(inExec[2], (await transaction(['BOOK', 'a', 9]))[2]);
    assert.match(JSON.stringify(inExec[2]), /^\{"result":\[\{"error":\{"code":"ERR_BAD_ARGUMENT"/);
    // A malformed command is the whole request's fault: 400, nothing runs.
    for (const body of [
      [{ command: 'BOOK', args: 5 }],
      [{ cmd: 'PING' }],
      [{ command: 'PING', extra: 1 }],
      [[1, 'x']],
    ]) {
      const r = await post('/v1/pipeline', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match((r.json.error as { message: string }).message, /^command 0: /);
    }
  });

  test("a CommandError's status is the HTTP status, its code word the error's code", async () => {
    assert.deepEqual(await call('BOOK', ['full', 1]), {
      status: 409,
      json: { error: { code: 'FULL', message: 'room full is full' } },
    });
    assert.deepEqual(await call('BOOK', ['gone', 1]), {
      status: 404,
      json: { error: { code: 'NOROOM', message: 'no room gone' } },
    });
    assert.equal(await line.request('BOOK full 1'), 'ERROR: room full is full');
    const res = await fetch(`${base}/v1/pipeline`, {
      method: 'POST',
      body: JSON.stringify([
        ['BOOK', 'full', 1],
        ['BOOK', 'a', 1],
      ]),
    });
    assert.deepEqual(await res.json(), {
      results: [
        { error: { code: 'FULL', message: 'room full is full' } },
        { result: ['a', 1, '0', 'economy', ''] },
      ],
    });
  });

  test("COMMAND DOCS describes declared arguments in Redis's shape (here through HTTP)", async () => {
    const { status, json } = await call('COMMAND', ['DOCS', 'TAG', 'BOOK']);
    assert.equal(status, 200);
    const docs = (json.result as { map: Record<string, { map: Record<string, unknown> }> }).map;
    const args = (name: string) =>
      (docs[name].map.arguments as { map: Record<string, unknown> }[]).map((a) => a.map);
    assert.deepEqual(args('tag'), [
      {
        name: 'level',
        type: 'oneof',
        arguments: [
          { map: { name: 'low', type: 'pure-token', token: 'low' } },
          { map: { name: 'high', type: 'pure-token', token: 'high' } },
        ],
      },
      { name: 'blob', type: 'string' },
      { name: 'tags', type: 'string', flags: ['optional', 'multiple'] },
    ]);
    assert.deepEqual(args('book'), [
      { name: 'room', type: 'string' },
      { name: 'seats', type: 'integer' },
      { name: 'price', type: 'double', flags: ['optional'] },
      { name: 'class', type: 'string', display_text: 'class=<enum>', flags: ['optional'] },
      { name: 'note', type: 'string', display_text: 'note=<string>', flags: ['optional'] },
    ]);
  });
});
