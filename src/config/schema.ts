// Every configuration key, its default, how a raw string becomes a value, and its help text.
// Flags, environment variables, the config file and `--help` are all derived from this table.
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';

export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];
export const PROXY_MODES = ['off', 'v1', 'v2', 'auto'] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];
export const READ_PATHS = ['handle', 'onread', 'stream'] as const;
export type ReadPath = (typeof READ_PATHS)[number];

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
  LOG_BUFFER_BYTES: number;
  COMMANDS_MODULE: string;
  COMMAND_TIMEOUT_MS: number;
  AUTH_TOKENS: string[];
  AUTH_TOKENS_FILE: string;
  AUTH_MAX_FAILURES: number;
  AUTH_FAILURE_WINDOW_MS: number;
  AUTH_EXEMPT_NETWORKS: string[];
  PROTECTED_MODE: boolean;
  MAX_CONNECTIONS_PER_IP: number;
  RATE_LIMIT: number;
  RATE_LIMIT_BURST: number;
  IDLE_TIMEOUT_MS: number;
  REQUEST_TIMEOUT_MS: number;
  OUTPUT_BUFFER_LIMIT: number;
  PUBSUB_OUTPUT_LIMIT_BYTES: number;
  EVICT_SILENT_AFTER_MS: number;
  PROXY_PROTOCOL: ProxyMode;
  TRUSTED_PROXIES: string[];
  IP_TABLE_SLOTS: number;
  TLS_PORT: number;
  TLS_CERT: string;
  TLS_KEY: string;
  TLS_CA: string;
  TLS_MIN_VERSION: TlsVersion;
  TLS_HANDSHAKE_TIMEOUT_MS: number;
  WS_PORT: number;
  WS_TLS: boolean;
  WS_ALLOWED_ORIGINS: string[];
  WS_MAX_MESSAGE_BYTES: number;
  WS_PING_INTERVAL_MS: number;
  HTTP_PORT: number;
  HTTP_TLS: boolean;
  HTTP_MAX_BODY_BYTES: number;
  TRACING: boolean;
  THREAD_POOL_MAX: number;
  POOL_AUTOSCALE: AutoscaleRange | null;
  POOL_AUTOSCALE_HIGH_PERCENT: number;
  POOL_AUTOSCALE_LOW_PERCENT: number;
  POOL_AUTOSCALE_WINDOW_MS: number;
  POOL_AUTOSCALE_COOLDOWN_MS: number;
  DRAIN_TIMEOUT_MS: number;
  DRAIN_DELAY_MS: number;
  ADMIN_PORT: number;
  ADMIN_HOST: string;
  ADMIN_TOKENS: string[];
  TCP_READ_PATH: ReadPath;
}

export type ConfigKey = keyof Config;

/**
 * THREAD_POOL_SIZE's default: the CPUs this process may use, less one (at least 1). The core left
 * over runs what is not a worker (the supervisor, V8's GC and compiler threads, the kernel's
 * network processing), so a worker is not descheduled for them mid-request
 * (docs/PERFORMANCE.md, "The tail at P=1").
 */
export function defaultPoolSize(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** POOL_AUTOSCALE's bounds: the pool stays within min..max workers. */
export interface AutoscaleRange {
  min: number;
  max: number;
}

/** POOL_AUTOSCALE: "off", or "min..max" with 1 ≤ min ≤ max ≤ 1024. */
export function parseAutoscale(raw: string): AutoscaleRange | null {
  if (raw.toLowerCase() === 'off') return null;
  const m = /^([0-9]+)\.\.([0-9]+)$/.exec(raw);
  if (m === null) throw new InvalidValue();
  const min = parseInteger(m[1], 1, 1024);
  const max = parseInteger(m[2], 1, 1024);
  if (min > max) throw new InvalidValue();
  return { min, max };
}

/** How POOL_AUTOSCALE is written: "off" or "min..max". */
export function formatAutoscale(range: AutoscaleRange | null): string {
  return range === null ? 'off' : `${range.min}..${range.max}`;
}

/** Thrown by a parser; the loader adds the key, the value and where it came from. */
export class InvalidValue extends Error {}

interface KeySpec<K extends ConfigKey> {
  default: () => Config[K];
  /** Shown as "must be …" when a value is rejected, and in --help. */
  allowed: string;
  help: string;
  parse: (raw: string) => Config[K];
}

/** A whole number in [min, max] written in decimal digits, or InvalidValue. */
export function parseInteger(raw: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(raw)) throw new InvalidValue();
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidValue();
  return n;
}

