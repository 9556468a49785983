// The HTTP API (HTTP_PORT): HTTP/1.1 and HTTP/2 (h2c prior knowledge; ALPN h2 over TLS with
// HTTP_TLS), every command through the one executor, replies as JSON (json.ts):
//   POST /v1/commands/{NAME}   {"args": [...]}, {"args": {name: value, ...}} (named: named-args.ts)
//                              or one application/octet-stream argument
//   POST /v1/pipeline          [["NAME", arg, ...] or {"command": "NAME", "args": ...}, ...],
//                              answered in order
//   GET  /v1/commands          the registry: names, usage, argument counts
//   GET  /v1/openapi.json      OpenAPI 3.1, generated from the registry (openapi.ts)
// AUTH is "Authorization: Bearer <token>" (verified once per connection), checked against the
// same tokens, per-IP failure lock-out and RATE_LIMIT as every transport.
import { performance } from 'node:perf_hooks';
import type { Config } from '../../config/schema.ts';
import { codes, ReplyError, replyErrors } from '../../errors.ts';
import type { Reply } from '../../protocol/reply.ts';
import { traceContextFrom } from '../../tracing/tracing.ts';
import { execute, refuse as refuseRequest } from '../../worker/executor.ts';
import type { Transport, TransportHost } from '../transport.ts';
import { type WebClient, WebPort, type WebRequest, type WebResponse } from '../web/port.ts';
import { argsFromJson, badRequest, errorJson, httpStatus, type Json, replyJson } from './json.ts';
import { namedArgs } from './named-args.ts';
import { openApiDocument } from './openapi.ts';
import { HttpSession } from './session.ts';

const COMMAND_PATH = '/v1/commands/';

function send(
  host: TransportHost,
  client: WebClient,
  res: WebResponse,
  status: number,
  body: Json,
): void {
  const text = JSON.stringify(body);
  const limit = host.limits.outputLimit;
  if (limit > 0 && client.socket.writableLength + text.length > limit) {
    host.count('output_limit_disconnects');
    host.throttle.warn(
      'Output buffer limit',
      `Client ${client.peer} disconnected: its unsent replies would pass OUTPUT_BUFFER_LIMIT (${limit} bytes)`,
    );
    client.destroy();
    return;
  }
  (res as import('node:http').ServerResponse).writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function refuse(host: TransportHost, client: WebClient, res: WebResponse, error: ReplyError): void {
  if (error.code === codes.ERR_HTTP_REQUEST) host.count('http_bad_requests');
  send(
    host,
    client,
    res,
    error.code === codes.ERR_HTTP_REQUEST ? statusOf(error) : httpStatus(error),
    errorJson(error),
  );
}

/** Bad-request errors carry their status in a WeakMap, set where they are made. */
const statuses = new WeakMap<ReplyError, number>();
function httpError(status: number, message: string): ReplyError {
  const e = badRequest(message);
  statuses.set(e, status);
  return e;
}
const statusOf = (e: ReplyError): number => statuses.get(e) ?? 400;

/** The body, up to HTTP_MAX_BODY_BYTES (a declared length over it is refused before reading). */
function readBody(req: WebRequest, limit: number): Promise<Buffer | ReplyError> {
  const declared = Number(req.headers['content-length']);
  const tooLarge = () => httpError(413, `request body larger than HTTP_MAX_BODY_BYTES (${limit})`);
  if (declared > limit) return Promise.resolve(tooLarge());
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        resolve(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks, size));
      done = true;
    });
    req.on('error', () => {
      if (!done) resolve(httpError(400, 'request body aborted'));
      done = true;
    });
  });
}

function parseJson(body: Buffer): unknown | ReplyError {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return httpError(400, 'the body is not valid JSON');
  }
}

