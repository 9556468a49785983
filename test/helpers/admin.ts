// A server with its admin endpoint on a free port, and requests to it.
import { spawnSync } from 'node:child_process';
import { type ServerProcess, startServer } from './server.ts';

export interface AdminServer extends ServerProcess {
  adminPort: number;
}

/** Starts a server with ADMIN_PORT=0 and learns the admin port from its log. */
export async function startAdminServer(
  opts: { env?: Record<string, string | undefined>; args?: string[]; cwd?: string } = {},
): Promise<AdminServer> {
  const server = (await startServer({
    ...opts,
    env: { ADMIN_PORT: '0', ...opts.env },
  })) as AdminServer;
  const m = await server.waitForLog(/Admin API listening on http:\/\/[^:]+:(\d+)\//);
  server.adminPort = Number(m[1]);
  return server;
}

export interface AdminReply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON replies are checked field by field
  json: any;
}

export async function admin(
  port: number,
  method: string,
  path: string,
  opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<AdminReply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  const send = () =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(10_000),
    });
  let res: Response;
  try {
    res = await send();
  } catch (err) {
    // A kept-alive connection the server closed before answering (seen once on Bun's node:http,
    // "other side closed"): a GET is retried once on a new connection, as HTTP clients do for
    // idempotent requests (RFC 9112 §9.3.1). Anything else, or a second failure, fails the test.
    const code = (err as { cause?: { code?: string } }).cause?.code;
    if (method !== 'GET' || (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET')) throw err;
    res = await send();
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

/** A Debian tool a test needs: skipped when missing here, a failure when CI is set. */
export function tool(name: string, pkg: string): { skip: string | false } {
  const found = spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
  if (!found && process.env.CI)
    throw new Error(`${name} is not installed (apt-get install ${pkg})`);
  return { skip: found ? false : `${name} not installed (apt-get install ${pkg})` };
}

/** Debian's python3 (a pyenv python3 on PATH may lack Debian's modules). */
const PYTHON = '/usr/bin/python3';

/** A Debian Python module a test needs: skipped when missing here, a failure when CI is set. */
export function pythonModule(module: string, pkg: string): { skip: string | false } {
  const found = spawnSync(PYTHON, ['-c', `import ${module}`]).status === 0;
  if (!found && process.env.CI)
    throw new Error(`Python's ${module} is not installed (apt-get install ${pkg})`);
  return { skip: found ? false : `Python's ${module} not installed (apt-get install ${pkg})` };
}

export interface OpenMetricsFamily {
  name: string;
  type: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

// Reads an exposition from stdin with the Prometheus project's own Python parser, which is strict
// about OpenMetrics (# EOF, metric grouping, histogram buckets, counter suffixes), and prints
// what it understood; a rejection exits 1 with the parser's reason. A value that is not finite
// (an event loop's mean delay over a window with no samples is NaN) travels as Python's "nan",
// "inf" or "-inf", since JSON has no number for it.
const OPENMETRICS_PARSER = `
import json, math, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
try:
    families = [
        {'name': f.name, 'type': f.type, 'samples': [
            {'name': s.name, 'labels': s.labels,
             'value': s.value if math.isfinite(s.value) else str(s.value)}
            for s in f.samples]}
        for f in text_string_to_metric_families(sys.stdin.read())]
except ValueError as e:
    print(e, file=sys.stderr)
    sys.exit(1)
print(json.dumps(families))
`;

/**
 * Parses OpenMetrics text with python3-prometheus-client's strict parser: the families, or the
 * parser's reason for rejecting it.
 */
export function parseOpenMetrics(text: string): OpenMetricsFamily[] | { rejected: string } {
  const run = spawnSync(PYTHON, ['-c', OPENMETRICS_PARSER], { input: text, timeout: 30_000 });
  if (run.status !== 0) return { rejected: `${run.stderr}`.trim() || `exit ${run.status}` };
  const nonFinite: Record<string, number> = { nan: Number.NaN, inf: Infinity, '-inf': -Infinity };
  return JSON.parse(`${run.stdout}`, (key, value) =>
    key === 'value' && typeof value === 'string' ? nonFinite[value] : value,
  ) as OpenMetricsFamily[];
}
