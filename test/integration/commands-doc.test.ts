// docs/COMMANDS.md, run: every `// file:` block is written out (with `tcpool` imports pointing at
// this checkout), every `# session:` block is played against a real server loading its module,
// and every `.test.ts` file block is run with node --test.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { encodeRespRequest } from '../../src/protocol/resp.ts';
import { startTestServer } from '../../src/testing/index.ts';
import { TestClient } from '../helpers/client.ts';

const root = new URL('../../', import.meta.url);
const doc = readFileSync(new URL('docs/COMMANDS.md', root), 'utf8');
const src = (path: string) => pathToFileURL(new URL(path, root).pathname).href;
const dir = mkdtempSync(join(tmpdir(), 'tcpool-doc-'));
writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
after(() => rmSync(dir, { recursive: true, force: true }));

const files = new Map<string, string>();
for (const m of doc.matchAll(/```ts\n(\/\/ file: (\S+)\n[\s\S]*?)```/g)) {
  const source = m[1]
    .replaceAll("from 'tcpool/testing'", `from '${src('src/testing/index.ts')}'`)
    .replaceAll("from 'tcpool/client'", `from '${src('src/client/index.ts')}'`)
    .replaceAll("from 'tcpool'", `from '${src('src/index.ts')}'`);
  files.set(m[2], source);
  writeFileSync(join(dir, m[2]), source);
}
const sessions = [...doc.matchAll(/```text\n# session: (\S+)\n([\s\S]*?)```/g)].map((m) => ({
  module: m[1],
  lines: m[2].trimEnd().split('\n'),
}));

test('the guide has the examples this test expects', () => {
  assert.deepEqual(
    [...files.keys()],
    [
      'hello.ts',
      'dice.ts',
      'users.ts',
      'slow.ts',
      'store.ts',
      'binary.ts',
      'hello.test.ts',
      'fast.ts',
    ],
  );
  assert.deepEqual(
    sessions.map((s) => s.module),
    ['hello.ts', 'dice.ts', 'users.ts', 'slow.ts', 'store.ts', 'binary.ts', 'fast.ts'],
  );
});

describe('sessions', () => {
  for (const session of sessions) {
    test(session.module, async () => {
      const server = await startTestServer({ commands: join(dir, session.module), threads: 1 });
      after(() => server.stop());
      const line = await TestClient.connect(server.port);
      const resp = await TestClient.connect(server.port);
      try {
        for (let i = 0; i < session.lines.length; i += 2) {
          const [request, expected] = [session.lines[i], session.lines[i + 1]];
          let got: string;
          if (request.startsWith('resp> ')) {
            resp.write(encodeRespRequest(request.slice(6).split(' ')));
            got = (await resp.readLine()).replace(/\r$/, '');
          } else {
            assert.ok(request.startsWith('> '), `a request line: ${request}`);
            got = await line.request(request.slice(2));
          }
          assert.equal(got, expected, request);
        }
      } finally {
        line.close();
        resp.close();
      }
    });
  }
});

test('the testing example runs and passes', () => {
  // Outside this test run's own reporting (NODE_TEST_CONTEXT), as a user runs it.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const out = execFileSync(process.execPath, ['--test', '--test-reporter=tap', 'hello.test.ts'], {
    cwd: dir,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.match(out, /# pass 1\n/);
  assert.match(out, /# fail 0\n/);
});

test("the store example's setup logged in its worker; the module line names the commands", async () => {
  const server = await startTestServer({ commands: join(dir, 'store.ts'), threads: 2 });
  try {
    await server.waitForLog(/store ready in worker 0/);
    await server.waitForLog(/store ready in worker 1/);
    await server.waitForLog(/Commands module \S+store\.ts loaded: GETKEY, WHICH/);
  } finally {
    await server.stop();
  }
});
