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
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(10_000),
  });
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