/** An integer key's range, written once: the parser and the "must be …" text come from it. */
function integer(min: number, max: number, also = '') {
  return {
    allowed: `an integer from ${min} to ${max}${also}`,
    parse: (raw: string): number => parseInteger(raw, min, max),
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

function yesNo(raw: string): boolean {
  const v = raw.toLowerCase();
  if (['yes', 'true', 'on', '1'].includes(v)) return true;
  if (['no', 'false', 'off', '0'].includes(v)) return false;
  throw new InvalidValue();
}

const list = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** "10.0.0.0/8, ::1, 192.168.1.7": addresses or CIDR blocks, normalised to "addr/prefix". */
export function cidrList(raw: string): string[] {
  return list(raw).map((item) => {
    const [addr, prefix, extra] = item.split('/');
    const family = isIP(addr);
    if (family === 0 || extra !== undefined) throw new InvalidValue();
    const max = family === 4 ? 32 : 128;
    if (prefix === undefined) return `${addr}/${max}`;
    if (!/^[0-9]{1,3}$/.test(prefix) || Number(prefix) > max) throw new InvalidValue();
    return `${addr}/${prefix}`;
  });
}

/** Hashes made by `tcpool hash-token`; a plain token is refused so none is ever stored. */
export const TOKEN_HASH =
  /^(sha256:[0-9a-f]{64}|scrypt:[0-9]+:[0-9]+:[0-9]+:[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2})$/;

function tokenHashes(raw: string): string[] {
  const hashes = list(raw);
  if (!hashes.every((h) => TOKEN_HASH.test(h))) throw new InvalidValue();
  return hashes;
}

function host(raw: string): string {
  if (raw === '' || /\s/.test(raw)) throw new InvalidValue();
  return raw;
}

const MiB = 1024 * 1024;

export const schema: { [K in ConfigKey]: KeySpec<K> } = {
  PORT: {
    default: () => 8080,
    allowed: 'an integer from 0 to 65535 (0 picks a free port), or off (TLS only)',
    help: 'TCP port every worker listens on',
    parse: (raw) => (raw.toLowerCase() === 'off' ? -1 : parseInteger(raw, 0, 65535)),
  },
  HOST: {
    default: () => '0.0.0.0',
    allowed: 'an IP address or host name, e.g. 127.0.0.1, ::1 or 0.0.0.0',
    help: 'address to bind',
    parse: host,
  },
  THREAD_POOL_SIZE: {
    default: defaultPoolSize,
    help: 'number of worker threads, each serving any number of clients',
    ...integer(1, 1024),
  },
  MAX_CONNECTIONS: {
    default: () => 10000,
    help: 'connections served at once, across all workers',
    ...integer(1, 1_000_000),
  },
  MAX_LINE_BYTES: {
    default: () => 65536,
    help: 'longest request line (and RESP length line); a longer one is refused and the connection closed',
    ...integer(16, 64 * MiB),
  },
  MAX_BULK_BYTES: {
    default: () => 16 * MiB,
    help: 'largest RESP bulk string (an argument); a larger one is a protocol error',
    ...integer(1, 512 * MiB),
  },
  MAX_ARGS: {
    default: () => 1_048_576,
    help: 'most arguments in one RESP request (the multibulk count)',
    ...integer(1, 2 ** 31 - 1),
  },
  MAX_REQUEST_BYTES: {
    default: () => 64 * MiB,
    help: 'largest RESP request, all its arguments together',
    ...integer(1, 4096 * MiB, ', and at least MAX_BULK_BYTES'),
  },
  OUTPUT_HIGH_WATER_BYTES: {
    default: () => 262144,
    help: 'unsent reply bytes above which the server stops reading from that client',
    ...integer(1024, 1024 * MiB),
  },
  SHUTDOWN_TIMEOUT_MS: {
    default: () => 5000,
    help: 'how long busy connections may take to finish on shutdown',
    ...integer(0, 3_600_000),
  },
  WORKER_YOUNG_GENERATION_MB: {
    default: () => 8,
    help: "each worker's V8 young generation: small keeps memory per connection low",
    ...integer(1, 1024),
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
  LOG_BUFFER_BYTES: {
    default: () => MiB,
    help: 'log bytes held for a stdout that is not keeping up; past this, lines are dropped and counted (log_lines_dropped)',
    ...integer(65536, 1024 * MiB),
  },
  COMMANDS_MODULE: {
    default: () => '',
    allowed: 'a path to a module (.ts, .mts, .js, .mjs, .cjs) or a package name, or empty',
    help: 'module whose default export lists extra commands, loaded in every worker',
    parse: text,
  },
  COMMAND_TIMEOUT_MS: {
    default: () => 30_000,
    help: "how long an asynchronous COMMANDS_MODULE command may run before the client gets a timeout error (0 = no limit; a command's own `timeout` overrides it)",
    ...integer(0, 3_600_000),
  },
  AUTH_TOKENS: {
    default: () => [],
    allowed:
      'a comma-separated list of token hashes made by `tcpool hash-token` (sha256:… or scrypt:…); plain tokens are refused',
    help: 'tokens that AUTH accepts, as hashes; set means every client must authenticate',
    parse: tokenHashes,
  },
  AUTH_TOKENS_FILE: {
    default: () => '',
    allowed: 'a path to a file of token hashes, one a line (# comments), or empty',
    help: 'more token hashes, read from a file at start-up',
    parse: text,
  },
  AUTH_MAX_FAILURES: {
    default: () => 10,
    help: 'failed AUTH attempts per client IP, across workers, before further attempts are refused',
    ...integer(0, 1_000_000, ' (0 = no limit)'),
  },
  AUTH_FAILURE_WINDOW_MS: {
    default: () => 60_000,
    help: 'the window AUTH_MAX_FAILURES is counted over',
    ...integer(1000, 86_400_000),
  },
  AUTH_EXEMPT_NETWORKS: {
    default: () => [],
    allowed: 'a comma-separated list of IP addresses or CIDR blocks, e.g. 127.0.0.1/32, ::1',
    help: 'clients from these networks need no AUTH (e.g. a local monitoring agent)',
    parse: cidrList,
  },
  PROTECTED_MODE: {
    default: () => true,
    allowed: 'yes or no',
    help: 'without AUTH on a non-loopback HOST, refuse non-loopback clients (as Redis does)',
    parse: yesNo,
  },
  MAX_CONNECTIONS_PER_IP: {
    default: () => 0,
    help: 'connections from one client IP at once, across all workers',
    ...integer(0, 1_000_000, ' (0 = no limit)'),
  },
  RATE_LIMIT: {
    default: () => 0,
    help: 'commands per second per client IP, across all workers (token bucket)',
    ...integer(0, 1_000_000_000, ' (0 = off)'),
  },
  RATE_LIMIT_BURST: {
    default: () => 0,
    help: 'commands a client IP may send at once before RATE_LIMIT applies',
    ...integer(0, 1_000_000_000, ' (0 = RATE_LIMIT)'),
  },
  IDLE_TIMEOUT_MS: {
    default: () => 0,
    help: 'close a client that sent nothing for this long',
    ...integer(0, 2 ** 31 - 1, ' (0 = off)'),
  },
  REQUEST_TIMEOUT_MS: {
    default: () => 10_000,
    help: 'close a client whose request stays incomplete this long (slowloris defence)',
    ...integer(0, 2 ** 31 - 1, ' (0 = off)'),
  },
  OUTPUT_BUFFER_LIMIT: {
    default: () => 64 * MiB,
    help: "disconnect a client whose unsent replies pass this many bytes (Redis's client-output-buffer-limit)",
    ...integer(0, 4096 * MiB, ' (0 = no limit)'),
  },
  PUBSUB_OUTPUT_LIMIT_BYTES: {
    default: () => 32 * MiB,
    help: "disconnect a subscriber whose unsent messages pass this many bytes (Redis's client-output-buffer-limit pubsub)",
    ...integer(0, 4096 * MiB, ' (0 = no limit)'),
  },
  EVICT_SILENT_AFTER_MS: {
    default: () => 5000,
    help: 'at MAX_CONNECTIONS, a new client takes the place of the oldest connection that has sent nothing for this long',
    ...integer(0, 2 ** 31 - 1, ' (0 = never)'),
  },
  PROXY_PROTOCOL: {
    default: () => 'off',
    allowed: `one of ${PROXY_MODES.join(', ')}`,
    help: 'expect a PROXY protocol header (HAProxy, nginx, ELB) from TRUSTED_PROXIES',
    parse: oneOf(PROXY_MODES, (s) => s.toLowerCase()),
  },
  TRUSTED_PROXIES: {
    default: () => [],
    allowed: 'a comma-separated list of IP addresses or CIDR blocks',
    help: 'proxies whose PROXY headers are believed; others may not send one',
    parse: cidrList,
  },
  TLS_PORT: {
    default: () => 0,
    help: 'port of the TLS listener, beside PORT (or alone with PORT=off)',
    ...integer(0, 65535, ' (0 = no TLS listener)'),
  },
  TLS_CERT: {
    default: () => '',
    allowed: 'a path to a PEM certificate (chain)',
    help: "the TLS listener's certificate",
    parse: text,
  },
  TLS_KEY: {
    default: () => '',
    allowed: 'a path to a PEM private key',
    help: "the TLS listener's private key",
    parse: text,
  },
  TLS_CA: {
    default: () => '',
    allowed: 'a path to PEM CA certificates, or empty',
    help: 'set: clients must present a certificate signed by these CAs (mutual TLS)',
    parse: text,
  },
  TLS_MIN_VERSION: {
    default: () => 'TLSv1.2',
    allowed: `one of ${TLS_VERSIONS.join(', ')}`,
    help: 'oldest TLS version accepted',
    parse: (raw) => {
      const v = TLS_VERSIONS.find((t) => t.toLowerCase() === raw.toLowerCase());
      if (v === undefined) throw new InvalidValue();
      return v;
    },
  },
  TLS_HANDSHAKE_TIMEOUT_MS: {
    default: () => 10_000,
    help: 'close a TLS client whose handshake has not finished this long after it connected',
    ...integer(100, 3_600_000),
  },
  IP_TABLE_SLOTS: {
    default: () => 65536,
    help: 'client IPs tracked at once for the per-IP limits (shared by all workers)',
    ...integer(64, 16_777_216),
  },
  WS_PORT: {
    default: () => 0,
    help: 'port of the WebSocket listener (subprotocols tcpool.line and resp3); may equal HTTP_PORT, then at path /ws',
    ...integer(0, 65535, ' (0 = off)'),
  },
  WS_TLS: {
    default: () => false,
    allowed: 'yes or no',
    help: 'WS_PORT speaks TLS (wss://) with TLS_CERT and TLS_KEY',
    parse: yesNo,
  },
  WS_ALLOWED_ORIGINS: {
    default: () => [],
    allowed: 'a comma-separated list of origins (https://app.example.com), or *',
    help: 'browser origins allowed to open a WebSocket; requests without an Origin header are not browsers and are allowed',
    parse: list,
  },
  WS_MAX_MESSAGE_BYTES: {
    default: () => 1 * MiB,
    help: 'largest WebSocket message; a larger one closes the connection (1009)',
    ...integer(64, 512 * MiB),
  },
  WS_PING_INTERVAL_MS: {
    default: () => 30_000,
    help: 'ping every WebSocket client this often; one that has not answered the last ping is closed',
    ...integer(0, 3_600_000, ' (0 = off)'),
  },
  HTTP_PORT: {
    default: () => 0,
    help: 'port of the HTTP API (HTTP/1.1 and HTTP/2: h2c prior knowledge, or ALPN h2 with HTTP_TLS)',
    ...integer(0, 65535, ' (0 = off)'),
  },
  HTTP_TLS: {
    default: () => false,
    allowed: 'yes or no',
    help: 'HTTP_PORT speaks TLS (https://, ALPN h2 and http/1.1) with TLS_CERT and TLS_KEY',
    parse: yesNo,
  },
  HTTP_MAX_BODY_BYTES: {
    default: () => 1 * MiB,
    help: 'largest HTTP request body; a larger one is answered 413 before it is read',
    ...integer(64, 512 * MiB),
  },
  TRACING: {
    default: () => false,
    allowed: 'yes or no',
    help: 'OpenTelemetry: a span per command, sent by OTLP/HTTP as the standard OTEL_* variables say (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER …)',
    parse: yesNo,
  },
  THREAD_POOL_MAX: {
    default: () => 64,
    help: 'most workers a live resize may grow the pool to (shared memory is laid out for them); THREAD_POOL_SIZE is always allowed',
    ...integer(1, 1024),
  },
  POOL_AUTOSCALE: {
    default: () => null,
    allowed:
      'off, or min..max workers with 1 ≤ min ≤ max ≤ 1024 (e.g. 2..8), max at most THREAD_POOL_MAX',
    help: "grow and shrink the pool by one worker at a time within min..max, by the workers' mean event-loop utilisation",
    parse: parseAutoscale,
  },
  POOL_AUTOSCALE_HIGH_PERCENT: {
    default: () => 75,
    help: 'POOL_AUTOSCALE grows the pool when the mean event-loop utilisation stays above this for POOL_AUTOSCALE_WINDOW_MS',
    ...integer(1, 100),
  },
  POOL_AUTOSCALE_LOW_PERCENT: {
    default: () => 25,
    help: 'POOL_AUTOSCALE shrinks the pool when it stays below this (below POOL_AUTOSCALE_HIGH_PERCENT)',
    ...integer(0, 99),
  },
  POOL_AUTOSCALE_WINDOW_MS: {
    default: () => 30_000,
    help: 'how long the utilisation must stay past a threshold before POOL_AUTOSCALE changes the pool',
    ...integer(100, 3_600_000),
  },
  POOL_AUTOSCALE_COOLDOWN_MS: {
    default: () => 60_000,
    help: 'least time between two pool changes by POOL_AUTOSCALE (an explicit resize counts as one)',
    ...integer(0, 86_400_000),
  },
  DRAIN_TIMEOUT_MS: {
    default: () => 30_000,
    help: 'when the pool shrinks, how long a retiring worker serves its clients before closing them as shutdown does',
    ...integer(0, 86_400_000),
  },
  DRAIN_DELAY_MS: {
    default: () => 0,
    help: 'on a drain or SIGTERM, how long /readyz says 503 while new clients are still accepted, so a load balancer stops sending them before the listeners close',
    ...integer(0, 3_600_000),
  },
  ADMIN_PORT: {
    default: () => 9464,
    allowed: 'an integer from 0 to 65535 (0 picks a free port), or off',
    help: 'port of the admin HTTP endpoint (/metrics, /healthz, /readyz, /api/v1/, the dashboard)',
    parse: (raw) => (raw.toLowerCase() === 'off' ? -1 : parseInteger(raw, 0, 65535)),
  },
  ADMIN_HOST: {
    default: () => '127.0.0.1',
    allowed: 'an IP address or host name; other than loopback needs ADMIN_TOKENS',
    help: 'address the admin endpoint binds',
    parse: host,
  },
  ADMIN_TOKENS: {
    default: () => [],
    allowed:
      'a comma-separated list of token hashes made by `tcpool hash-token` (sha256:… or scrypt:…)',
    help: 'tokens the admin endpoint accepts (Authorization: Bearer <token>); required off loopback',
    parse: tokenHashes,
  },
  TCP_READ_PATH: {
    default: () => 'handle',
    allowed: `one of ${READ_PATHS.join(', ')}`,
    help: "plain TCP's path on Node: handle (reads and writes on the libuv handle, no net.Socket), onread (a net.Socket reading into one shared buffer per worker) or stream (net.Socket 'data' events); on Bun, handle and onread mean Bun.listen",
    parse: oneOf(READ_PATHS, (s) => s.toLowerCase()),
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
