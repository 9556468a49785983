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

async function call(name: string, args: unknown[]) {
  const res = await fetch(`${base}/v1/commands/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ args }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

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
    assert.deepEqual(argsOf('BOOK'), {
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
    assert.deepEqual(argsOf('TAG'), {
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
