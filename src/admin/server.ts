// The admin HTTP endpoint, in the supervisor thread (never in a worker's event loop): probes,
// /metrics, the JSON API and the dashboard. Bound to ADMIN_HOST:ADMIN_PORT; off loopback every
// request but the probes needs `Authorization: Bearer <token>` matching an ADMIN_TOKENS hash.
// Errors are JSON: {"error": {"code": "ERR_…", "message": "<the line the CLI prints>"}}.
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TokenVerifier } from '../auth/tokens.ts';
import { codes, listenError, TcpoolError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { Supervisor } from '../supervisor/supervisor.ts';
import { AdminApi } from './api.ts';
import { HttpError } from './http-error.ts';
import { MetricsExporter } from './metrics.ts';

/** Largest request body the API reads (a pool size, a reload: a few bytes). */
const MAX_BODY_BYTES = 4096;
/** How often the dashboard's event stream gets a frame. */
const EVENT_INTERVAL_MS = 1000;

const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/dashboard.js': 'dashboard.js',
  '/dashboard.css': 'dashboard.css',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};
// From the package root, in both layouts (src/admin/ run directly, dist/admin/ built): the files
// ship as they are, with no build step.
const ASSET_DIR = new URL('../../src/admin/dashboard/', import.meta.url);

export class AdminServer {
  private readonly supervisor: Supervisor;
  private readonly logger: Logger;
  private readonly http: Server;
  private readonly api: AdminApi;
  private readonly exporter: MetricsExporter;
  private verifier: TokenVerifier;
  private readonly streams = new Set<ServerResponse>();
  private ticker: NodeJS.Timeout | null = null;
  port = 0;

  constructor(supervisor: Supervisor, logger: Logger) {
    this.supervisor = supervisor;
    this.logger = logger;
    this.verifier = new TokenVerifier(supervisor.config.ADMIN_TOKENS);
    this.api = new AdminApi(supervisor);
    this.exporter = new MetricsExporter(supervisor);
    this.http = createServer((req, res) => void this.handle(req, res));
    // Slow or idle admin clients cannot hold sockets for long.
    this.http.requestTimeout = 10_000;
    this.http.headersTimeout = 5_000;
    this.http.keepAliveTimeout = 5_000;
  }

  /** A reload changed ADMIN_TOKENS. */
  reconfigure(): void {
    this.verifier = new TokenVerifier(this.supervisor.config.ADMIN_TOKENS);
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', (err: NodeJS.ErrnoException) => {
        const e = listenError(err, host, port);
        reject(new TcpoolError(e.code, `ADMIN_PORT: ${e.message}`));
      });
      this.http.listen({ host, port }, () => {
        this.port = (this.http.address() as AddressInfo).port;
        resolve(this.port);
      });
    });
  }

  close(): Promise<void> {
    if (this.ticker !== null) clearInterval(this.ticker);
    for (const res of this.streams) res.end();
    this.http.closeAllConnections();
    return new Promise((resolve) => this.http.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://admin');
      const path = url.pathname;
      if (req.method === 'GET' && path === '/healthz') return text(res, 200, 'ok\n');
      if (req.method === 'GET' && path === '/readyz') {
        const phase = this.supervisor.phase;
        return json(res, phase === 'serving' ? 200 : 503, { status: phase });
      }
      if (req.method === 'GET' && Object.hasOwn(ASSETS, path)) return await this.asset(res, path);
      await this.authorise(req);
      if (req.method === 'GET' && path === '/metrics') {
        const { body, contentType } = await this.exporter.render(req.headers.accept ?? '');
        res.writeHead(200, { 'content-type': contentType });
        return void res.end(body);
      }
      if (req.method === 'GET' && path === '/api/v1/events') return this.stream(res);
      const body = req.method === 'GET' ? null : await readBody(req);
      const result = await this.api.route(req.method ?? 'GET', path, url.searchParams, body);
      json(res, 200, result);
    } catch (err) {
      if (!(err instanceof TcpoolError)) {
        this.logger.error(`Admin API: ${(err as Error).stack ?? err}`);
        return json(res, 500, { error: { code: codes.ERR_INTERNAL, message: 'Internal error' } });
      }
      const status = err instanceof HttpError ? err.status : statusOf(err.code);
      json(res, status, { error: { code: err.code, message: err.message } });
    }
  }

  private async authorise(req: IncomingMessage): Promise<void> {
    if (!this.verifier.enabled) return;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (m === null || !(await this.verifier.verify(Buffer.from(m[1]))))
      throw new HttpError(
        401,
        codes.ERR_ADMIN_AUTH,
        'Admin API: a valid token is required (Authorization: Bearer <token>)',
      );
  }

  /** The dashboard's files, from the package itself: the page asks nothing of any other host. */
  private async asset(res: ServerResponse, path: string): Promise<void> {
    const file = ASSETS[path];
    const body = await readFile(new URL(file, ASSET_DIR));
    res.writeHead(200, {
      'content-type': TYPES[file.split('.').pop()!],
      'cache-control': 'no-cache',
      // The page may load its own files and talk to this port, nothing else.
      'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'",
      'x-content-type-options': 'nosniff',
    });
    res.end(body);
  }

  /** Server-sent events: the dashboard's figures, once a second, to every open stream. */
  private stream(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write(`retry: 2000\n\n`);
    this.streams.add(res);
    res.on('close', () => {
      this.streams.delete(res);
      if (this.streams.size === 0 && this.ticker !== null) {
        clearInterval(this.ticker);
        this.ticker = null;
      }
    });
    void this.tick();
    this.ticker ??= setInterval(() => void this.tick(), EVENT_INTERVAL_MS);
  }

  private async tick(): Promise<void> {
    const frame = `data: ${JSON.stringify(await this.api.frame())}\n\n`;
    for (const res of this.streams) res.write(frame);
  }
}

function statusOf(code: ErrorCode): number {
  switch (code) {
    case codes.ERR_CONFIG_VALUE:
    case codes.ERR_CONFIG_OPTION:
    case codes.ERR_BAD_ARGUMENT:
      return 400;
    case codes.ERR_ADMIN_NOT_FOUND:
      return 404;
    case codes.ERR_RELOAD_FAILED:
      return 422;
    default:
      return 500;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(`${JSON.stringify(body)}\n`);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new HttpError(413, codes.ERR_BAD_ARGUMENT, `Request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks).toString('utf8').trim();
  if (raw === '') return null;
  try {
    return JSON.parse(raw);
  } catch {
    throw new HttpError(400, codes.ERR_BAD_ARGUMENT, 'Request body is not JSON');
  }
}
