// One logger. A line is built as a string in the thread that logs it and handed to a sink; in a
// worker the sink batches lines and posts them to the supervisor, which alone writes them (see
// writer.ts). So lines from different threads never interleave and no request waits on a write.
import type { LogFormat, LogLevel } from '../config/schema.ts';
import { localTimestamp } from './time.ts';

export type LogSink = (text: string) => void;

const rank: Record<LogLevel, number> = { DEBUG: 0, INFO: 1, WARN: 2, ERROR: 3 };

export class Logger {
  private min: number;
  private format: LogFormat;
  private readonly sink: LogSink;
  /** In JSON lines: which thread logged ("supervisor" or the worker's index). */
  private readonly source: string | number;

  constructor(
    level: LogLevel,
    format: LogFormat,
    sink: LogSink,
    source: string | number = 'supervisor',
  ) {
    this.min = rank[level];
    this.format = format;
    this.sink = sink;
    this.source = source;
  }

  /** A reload changed LOG_LEVEL or LOG_FORMAT. */
  reconfigure(level: LogLevel, format: LogFormat): void {
    this.min = rank[level];
    this.format = format;
  }

  debug(msg: string): void {
    if (this.min <= 0) this.write('DEBUG', msg);
  }
  info(msg: string): void {
    if (this.min <= 1) this.write('INFO', msg);
  }
  warn(msg: string): void {
    if (this.min <= 2) this.write('WARN', msg);
  }
  error(msg: string): void {
    this.write('ERROR', msg);
  }

  private write(level: LogLevel, msg: string): void {
    this.sink(formatLine(this.format, level, msg, this.source));
  }
}

/** One log line, newline included, in either format. */
export function formatLine(
  format: LogFormat,
  level: LogLevel,
  msg: string,
  source: string | number = 'supervisor',
): string {
  const now = Date.now();
  if (format === 'json')
    return JSON.stringify({ time: new Date(now).toISOString(), level, source, msg }) + '\n';
  return `[${localTimestamp(now)}] [${level}] ${msg}\n`;
}

export interface BatchingSink {
  sink: LogSink;
  /** Passes on what is gathered now, e.g. before a message that must come after these lines. */
  flush: () => void;
}

/**
 * A sink that gathers the lines logged in one turn of the event loop and passes them on together.
 */
export function batchingSink(deliver: (text: string) => void): BatchingSink {
  let batch = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const text = batch;
    batch = '';
    if (text !== '') deliver(text);
  };
  const sink: LogSink = (text) => {
    batch += text;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return { sink, flush };
}
