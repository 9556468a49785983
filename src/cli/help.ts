// --help texts, generated from the config schema so they always match the code.
import { configKeys, defaultPoolSize, flagName, schema } from '../config/schema.ts';
import { hashTokenHelp } from './hash-token.ts';

/** An option row: the flag, then its text in a column (one space at least). */
function row(flag: string, text: string): string {
  return `${flag.padEnd(35)} ${text}`;
}

function defaultText(key: (typeof configKeys)[number]): string {
  if (key === 'THREAD_POOL_SIZE')
    return `number of CPUs - 1, at least 1 (here ${defaultPoolSize()})`;
  const d = schema[key].default();
  if (d === null) return 'off';
  if (typeof d === 'boolean') return d ? 'yes' : 'no';
  return d === '' || (Array.isArray(d) && d.length === 0) ? 'empty' : String(d);
}

export function serveHelp(): string {
  const rows = configKeys.map((key) => {
    const flag = `  --${flagName(key)} <value>`;
    return `${row(flag, schema[key].help)}\n${row('', `env ${key}, default ${defaultText(key)}; ${schema[key].allowed}`)}`;
  });
  return [
    'Usage: tcpool serve [options] [config-file]',
    '',
    'Serves the line protocol on PORT with THREAD_POOL_SIZE worker threads sharing the port.',
    'Each setting comes from, strongest first: a flag, an environment variable of the same name as',
    'the config key, the config file (KEY=VALUE lines, # comments), then the default. Without a',
    'config-file argument or --config, ./config.txt is read when it exists.',
    '',
    'Options:',
    row('  -c, --config <file>', 'config file (default: ./config.txt if present)'),
    ...rows,
    row('  --takeover', 'join PORT while another tcpool serves it (zero-downtime restart),'),
    row('', 'then SIGTERM the old one'),
    row('  -h, --help', 'show this help'),
    '',
    'SIGINT or SIGTERM shuts down gracefully; a second signal exits at once. SIGHUP reloads the',
    'configuration; SIGUSR1 reopens LOG_FILE.',
  ].join('\n');
}

export function clientHelp(): string {
  return [
    'Usage: tcpool client [--host H] [--port P] [--auth TOKEN] [--tls [--cacert FILE]] [command ...]',
    '',
    'With a command, sends it, prints the reply and exits: 0, or 1 when the reply is an error. With',
    'piped input, sends one command per line and prints the replies in order. On a terminal, opens',
    'a prompt with history (Ctrl-D quits). A refused connection or AUTH exits 1, a bad option 2.',
    '',
    'Options:',
    row('  --host <host>', 'server address (default: 127.0.0.1)'),
    row('  --port <port>', 'server port (default: 8080; the TLS_PORT with --tls)'),
    row(
      '  --auth <token>',
      'send AUTH <token> first (default: env TCPOOL_AUTH, which ps does not show)',
    ),
    row('  --tls', "connect with TLS, checking the server's certificate"),
    row('  --cacert <file>', 'PEM CA certificate(s) to check it against (implies --tls)'),
    row(
      '  --timeout <ms>',
      'give up when connecting or waiting for a reply takes longer (default: 5000)',
    ),
    row('  -h, --help', 'show this help'),
  ].join('\n');
}

