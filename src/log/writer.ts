// The supervisor's log writer: stdout, and LOG_FILE appended when set. Only the supervisor thread
// writes, so lines never interleave. No sink may hold the server: stdout (a pipe, a terminal) is
// written asynchronously with at most LOG_BUFFER_BYTES queued, and lines past that are dropped and
// counted; LOG_FILE is written synchronously (nothing lost at exit) through a non-blocking
// descriptor, and a failed write drops its lines, counts them and says so once on stderr.
// Synchronous writes (LOG_FILE, and stdout when it is a regular file) go out of one reused buffer:
// a Buffer made for each write is malloc'd memory that stays until the supervisor's heap is
// collected, which its little JavaScript seldom asks for (docs/PERFORMANCE.md, section 9).
import { closeSync, constants, fstatSync, openSync, writeSync } from 'node:fs';
import type { LogFormat } from '../config/schema.ts';
import { ConfigError, codes } from '../errors.ts';
import type { Counter } from '../stats/counters.ts';
import { formatLine } from './logger.ts';

export interface LogWriterOptions {
  /** LOG_FILE; empty for stdout only. */
  file: string;
  format: LogFormat;
  /** LOG_BUFFER_BYTES: most bytes queued for stdout. */
  bufferBytes: number;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  count: (counter: Counter, n: number) => void;
}

const lineCount = (text: string): number => {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
};

/** The descriptor of a stream that is a regular file (written synchronously anyway), else null. */
function regularFile(stream: NodeJS.WriteStream): number | null {
  const fd = (stream as { fd?: unknown }).fd;
  if (typeof fd !== 'number') return null;
  try {
    return fstatSync(fd).isFile() ? fd : null;
  } catch {
    return null;
  }
}

/** Writes all of `bytes` (a FIFO may take part of a write; a regular file takes it whole). */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
}

/** Most UTF-16 units encoded for one synchronous write: at most 3 bytes each in UTF-8. */
const SCRATCH_CHARS = 32 * 1024;

/** O_NONBLOCK: a FIFO without a reader fails at once instead of hanging start-up or a write. */
function openLogFile(file: string): number {
  const { O_WRONLY, O_APPEND, O_CREAT, O_NONBLOCK } = constants;
  return openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK, 0o644);
}

export class LogWriter {
  private readonly o: LogWriterOptions;
  private fd: number | null = null;
  /** Lines dropped since stdout stopped keeping up, told in one line when it drains. */
  private stdoutDropped = 0;
  /** stdout failed (EPIPE: nobody will ever read it); from then on only LOG_FILE gets lines. */
  private stdoutFailed = false;
  /** While LOG_FILE fails: the error code and the lines dropped, told once it works again. */
  private fileFailure: { code: string; dropped: number } | null = null;
  /** stdout's descriptor when it is a regular file: written like LOG_FILE. */
  private readonly stdoutFile: number | null;
  /** Where synchronous writes are encoded; made by the first. */
  private scratch: Buffer | null = null;

