// Line clients (the real `nc`) and Redis clients (ioredis) in the same room, on a server with
// several workers: each hears the others, in order.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { startTestServer, type TestServer } from 'tcpool/testing';

const found = spawnSync('sh', ['-c', 'command -v nc']).status === 0;
if (!found && process.env.CI)
  throw new Error('nc is not installed (apt-get install netcat-openbsd)');
const skip = found ? false : 'nc not installed (apt-get install netcat-openbsd)';

let server: TestServer<unknown>;
before(async () => {
  server = await startTestServer({
    commands: new URL('../src/commands.ts', import.meta.url),
    threads: 2,
  });
});
after(() => server.stop());

/** `nc` connected to the server: what it prints, line by line. */
function nc(): {
  proc: ChildProcessWithoutNullStreams;
  lines: string[];
  next(n: number): Promise<string[]>;
} {
  const proc = spawn('nc', ['127.0.0.1', String(server.port)]);
  const lines: string[] = [];
  let buf = '';
  let wake = () => {};
  proc.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
    wake();
  });
  let read = 0;
  const next = async (n: number) => {
    const deadline = Date.now() + 5000;
    while (lines.length < read + n) {
      if (Date.now() > deadline) throw new Error(`nc printed ${JSON.stringify(lines)}`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
    read += n;
    return lines.slice(read - n, read);
  };
  return { proc, lines, next };
}

async function heardBy(channel: string, n: number): Promise<void> {
  const probe = new Redis({ port: server.port, host: '127.0.0.1' });
  for (let i = 0; i < 200; i++) {
    const [, count] = (await probe.pubsub('NUMSUB', channel)) as [string, number];
    if (count === n) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  probe.disconnect();
}

test('nc and Redis clients talk in one room', { skip }, async (t) => {
  const ann = nc();
  t.after(() => ann.proc.kill());
  ann.proc.stdin.write('NICK ann\nSUBSCRIBE room.lobby\n');
  assert.deepEqual(await ann.next(2), ['OK', 'SUBSCRIBE room.lobby 1']);

  const bobListens = new Redis({ port: server.port, host: '127.0.0.1' });
  const heard: string[] = [];
  bobListens.on('message', (_ch: string, m: string) => heard.push(m));
  await bobListens.subscribe('room.lobby');
  const bob = new Redis({ port: server.port, host: '127.0.0.1' });
  t.after(() => {
    bobListens.disconnect();
    bob.disconnect();
  });
  await heardBy('room.lobby', 2);

  await assert.rejects(bob.call('SAY', 'lobby', 'hi'), /^ReplyError: NONICK choose a nick first/);
  assert.equal(await bob.call('NICK', 'bob'), 'OK');
  assert.equal(await bob.call('SAY', 'lobby', 'hello', 'ann'), 2);
  assert.deepEqual(await ann.next(1), ['MESSAGE room.lobby bob: hello ann']);
  ann.proc.stdin.write('SAY lobby hi bob, from nc\n');
  // Ann is in the room too: her own message comes before SAY's reply (2 heard it).
  assert.deepEqual(await ann.next(2), ['MESSAGE room.lobby ann: hi bob, from nc', '2']);
  for (let i = 0; i < 100 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(heard, ['bob: hello ann', 'ann: hi bob, from nc']);

  ann.proc.stdin.write('SAY lobby\n');
  assert.deepEqual(await ann.next(1), [
    "ERROR: Wrong number of arguments for 'SAY' (usage: SAY <room> <text> ...)",
  ]);
});
