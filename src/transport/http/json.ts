// The HTTP API's encoding: every Reply as JSON, the RESP3 types kept apart so nothing is lost
// (a set is not a list, a double is not an integer), and request arguments from JSON.
import { CommandError, codes, ReplyError } from '../../errors.ts';
import {
  Double,
  Forms,
  Preencoded,
  Push,
  type Reply,
  Replies,
  RespMap,
  RespSet,
  Status,
  Verbatim,
} from '../../protocol/reply.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** An HTTP status for each error code (everything else is a 400: the request was at fault). */
const STATUS: Partial<Record<string, number>> = {
  [codes.ERR_UNKNOWN_COMMAND]: 404,
  [codes.ERR_AUTH_REQUIRED]: 401,
  [codes.ERR_AUTH_INVALID]: 401,
  [codes.ERR_AUTH_BLOCKED]: 429,
  [codes.ERR_RATE_LIMIT]: 429,
  [codes.ERR_TOO_MANY_CONNECTIONS]: 503,
  [codes.ERR_LIMIT_CONNECTIONS_PER_IP]: 503,
  [codes.ERR_PROTECTED_MODE]: 403,
  [codes.ERR_INTERNAL]: 500,
  [codes.ERR_NOT_SUPPORTED]: 501,
  [codes.ERR_TRANSACTION]: 409,
};

/** A command's own CommandError carries its status; the catalogue's errors map by code. */
export function httpStatus(error: ReplyError): number {
  return error instanceof CommandError ? error.status : (STATUS[error.code] ?? 400);
}

/** The error as JSON; a CommandError's code is the command's own word ("NOTFOUND"). */
export function errorJson(error: ReplyError): { error: { code: string; message: string } } {
  const code = error instanceof CommandError ? error.replyCode : error.code;
  return { error: { code, message: error.message } };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes as a string when they are valid UTF-8, else {"base64": …}. */
function bytesJson(b: Buffer): Json {
  try {
    return utf8.decode(b);
  } catch {
    return { base64: b.toString('base64') };
  }
}

function doubleJson(v: number): Json {
  return Number.isFinite(v) ? v : Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
}

/**
 * One reply as JSON: strings, integers, booleans, null and arrays as themselves; the RESP3 shapes
 * as one-key objects: {"map": {…}}, {"set": […]}, {"double": n}, {"bignum": "…"},
 * {"verbatim": text, "format": "txt"}, {"push": […]}, {"error": {code, message}}; bytes that are
 * not UTF-8 as {"base64": …}.
 */
export function replyJson(r: Reply): Json {
  if (typeof r === 'string') return r;
  if (r instanceof Buffer) return bytesJson(r);
  if (typeof r === 'number')
    return Number.isSafeInteger(r)
      ? r
      : Number.isInteger(r)
        ? { bignum: String(r) }
        : { double: doubleJson(r) };
  if (typeof r === 'boolean' || r === null) return r;
  if (r instanceof ReplyError) return errorJson(r);
  if (r instanceof Preencoded || r instanceof Status) return r.text;
  if (r instanceof Forms) return replyJson(r.data);
  if (r instanceof Double) return { double: doubleJson(r.value) };
  if (r instanceof Verbatim) return { verbatim: r.text, format: r.format };
  if (r instanceof RespMap) {
    const map: Record<string, Json> = {};
    for (const [k, v] of r.entries) {
      const key = replyJson(k);
      map[typeof key === 'string' ? key : JSON.stringify(key)] = replyJson(v);
    }
    return { map };
  }
  if (r instanceof RespSet) return { set: r.items.map(replyJson) };
  if (r instanceof Push) return { push: r.items.map(replyJson) };
  if (r instanceof Replies) return r.items.map(replyJson);
  return (r as readonly Reply[]).map(replyJson);
}

export const badRequest = (message: string): ReplyError =>
  new ReplyError(codes.ERR_HTTP_REQUEST, message);

/** One argument: a string, or {"base64": "…"} for bytes (or the bytes of an octet-stream body). */
export function argFromJson(value: unknown): Buffer | ReplyError {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'number' || typeof value === 'boolean') return Buffer.from(String(value));
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { base64?: unknown }).base64 === 'string' &&
    Object.keys(value).length === 1
  )
    return Buffer.from((value as { base64: string }).base64, 'base64');
  return badRequest('each argument must be a string or {"base64": "..."}');
}

export function argsFromJson(values: readonly unknown[]): Buffer[] | ReplyError {
  const args: Buffer[] = [];
  for (const v of values) {
    const a = argFromJson(v);
    if (a instanceof ReplyError) return a;
    args.push(a);
  }
  return args;
}