export function benchHelp(): string {
  return [
    'Usage: tcpool bench [options]',
    '',
    'Loads a server with requests and reports throughput and latency percentiles (HDR histogram).',
    'Closed loop by default: each connection keeps --pipeline requests in flight. With --rate, an',
    'open loop sends on a fixed schedule and measures latency from the intended send time, so a',
    'stall cannot hide (no coordinated omission). A stalled or closed connection ends the run with',
    'exit code 1; so do error replies.',
    '',
    'With --pubsub it measures pub/sub fan-out instead: --subscribers RESP connections subscribe',
    'to --channels channels, one publisher pipelines --messages PUBLISH round-robin over them',
    '(-P in flight), and the figure is messages/s delivered to subscribers. RESP only, so it runs',
    'against redis-server as well.',
    '',
    'With --connect-rate each request comes on a new connection (connect, request, reply, close):',
    'accept throughput, and connect-to-first-reply latency. Connections that fail (refused, reset,',
    'closed or stalled before their reply) and error replies are counted apart, by reason.',
    'SIGINT (Ctrl-C) ends a --connect-rate run early and reports what it has.',
    '',
    'Options:',
    row('  --host <host>', 'server address (default: 127.0.0.1)'),
    row('  --port <port>', 'server port (default: 8080)'),
    row('  -c, --connections <n>', 'active connections (default: 50)'),
    row(
      '  -P, --pipeline <n>',
      'requests in flight per connection, closed loop (default: 1; --pubsub: 500)',
    ),
    row('  -n, --requests <n>', 'total requests (default: 100000, or unlimited with --duration)'),
    row('  -d, --duration <s>', 'stop sending after this many seconds (at most 3600)'),
    row('  --protocol <line|resp>', 'line protocol or RESP arrays (default: line)'),
    row('  --command <text>', 'the request; RESP sends its words as an array (default: PING)'),
    row('  -t, --threads <n>', 'client worker threads (default: 1; --pubsub: 4)'),
    row('  --rate <n>', 'open loop: requests per second across all connections'),
    row(
      '  --idle <n>',
      'extra idle connections, opened first and checked after the run (default: 0)',
    ),
    row(
      '  --stall-timeout <ms>',
      'no reply for this long with requests outstanding = stalled (default: 5000)',
    ),
    row('  --json', 'print the result as JSON'),
    row('  --chart <file.svg>', 'write a latency-by-percentile chart'),
    row(
      '  --connect-rate',
      'a new connection per request (-c loops; default -n 10000, or -d seconds)',
    ),
    row('  --pubsub', 'fan-out mode: messages/s delivered to subscribers'),
    row('  --subscribers <n>', '--pubsub: subscriber connections (default: 1000)'),
    row('  --channels <n>', '--pubsub: channels, subscribers spread evenly (default: 4)'),
    row('  --messages <n>', '--pubsub: messages published in all (default: 20000)'),
    row('  --payload <bytes>', '--pubsub: bytes per message (default: 64)'),
    row('  -h, --help', 'show this help'),
  ].join('\n');
}

export function ctlHelp(): string {
  return [
    'Usage: tcpool ctl [--host H] [--port P] [--token T] [--json] <action>',
    '',
    "Talks to a running server's admin endpoint (ADMIN_PORT). Actions:",
    row('  status', 'pool, clients, counters, and each worker'),
    row('  clients', 'every client of every worker'),
    row('  kill <id>', 'close a client (ids as clients and CLIENT LIST show them)'),
    row('  reload', 're-read the config file and environment; say what changed'),
    row('  pool [N]', 'show the pool size, or resize it to N workers while serving'),
    row('  drain', 'stop accepting (readiness fails); clients are served until SIGTERM'),
    '',
    'Options:',
    row('  --host <host>', 'admin address (default: 127.0.0.1)'),
    row('  --port <port>', 'admin port (default: 9464)'),
    row('  --token <token>', 'an ADMIN_TOKENS token (default: env TCPOOL_ADMIN_TOKEN)'),
    row('  --timeout <ms>', 'give up after this long (default: 10000)'),
    row('  --json', "print the API's JSON answer"),
    row('  -h, --help', 'show this help'),
    '',
    'Exit status: 0 done; 1 the server refused or could not be reached; 2 a bad option or value.',
  ].join('\n');
}

export function mainHelp(version: string): string {
  return [
    `tcpool ${version}: a multi-client TCP command server (supervisor + worker-thread pool)`,
    '',
    'Usage: tcpool <command> [options]',
    '',
    'Commands:',
    '  serve     run the server (npm start)',
    '  client    talk to a server: one command, piped commands, or an interactive prompt',
    '  bench     load a server and report throughput and latency percentiles',
    '  hash-token  hash a token for AUTH_TOKENS (--generate makes one)',
    '  ctl       operate a running server: status, clients, kill, reload, pool, drain',
    '',
    'Options: -h, --help (this text), -v, --version',
    '',
    serveHelp(),
    '',
    clientHelp(),
    '',
    benchHelp(),
    '',
    hashTokenHelp(),
    '',
    ctlHelp(),
  ].join('\n');
}