  constructor(options: LogWriterOptions) {
    this.o = options;
    this.stdoutFile = regularFile(options.stdout);
    options.stdout.on('error', (err: NodeJS.ErrnoException) => this.stdoutError(err));
    if (options.file === '') return;
    try {
      this.fd = openLogFile(options.file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ConfigError(
        codes.ERR_CONFIG_FILE,
        `Cannot open LOG_FILE ${options.file}: ${e.code ?? e.message}`,
      );
    }
  }

  write = (text: string): void => {
    if (this.stdoutFile !== null) this.toStdoutFile(this.stdoutFile, text);
    else this.toStdout(text);
    this.toFile(text);
  };

  /**
   * Writes `text` to `fd` in UTF-8 through the reused buffer, at most SCRATCH_CHARS units a write
   * and only whole lines: a line is never cut between two writes, so another process appending
   * to the same file (a takeover's old and new server) cannot tear it. A line longer than that
   * (an unterminated text) is written alone, encoded on its own.
   */
  private writeText(fd: number, text: string): void {
    this.scratch ??= Buffer.allocUnsafeSlow(3 * SCRATCH_CHARS);
    const scratch = this.scratch;
    for (let i = 0; i < text.length; ) {
      let end = text.length;
      if (end - i > SCRATCH_CHARS) {
        end = text.lastIndexOf('\n', i + SCRATCH_CHARS - 1) + 1;
        if (end <= i) {
          // One line longer than the buffer: up to its end (or the text's), in one write.
          const lf = text.indexOf('\n', i + SCRATCH_CHARS);
          end = lf === -1 ? text.length : lf + 1;
          writeAll(fd, Buffer.from(text.slice(i, end)));
          i = end;
          continue;
        }
      }
      const part = i === 0 && end === text.length ? text : text.slice(i, end);
      writeAll(fd, scratch.subarray(0, scratch.write(part, 0)));
      i = end;
    }
  }

  private toStdoutFile(fd: number, text: string): void {
    if (this.stdoutFailed) return;
    try {
      this.writeText(fd, text);
    } catch (err) {
      this.stdoutError(err as NodeJS.ErrnoException);
    }
  }

  private toStdout(text: string): void {
    if (this.stdoutFailed) return;
    const { stdout, bufferBytes } = this.o;
    if (stdout.writableLength + text.length > bufferBytes) {
      const n = lineCount(text);
      // The first drop of a spell: an empty write's callback tells when the queue has gone out.
      // ('drain' cannot: stdout's write() never asks for it.)
      if (this.stdoutDropped === 0) stdout.write('', () => this.stdoutDrained());
      this.stdoutDropped += n;
      this.o.count('log_lines_dropped', n);
      return;
    }
    stdout.write(text);
  }

  private stdoutDrained(): void {
    if (this.stdoutDropped === 0 || this.stdoutFailed) return;
    const n = this.stdoutDropped;
    this.stdoutDropped = 0;
    this.o.stdout.write(
      formatLine(
        this.o.format,
        'WARN',
        `${n} log line(s) dropped: stdout was not being read (more than LOG_BUFFER_BYTES=${this.o.bufferBytes} queued)`,
      ),
    );
  }

  private stdoutError(err: NodeJS.ErrnoException): void {
    if (this.stdoutFailed) return;
    this.stdoutFailed = true;
    const rest = this.fd === null ? 'log lines are dropped' : 'log lines go to LOG_FILE only';
    this.o.stderr.write(`tcpool: cannot write stdout (${err.code ?? err.message}): ${rest}\n`);
  }

  private toFile(text: string): void {
    if (this.fd === null) return;
    try {
      this.writeText(this.fd, text);
    } catch (err) {
      this.fileFailed(err as NodeJS.ErrnoException, lineCount(text));
      return;
    }
    if (this.fileFailure !== null) this.fileRecovered();
  }

  private fileFailed(err: NodeJS.ErrnoException, lines: number): void {
    this.o.count('log_lines_dropped', lines);
    this.o.count('log_write_errors', 1);
    if (this.fileFailure !== null) {
      this.fileFailure.dropped += lines;
      return;
    }
    const code = err.code ?? err.message;
    this.fileFailure = { code, dropped: lines };
    this.o.stderr.write(
      `tcpool: cannot write LOG_FILE ${this.o.file} (${code}): its lines are dropped and counted (log_write_errors, log_lines_dropped) until a write succeeds\n`,
    );
  }

  private fileRecovered(): void {
    const { code, dropped } = this.fileFailure!;
    this.fileFailure = null;
    this.write(
      formatLine(
        this.o.format,
        'WARN',
        `LOG_FILE ${this.o.file} is written again; ${dropped} log line(s) were lost (${code})`,
      ),
    );
  }

  /**
   * Opens LOG_FILE afresh (after logrotate moved it away: SIGUSR1; or a reload, which may name
   * another file, or none). Returns an error text, or null. On failure the old file stays in use.
   */
  reopen(file = this.o.file): string | null {
    if (file === '') {
      this.closeFile();
      this.o.file = '';
      return null;
    }
    let fd: number;
    try {
      fd = openLogFile(file);
    } catch (err) {
      this.o.count('log_write_errors', 1);
      const still = this.fd === null ? '' : '; still writing to the file opened before';
      return `Cannot reopen LOG_FILE ${file}: ${(err as NodeJS.ErrnoException).code}${still}`;
    }
    if (this.fd !== null) closeSync(this.fd);
    this.fd = fd;
    this.o.file = file;
    return null;
  }

  /** A reload changed LOG_FORMAT (its own notices follow it). */
  setFormat(format: LogFormat): void {
    this.o.format = format;
  }

  /** Closes LOG_FILE (synchronous, so usable right before process.exit()). */
  closeFile(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /**
   * Closes LOG_FILE and waits up to `timeoutMs` for stdout and stderr to take what is queued.
   * Whatever a reader that does not read leaves queued then is dropped by the exit that follows.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closeFile();
    const { stdout, stderr } = this.o;
    let timer: NodeJS.Timeout | undefined;
    const flushed = await Promise.race([
      Promise.all([stdout, stderr].map((s) => new Promise((resolve) => s.write('', resolve)))).then(
        () => true,
      ),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!flushed && stdout.writableLength > 0) {
      // stderr may be the same unread pipe (2>&1): then this notice is lost with the rest.
      stderr.write(
        `tcpool: stdout did not take the queued log within ${timeoutMs} ms (SHUTDOWN_TIMEOUT_MS): ${stdout.writableLength} bytes dropped at exit\n`,
      );
    }
  }
}
