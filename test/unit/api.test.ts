// docs/API.md and src/index.ts in step, and the documented command examples (docs/API.md's
// module, README's GREET) loaded as COMMANDS_MODULE against the current API.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createRegistry } from '../../src/commands/load.ts';
import type { CommandContext } from '../../src/commands/context.ts';
import * as api from '../../src/index.ts';

const root = new URL('../../', import.meta.url);
const apiDoc = readFileSync(new URL('docs/API.md', root), 'utf8');
const readme = readFileSync(new URL('README.md', root), 'utf8');
const indexSource = readFileSync(new URL('src/index.ts', root), 'utf8');

/**
 * The names in the first column of docs/API.md's tables: "(types)" after a cell's names makes them
 * all types, "(type)" only the name just before it.
 */
function documented(): { values: Set<string>; types: Set<string> } {
  const values = new Set<string>();
  const types = new Set<string>();
  for (const [, cell] of apiDoc.matchAll(/^\| (`[^|]+?) +\|/gm)) {
    const names = [...cell.matchAll(/`(\w+)`/g)].map((m) => m[1]);
    const last = names.length - 1;
    for (const [i, name] of names.entries()) {
      const isType = cell.endsWith('(types)') || (i === last && cell.endsWith('(type)'));
      (isType ? types : values).add(name);
    }
  }
  return { values, types };
}

test('docs/API.md lists exactly what src/index.ts exports', () => {
  const { values, types } = documented();
  assert.deepEqual([...values].sort(), Object.keys(api).sort(), 'runtime exports');
  const typeExports = [...indexSource.matchAll(/\btype (\w+)/g)]
    .map((m) => m[1])
    .concat(
      [...indexSource.matchAll(/export type \{([^}]+)\}/g)].flatMap((m) =>
        m[1].split(',').map((s) => s.trim()),
      ),
    )
    .filter((n) => n !== '');
  assert.deepEqual([...types].sort(), [...new Set(typeExports)].sort(), 'type exports');
});

/** Runs a command module's file through COMMANDS_MODULE loading, with `tcpool` mapped to src/. */
async function load(source: string, ext: string) {
  const dir = mkdtempSync(join(tmpdir(), 'tcpool-api-'));
  const file = join(dir, `commands.${ext}`);
  const index = pathToFileURL(new URL('src/index.ts', root).pathname).href;
  writeFileSync(file, source.replaceAll("from 'tcpool'", `from '${index}'`));
  return createRegistry(file);
}

const ctx = {
  clientId: 7,
  peer: '127.0.0.1:5000',
  protocol: 'resp',
  workerId: 0,
} as unknown as CommandContext;
const call = (registry: api.Registry, name: string, ...args: string[]) =>
  registry.lookup(name)!.run(
    ctx,
    args.map((a) => Buffer.from(a)),
  ) as api.Reply;

test("docs/API.md's command module loads and runs", async () => {
  const source = apiDoc.match(/```ts\n([\s\S]*?)```/)![1];
  const registry = await load(source, 'ts');
  assert.equal(call(registry, 'GREET', 'Ada Lovelace'), 'Hello, Ada Lovelace');
  assert.equal(call(registry, 'ADD', '2', '40'), 42);
  assert.equal(
    api.encodeLineReply(call(registry, 'ADD', '2', 'x')),
    'ERROR: ADD takes two integers\n',
  );
  assert.equal(
    api.encodeResp(call(registry, 'ADD', '2', 'x'), 2),
    '-ERR value is not an integer or out of range\r\n',
  );
  assert.equal(
    api.encodeResp(call(registry, 'WHOAMI'), 3),
    '%4\r\n$2\r\nid\r\n:7\r\n$4\r\npeer\r\n$14\r\n127.0.0.1:5000\r\n$8\r\nprotocol\r\n$4\r\nresp\r\n$6\r\nworker\r\n:0\r\n',
  );
});

test("README's GREET example loads and runs", async () => {
  const source = readme.match(
    /`COMMANDS_MODULE` names a module such as:\n\n```js\n([\s\S]*?)```/,
  )![1];
  const registry = await load(source, 'js');
  assert.equal(call(registry, 'GREET', 'you there'), 'Hello, you there');
});
