// The one place where the command line turns failures into exit statuses (src/cli/main.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { codes, ConfigError, connectFailed, TcpoolError } from '../../src/errors.ts';

/** Runs `main` with one fake subcommand, capturing what it writes to stderr. */
async function run(fail: () => never): Promise<{ status: number; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string, done?: () => void) => {
    stderr += chunk;
    done?.();
    return true;
  }) as typeof process.stderr.write;
  try {
    const status = await main(['fake'], { fake: async () => fail() });
    return { status, stderr };
  } finally {
    process.stderr.write = write;
  }
}

test('a usage or configuration error is one line and exit 2', async () => {
  assert.deepEqual(
    await run(() => {
      throw new ConfigError(codes.ERR_CONFIG_OPTION, 'Unknown option --x');
    }),
    { status: 2, stderr: 'tcpool: Unknown option --x\n' },
  );
  assert.equal(
    (
      await run(() => {
        throw new TcpoolError(codes.ERR_COMMANDS_MODULE, 'COMMANDS_MODULE x: cannot load it');
      })
    ).status,
    2,
  );
});

test('a runtime failure is one line and exit 1', async () => {
  assert.deepEqual(
    await run(() => {
      throw connectFailed('127.0.0.1:1', 'connection refused');
    }),
    { status: 1, stderr: 'tcpool: Could not connect to 127.0.0.1:1: connection refused\n' },
  );
});

test('a bug (any other error) is not caught: it surfaces with its stack trace', async () => {
  await assert.rejects(
    run(() => {
      throw new TypeError("Cannot read properties of undefined (reading 'x')");
    }),
    TypeError,
  );
});