/** Whether the request may run commands: no AUTH, an exempt network, or a verified bearer token. */
async function authenticate(
  host: TransportHost,
  client: WebClient,
  req: WebRequest,
): Promise<ReplyError | boolean> {
  if (host.startsAuthenticated(client.admitted.ip)) return true;
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !/^bearer /i.test(header)) return false;
  const token = header.slice(7).trim();
  if (client.verifiedToken === token) return true;
  const probe = new HttpSession(host, client, false);
  const outcome = await probe.authenticate(Buffer.from(token), null);
  if (outcome === 'ok') {
    client.verifiedToken = token;
    return true;
  }
  return outcome === 'blocked' ? replyErrors.authBlocked : replyErrors.authInvalid;
}

/** A command's arguments: in order, or an object of its declared arguments by name. */
type JsonArgs = Buffer[] | Record<string, unknown>;

/**
 * Runs one command in `session`; the rate tokens the connection holds go with it. Named arguments
 * that do not fit the declarations are refused where wrong arguments are: after AUTH, and inside
 * MULTI they doom the transaction.
 */
async function run(session: HttpSession, name: string, given: JsonArgs): Promise<Reply> {
  const client = session.client;
  const spec = session.registry.lookup(name);
  if (spec === undefined)
    return new ReplyError(codes.ERR_UNKNOWN_COMMAND, `Unknown command '${name.slice(0, 128)}'`);
  const args = Array.isArray(given) ? given : namedArgs(spec, given);
  if (args instanceof ReplyError) {
    session.lastCommand = spec.name;
    const error = session.authenticated || spec.noAuth ? args : replyErrors.authRequired;
    session.owner.metrics.error(error.code);
    return refuseRequest(session, error, spec);
  }
  session.rateTokens = client.rateTokens;
  const started = performance.now();
  session.sent = null;
  let reply = execute(session, spec, args);
  client.rateTokens = session.rateTokens;
  client.lastCommand = spec.name;
  session.owner.stats.addCommands(session.owner.workerId, 1);
  if (reply instanceof Promise)
    reply = await reply.catch((err: unknown) => session.internalError(spec.name, err));
  // Metrics count HTTP requests with RESP's (the API's JSON keeps RESP3's types).
  const metrics = session.owner.metrics;
  metrics.asyncCommand(metrics.indexOf(spec), 1, started);
  if (reply instanceof ReplyError) metrics.error(reply.code);
  return reply;
}

/** {"result": …}, with "sent": […] before it when the command sent replies ahead (ctx.send). */
function resultJson(session: HttpSession, reply: Reply): Json {
  const sent = session.sent;
  if (sent === null) return { result: replyJson(reply) };
  return { sent: sent.map(replyJson), result: replyJson(reply) };
}

