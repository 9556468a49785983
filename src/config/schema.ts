// Every configuration key, its default, how a raw string becomes a value, and its help text.
// Flags, environment variables, the config file and `--help` are all derived from this table.
import { availableParallelism } from 'node:os';

export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface Config {
  PORT: number;
  HOST: string;
  THREAD_POOL_SIZE: number;
  MAX_CONNECTIONS: number;
  MAX_LINE_BYTES: number;
  MAX_BULK_BYTES: number;
  MAX_ARGS: number;
  MAX_REQUEST_BYTES: number;
  OUTPUT_HIGH_WATER_BYTES: number;
  SHUTDOWN_TIMEOUT_MS: number;
  WORKER_YOUNG_GENERATION_MB: number;
  LOG_LEVEL: LogLevel;
  LOG_FILE: string;
  LOG_FORMAT: LogFormat;
  COMMANDS_MODULE: string;
}

export type ConfigKey = keyof Config;

/** Thrown by a parser; the loader adds the key, the value and where it came from. */
export class InvalidValue extends Error {}

interface KeySpec<K extends ConfigKey> {
  default: () => Config[K];
  /** Shown as "must be …" when a value is rejected, and in --help. */
  allowed: string;
  help: string;
  parse: (raw: string) => Config[K];
}

function integer(min: number, max: number) {
  return (raw: string): number => {
    if (!/^[0-9]+$/.test(raw)) throw new InvalidValue();
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidValue();
    return n;
  };
}

function oneOf<T extends string>(values: readonly T[], normalise: (s: string) => string) {
  return (raw: string): T => {
    const v = normalise(raw) as T;
    if (!values.includes(v)) throw new InvalidValue();
    return v;
  };
}

const text = (raw: string): string => raw;

function host(raw: string): string {
  if (raw === '' || /\s/.test(raw)) throw new InvalidValue();
  return raw;
}

const MiB = 1024 * 1024;

export const schema: { [K in ConfigKey]: KeySpec<K> } = {
  PORT: {
    default: () => 8080,
    allowed: 'an integer from 0 to 65535 (0 picks a free port)',
    help: 'TCP port every worker listens on',
    parse: integer(0, 65535),
  },
  HOST: {
    default: () => '0.0.0.0',
    allowed: 'an IP address or host name, e.g. 127.0.0.1, ::1 or 0.0.0.0',
    help: 'address to bind',
    parse: host,
  },
  THREAD_POOL_SIZE: {
    default: () => availableParallelism(),
    allowed: 'an integer from 1 to 1024',
    help: 'number of worker threads, each serving any number of clients',
    parse: integer(1, 1024),
  },
  MAX_CONNECTIONS: {
    default: () => 10000,
    allowed: 'an integer from 1 to 1000000',
    help: 'connections served at once, across all workers',
    parse: integer(1, 1_000_000),
  },
  MAX_LINE_BYTES: {
    default: () => 65536,
    allowed: 'an integer from 16 to 67108864',
    help: 'longest request line (and RESP length line); a longer one is refused and the connection closed',
    parse: integer(16, 64 * MiB),
  },
  MAX_BULK_BYTES: {
    default: () => 16 * MiB,
    allowed: 'an integer from 1 to 536870912',
    help: 'largest RESP bulk string (an argument); a larger one is a protocol error',
    parse: integer(1, 512 * MiB),
  },
  MAX_ARGS: {
    default: () => 1_048_576,
    allowed: 'an integer from 1 to 2147483647',
    help: 'most arguments in one RESP request (the multibulk count)',
    parse: integer(1, 2 ** 31 - 1),
  },
  MAX_REQUEST_BYTES: {
    default: () => 64 * MiB,
    allowed: 'an integer from 1 to 4294967296, and at least MAX_BULK_BYTES',
    help: 'largest RESP request, all its arguments together',
    parse: integer(1, 4096 * MiB),
  },
  OUTPUT_HIGH_WATER_BYTES: {
    default: () => 262144,
    allowed: 'an integer from 1024 to 1073741824',
    help: 'unsent reply bytes above which the server stops reading from that client',
    parse: integer(1024, 1024 * MiB),
  },
  SHUTDOWN_TIMEOUT_MS: {
    default: () => 5000,
    allowed: 'an integer from 0 to 3600000',
    help: 'how long busy connections may take to finish on shutdown',
    parse: integer(0, 3_600_000),
  },
  WORKER_YOUNG_GENERATION_MB: {
    default: () => 8,
    allowed: 'an integer from 1 to 1024',
    help: "each worker's V8 young generation: small keeps memory per connection low",
    parse: integer(1, 1024),
  },
  LOG_LEVEL: {
    default: () => 'INFO',
    allowed: `one of ${LOG_LEVELS.join(', ')}`,
    help: 'least severe level written',
    parse: oneOf(LOG_LEVELS, (s) => s.toUpperCase()),
  },
  LOG_FILE: {
    default: () => '',
    allowed: 'a file path, or empty for stdout only',
    help: 'file the log is appended to, besides stdout',
    parse: text,
  },
  LOG_FORMAT: {
    default: () => 'text',
    allowed: `one of ${LOG_FORMATS.join(', ')}`,
    help: 'text ([time] [LEVEL] message) or json (one object a line)',
    parse: oneOf(LOG_FORMATS, (s) => s.toLowerCase()),
  },
  COMMANDS_MODULE: {
    default: () => '',
    allowed: 'a path to an ES module, or empty',
    help: 'module whose default export lists extra commands, loaded in every worker',
    parse: text,
  },
};

export const configKeys = Object.keys(schema) as ConfigKey[];

/** PORT → --port, THREAD_POOL_SIZE → --thread-pool-size */
export function flagName(key: ConfigKey): string {
  return key.toLowerCase().replaceAll('_', '-');
}

export function isConfigKey(key: string): key is ConfigKey {
  return Object.hasOwn(schema, key);
}
