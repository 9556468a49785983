// The supervisor's log writer: stdout, and LOG_FILE appended when set. Only the supervisor thread
// writes, so lines never interleave; writes are synchronous so nothing is lost at exit.
import { closeSync, openSync, writeSync } from 'node:fs';
import { ConfigError, codes } from '../errors.ts';

export class LogWriter {
  private fd: number | null = null;

  constructor(file: string) {
    process.stdout.on('error', () => {}); // a closed stdout must not take the server down
    if (file === '') return;
    try {
      this.fd = openSync(file, 'a');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ConfigError(
        codes.ERR_CONFIG_FILE,
        `Cannot open LOG_FILE ${file}: ${e.code ?? e.message}`,
      );
    }
  }

  write = (text: string): void => {
    process.stdout.write(text);
    if (this.fd !== null) {
      try {
        writeSync(this.fd, text);
      } catch {
        // A full disk must not stop the server; stdout still has the line.
      }
    }
  };

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