async function handle(
  host: TransportHost,
  req: WebRequest,
  res: WebResponse,
  client: WebClient,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const method = req.method ?? 'GET';
  if (method === 'GET' && path === '/v1/commands') {
    const commands = host.registry.list().map((c) => ({
      name: c.name,
      usage: c.usage,
      summary: c.summary,
      minArgs: c.minArgs,
      maxArgs: c.maxArgs === Infinity ? null : c.maxArgs,
      group: c.group,
      family: c.family,
      flags: [...c.flags],
      args: c.args === null ? null : (JSON.parse(JSON.stringify(c.args)) as Json),
    }));
    return send(host, client, res, 200, { commands });
  }
  if (method === 'GET' && path === '/v1/openapi.json')
    return send(
      host,
      client,
      res,
      200,
      openApiDocument(host.registry, host.server.version) as Json,
    );
  const isCommand = path.startsWith(COMMAND_PATH) && path.length > COMMAND_PATH.length;
  if (!isCommand && path !== '/v1/pipeline')
    return refuse(host, client, res, httpError(404, `no such path: ${path.slice(0, 128)}`));
  if (method !== 'POST') return refuse(host, client, res, httpError(405, `${path} takes POST`));

  const auth = await authenticate(host, client, req);
  if (auth instanceof ReplyError) return refuse(host, client, res, auth);
  const body = await readBody(req, host.config.HTTP_MAX_BODY_BYTES);
  if (body instanceof ReplyError) {
    if (client.session === null) res.setHeader('connection', 'close'); // the body was not read
    return refuse(host, client, res, body);
  }
  const session = new HttpSession(host, client, auth);
  session.traceContext = traceContextFrom(req.headers);
  if (isCommand) {
    const name = decodeURIComponent(path.slice(COMMAND_PATH.length));
    let args: JsonArgs | ReplyError = [];
    const type = String(req.headers['content-type'] ?? '');
    if (type.startsWith('application/octet-stream')) args = [body];
    else if (body.length > 0) {
      const parsed = parseJson(body);
      if (parsed instanceof ReplyError) return refuse(host, client, res, parsed);
      if (!isObject(parsed) || Object.keys(parsed).some((k) => k !== 'args'))
        return refuse(host, client, res, httpError(400, BODY_SHAPE));
      args = jsonArgs(parsed.args);
    }
    if (args instanceof ReplyError) return refuse(host, client, res, args);
    const reply = await run(session, name, args);
    if (reply instanceof ReplyError) return refuse(host, client, res, reply);
    return send(host, client, res, 200, resultJson(session, reply));
  }
  const parsed = parseJson(body);
  if (parsed instanceof ReplyError) return refuse(host, client, res, parsed);
  if (!Array.isArray(parsed) || parsed.length === 0)
    return refuse(host, client, res, httpError(400, `the body must be an array of ${ITEM_SHAPE}`));
  const requests: [string, JsonArgs][] = [];
  for (const [i, item] of parsed.entries()) {
    const request = pipelineItem(item);
    if (request instanceof ReplyError)
      return refuse(host, client, res, httpError(400, `command ${i}: ${request.message}`));
    requests.push(request);
  }
  const results: Json[] = [];
  for (const [name, args] of requests) {
    const reply = await run(session, name, args);
    results.push(reply instanceof ReplyError ? errorJson(reply) : resultJson(session, reply));
  }
  return send(host, client, res, 200, { results });
}

const BODY_SHAPE = 'the body must be {"args": [...]} or {"args": {"<argument>": value, ...}}';
const ITEM_SHAPE =
  'commands, each ["NAME", arg, ...] or {"command": "NAME", "args": [...] | {...}}';

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** "args" of a body: absent (none), an array, or an object of named arguments. */
function jsonArgs(given: unknown): JsonArgs | ReplyError {
  if (given === undefined) return [];
  if (Array.isArray(given)) return argsFromJson(given);
  if (isObject(given)) return given;
  return httpError(400, '"args" must be an array, or an object of named arguments');
}

/** One pipeline command: ["NAME", arg, ...], or {"command": "NAME", "args": ...}. */
function pipelineItem(item: unknown): [string, JsonArgs] | ReplyError {
  if (Array.isArray(item)) {
    if (typeof item[0] !== 'string') return httpError(400, `each must be ${ITEM_SHAPE}`);
    const args = argsFromJson(item.slice(1));
    return args instanceof ReplyError ? args : [item[0], args];
  }
  if (
    !isObject(item) ||
    typeof item.command !== 'string' ||
    Object.keys(item).some((k) => k !== 'command' && k !== 'args')
  )
    return httpError(400, `each must be ${ITEM_SHAPE}`);
  const args = jsonArgs(item.args);
  return args instanceof ReplyError ? args : [item.command, args];
}

export const http: Transport = {
  name: 'http',
  portKeys: (config: Config) => (config.HTTP_PORT === 0 ? [] : ['HTTP_PORT']),
  tlsKeys: (config: Config) => (config.HTTP_PORT !== 0 && config.HTTP_TLS ? ['HTTP_TLS'] : []),
  async start(host, ports, tls) {
    const port = ports.HTTP_PORT;
    if (port === undefined) return;
    const web = WebPort.of(host, port, host.config.HTTP_TLS ? tls : null);
    web.request = (req, res, client) => {
      handle(host, req, res, client).catch((err: unknown) => {
        host.logger.error(`HTTP request failed for ${client.peer}: ${(err as Error).message}`);
        if (!res.headersSent) send(host, client, res, 500, errorJson(replyErrors.internal));
        else res.destroy();
      });
    };
    await web.start();
  },
};
