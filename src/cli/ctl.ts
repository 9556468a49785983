// `tcpool ctl`: the operator's side of the admin API (src/admin/), from a shell or a script
// (--json prints the API's answer as it is). A refusal from the server is printed as the one line
// it sent, through the one CLI error path (cli/main.ts).
import { connectFailed, type ErrorCode, TcpoolError, codes, usageError } from '../errors.ts';
import { formatHostPort } from '../net/address.ts';
import { ctlHelp } from './help.ts';
import { integerOption, parseOptions } from './options.ts';

interface Target {
  base: string;
  where: string;
  token: string | undefined;
  timeoutMs: number;
}

// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, printed field by field
type Json = any;

export async function ctl(argv: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    argv,
    {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '9464' },
      token: { type: 'string' },
      timeout: { type: 'string', default: '10000' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'ctl',
  );
  if (values.help) {
    process.stdout.write(`${ctlHelp()}\n`);
    return 0;
  }
  const host = values.host as string;
  const port = integerOption('port', values.port as string, 1, 65535);
  const where = formatHostPort(host, port);
  const target: Target = {
    base: `http://${where}`,
    where,
    token: (values.token as string | undefined) ?? process.env.TCPOOL_ADMIN_TOKEN,
    timeoutMs: integerOption('timeout', values.timeout as string, 1),
  };
  const [action, ...rest] = positionals;
  const json = values.json === true;
  const out = (data: Json, text: () => string): number => {
    process.stdout.write(`${json ? JSON.stringify(data, null, 2) : text()}\n`);
    return 0;
  };
  const none = (n: number): void => {
    if (rest.length > n)
      throw usageError(`Unexpected argument: ${rest[n]} (see tcpool ctl --help)`);
  };
  switch (action) {
    case 'status': {
      none(0);
      const s = await call(target, 'GET', '/api/v1/stats');
      return out(s, () => statusText(s));
    }
    case 'clients': {
      none(0);
      const c = await call(target, 'GET', '/api/v1/clients?limit=1000');
      return out(c, () => clientsText(c));
    }
    case 'kill': {
      none(1);
      if (rest[0] === undefined) throw usageError('tcpool ctl kill needs a client id');
      const id = integerOption('id', rest[0], 1);
      const r = await call(target, 'POST', `/api/v1/clients/${id}/kill`);
      return out(r, () => `Client ${id} killed`);
    }
    case 'reload': {
      none(0);
      const r = await call(target, 'POST', '/api/v1/reload');
      return out(r, () => reloadText(r));
    }
    case 'pool': {
      none(1);
      if (rest[0] === undefined) {
        const p = await call(target, 'GET', '/api/v1/pool');
        return out(p, () => poolText(p));
      }
      const size = integerOption('size', rest[0], 1, 1024);
      const p = await call(target, 'PUT', '/api/v1/pool', { size });
      return out(p, () => poolText(p));
    }
    case 'drain': {
      none(0);
      const r = await call(target, 'POST', '/api/v1/drain');
      return out(
        r,
        () => 'Draining: new connections are refused, clients are served until SIGTERM',
      );
    }
    case undefined:
      throw usageError('tcpool ctl needs an action: status, clients, kill, reload, pool or drain');
    default:
      throw usageError(`Unknown action "${action}" (see tcpool ctl --help)`);
  }
}

async function call(t: Target, method: string, path: string, body?: unknown): Promise<Json> {
  let res: Response;
  try {
    res = await fetch(`${t.base}${path}`, {
      method,
      headers: t.token === undefined ? {} : { authorization: `Bearer ${t.token}` },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(t.timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
    const why = (cause?.code ?? (err as Error).name === 'TimeoutError') ? 'timed out' : String(err);
    throw connectFailed(`the admin API at ${t.where}`, cause?.code ?? why);
  }
  const data: Json = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data?.error;
    const code: ErrorCode = Object.hasOwn(codes, e?.code) ? e.code : codes.ERR_CLIENT_NO_REPLY;
    throw new TcpoolError(code, e?.message ?? `Admin API answered HTTP ${res.status}`);
  }
  return data;
}

function statusText(s: Json): string {
  const lines = [
    `tcpool ${s.version} (pid ${s.pid}) ${s.phase}, up ${s.uptimeSeconds} s, port ${s.port}`,
    `pool: ${s.poolSize} worker(s) (max ${s.poolMax}); clients: ${s.active}; connections: ${s.connections}; commands: ${s.commands}; rejected: ${s.rejected}; restarts: ${s.restarts}`,
    'worker  state     clients  commands  loop-busy  lag-p99-ms  heap-MiB',
  ];
  for (const w of s.workers)
    lines.push(
      [
        String(w.id).padEnd(6),
        w.state.padEnd(8),
        String(w.active).padStart(8),
        String(w.commands).padStart(9),
        `${(w.eventLoopUtilization * 100).toFixed(1)}%`.padStart(10),
        (w.eventLoopLagSeconds * 1000).toFixed(2).padStart(11),
        (w.heapUsed / 2 ** 20).toFixed(1).padStart(9),
      ].join(' '),
    );
  return lines.join('\n');
}

function clientsText(c: Json): string {
  const lines = [
    `${c.total} client(s)`,
    'id      worker  addr                   proto  age  idle  cmd',
  ];
  for (const x of c.clients)
    lines.push(
      `${String(x.id).padEnd(7)} ${String(x.worker).padEnd(7)} ${x.addr.padEnd(22)} ${x.protocol.padEnd(6)} ${String(x.age).padStart(4)} ${String(x.idle).padStart(5)}  ${x.cmd}`,
    );
  return lines.join('\n');
}

function reloadText(r: Json): string {
  const changed = r.changed.length === 0 ? 'nothing changed' : `changed: ${r.changed.join(', ')}`;
  const fixed =
    r.notLive.length === 0 ? '' : `\nneed a restart, left as they are: ${r.notLive.join(', ')}`;
  return `Reloaded (${changed}); pool size ${r.poolSize}${fixed}`;
}

function poolText(p: Json): string {
  const retiring = p.retiring > 0 ? `, ${p.retiring} retiring` : '';
  const a = p.autoscale;
  const auto =
    a === null ? '' : `; autoscale ${a.min}..${a.max} (${a.grows} up, ${a.shrinks} down so far)`;
  return `Pool size ${p.size} (max ${p.max}${retiring})${auto}`;
}
