// src/log/writer.ts's synchronous writes (LOG_FILE, and stdout when it is a regular file): every
// byte arrives, in order, through the reused buffer, whatever the size of a batch and wherever a
// multi-byte character or a surrogate pair falls against its chunks.
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
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
