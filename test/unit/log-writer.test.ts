// src/log/writer.ts's synchronous writes (LOG_FILE, and stdout when it is a regular file): every
// byte arrives, in order, through the reused buffer, whatever the size of a batch and wherever a
// multi-byte character or a surrogate pair falls against its chunks; and a write never ends
// inside a line, so another process appending to the same file cannot tear one.
import assert from 'node:assert/strict';
import fs, { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { LogWriter } from '../../src/log/writer.ts';

/** A stand-in for process.stdout: a descriptor, and what went through write() instead. */
function fakeStream(fd: number | undefined): NodeJS.WriteStream & { written: string[] } {
  const written: string[] = [];
  return {
    fd,
    written,
    writableLength: 0,
    on() {
      return this;
    },
    write(chunk: string | Uint8Array) {
      written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      return true;
    },
  } as unknown as NodeJS.WriteStream & { written: string[] };
}

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'tcpool-writer-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Texts of every size around the 32 Ki-unit chunk: a few ASCII characters (so surrogate pairs
 * fall on either side of a chunk's end), characters of 1 to 4 bytes, and any tail.
 */
const texts = fc
  .tuple(
    fc.nat(3),
    fc.integer({ min: 0, max: 70_000 }),
    fc.constantFrom('a', 'é', '€', '😀', '\n'),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
  )
  .map(
    ([k, n, filler, tail]) => 'a'.repeat(k) + filler.repeat(Math.ceil(n / filler.length)) + tail,
  );

test('LOG_FILE gets every byte of each write, at any size and character boundary', () => {
  withDir((dir) => {
    fc.assert(
      fc.property(fc.array(texts, { minLength: 1, maxLength: 3 }), (batches) => {
        const file = join(dir, 'log');
        rmSync(file, { force: true });
        const stdout = fakeStream(undefined);
        const writer = new LogWriter({
          file,
          format: 'text',
          bufferBytes: 1 << 30,
          stdout,
          stderr: fakeStream(undefined),
          count: () => {},
        });
        for (const text of batches) writer.write(text);
        writer.closeFile();
        assert.equal(readFileSync(file, 'utf8'), batches.join(''));
        // stdout without a descriptor is written as a stream, as before.
        assert.equal(stdout.written.join(''), batches.join(''));
      }),
      { numRuns: 60 },
    );
  });
});

test('stdout that is a regular file is written directly, whole and in order', () => {
  withDir((dir) => {
    const path = join(dir, 'stdout');
    const fd = openSync(path, 'w');
    try {
      const stdout = fakeStream(fd);
      const writer = new LogWriter({
        file: '',
        format: 'text',
        bufferBytes: 1024,
        stdout,
        stderr: fakeStream(undefined),
        count: () => {},
      });
      const pair = '😀';
      // A surrogate pair across the first chunk's end (32 Ki units), then a batch past
      // LOG_BUFFER_BYTES: a file takes it all (only an unread stream drops lines).
      const first = 'x'.repeat(32 * 1024 - 1) + pair + '\n';
      const second = `${'é'.repeat(5000)}\n`;
      writer.write(first);
      writer.write(second);
      assert.equal(readFileSync(path, 'utf8'), first + second);
      assert.deepEqual(stdout.written, [], 'nothing went through the stream');
    } finally {
      closeSync(fd);
    }
  });
});

test('each write ends at a line boundary: batches over the buffer are cut between lines', () => {
  withDir((dir) => {
    const file = join(dir, 'log');
    const writes: Buffer[] = [];
    const original = fs.writeSync;
    // The writer imports writeSync from node:fs: the patched one reaches it through
    // syncBuiltinESMExports().
    fs.writeSync = ((fd: number, buffer: Uint8Array, ...rest: unknown[]) => {
      writes.push(Buffer.from(buffer.subarray((rest[0] as number | undefined) ?? 0)));
      return (original as (...a: unknown[]) => number)(fd, buffer, ...rest);
    }) as typeof fs.writeSync;
    syncBuiltinESMExports();
    try {
      const writer = new LogWriter({
        file,
        format: 'text',
        bufferBytes: 1 << 20,
        stdout: fakeStream(undefined),
        stderr: fakeStream(undefined),
        count: () => {},
      });
      const line = (i: number): string =>
        `[2026-11-26 21:00:00] [INFO] Client connected: 127.0.0.1:${i} (Active: ${i}) 😀\n`;
      const batch = Array.from({ length: 2000 }, (_, i) => line(i)).join('');
      const long = `${'é'.repeat(40_000)}\n`;
      writer.write(batch);
      writer.write(long + batch);
      writer.closeFile();
      assert.ok(writes.length > 3, `${writes.length} writes: the batches were cut`);
      for (const w of writes) assert.equal(w[w.length - 1], 0x0a, 'a write ended inside a line');
      assert.equal(readFileSync(file, 'utf8'), batch + long + batch);
    } finally {
      fs.writeSync = original;
      syncBuiltinESMExports();
    }
  });
});
