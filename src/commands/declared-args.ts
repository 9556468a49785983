// Declarative arguments: a command lists what it takes, and tcpool derives its arity, usage line,
// COMMAND DOCS, the parsing into typed values and the wrong-argument replies from that one list.
// The declarations stay on the CommandSpec (`spec.args`) for anything else that needs a schema.
import { badArgument, type ReplyError } from '../errors.ts';

interface ArgBase {
  /** The name `run` finds the value under; also the usage word. */
  readonly name: string;
  /** One sentence, for COMMAND DOCS and schemas. */
  readonly summary?: string;
  /** May be left out (only at the end, or before other optional arguments). */
  readonly optional?: boolean;
  /**
   * Takes every remaining argument as a list (last argument only); one at least unless optional.
   */
  readonly variadic?: boolean;
  /**
   * Takes every remaining argument as one text joined by single spaces (last argument only). As
   * the only argument, the line protocol passes everything after the name byte for byte (as ECHO).
   */
  readonly rest?: boolean;
}

export interface StringArg extends ArgBase {
  /** UTF-8 text. */
  readonly type: 'string';
  readonly maxLength?: number;
}
export interface BytesArg extends ArgBase {
  /** The bytes exactly as sent, as a Buffer (binary-safe). */
  readonly type: 'bytes';
  readonly maxLength?: number;
}
export interface IntegerArg extends ArgBase {
  /** A safe integer in decimal, within [min, max] when given. */
  readonly type: 'integer';
  readonly min?: number;
  readonly max?: number;
}
export interface NumberArg extends ArgBase {
  /** A finite decimal number, within [min, max] when given. */
  readonly type: 'number';
  readonly min?: number;
  readonly max?: number;
}
export interface EnumArg extends ArgBase {
  /** One of `values`, matched case-insensitively, passed to `run` as declared. */
  readonly type: 'enum';
  readonly values: readonly string[];
}
/** A scalar as the value of a key=value option. */
export type OptionDecl =
  | Omit<StringArg, 'name' | 'optional' | 'variadic' | 'rest'>
  | Omit<BytesArg, 'name' | 'optional' | 'variadic' | 'rest'>
  | Omit<IntegerArg, 'name' | 'optional' | 'variadic' | 'rest'>
  | Omit<NumberArg, 'name' | 'optional' | 'variadic' | 'rest'>
  | Omit<EnumArg, 'name' | 'optional' | 'variadic' | 'rest'>;
export interface OptionsArg {
  /** `key=value` words after the positional arguments, each key at most once, all optional. */
  readonly type: 'options';
  readonly name: string;
  readonly summary?: string;
  readonly options: Readonly<Record<string, OptionDecl>>;
}
export type ArgDecl = StringArg | BytesArg | IntegerArg | NumberArg | EnumArg | OptionsArg;

// The types `run` receives, inferred from the declarations.
type Scalar<A> = A extends { type: 'string' }
  ? string
  : A extends { type: 'bytes' }
    ? Buffer
    : A extends { type: 'integer' | 'number' }
      ? number
      : A extends { type: 'enum'; values: readonly (infer V)[] }
        ? V
        : never;
type Value<A> = A extends { type: 'options'; options: infer O }
  ? { [K in keyof O]?: Scalar<O[K]> }
  : A extends { rest: true }
    ? A extends { optional: true }
      ? string | undefined
      : string
    : A extends { variadic: true }
      ? Scalar<A>[]
      : A extends { optional: true }
        ? Scalar<A> | undefined
        : Scalar<A>;
/** `run`'s second argument for these declarations: each value under its argument's name. */
export type ArgValues<T extends readonly ArgDecl[]> = { [A in T[number] as A['name']]: Value<A> };

/** What the declarations come to (computed once per command). */
export interface ArgShape {
  minArgs: number;
  maxArgs: number;
  usage: string;
  /** The one argument takes the rest of the line byte for byte on the line protocol. */
  restOfLine: boolean;
  parse(command: string, usage: string, args: Buffer[]): Record<string, unknown> | ReplyError;
}

const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** Validates declarations; returns why they are wrong, or null. */
export function checkDecls(decls: readonly ArgDecl[]): string | null {
  if (!Array.isArray(decls)) return 'args must be an array of argument declarations';
  const names = new Set<string>();
  let optionalSeen = false;
  for (const [i, d] of decls.entries()) {
    const last = i === decls.length - 1;
    if (typeof d !== 'object' || d === null) return `args[${i}] must be an object`;
    if (typeof d.name !== 'string' || !ARG_NAME.test(d.name))
      return `args[${i}]: name must be a word (letters, digits, "_", "-")`;
    if (names.has(d.name)) return `args: "${d.name}" is declared twice`;
    names.add(d.name);
    const where = `argument "${d.name}"`;
    if (d.type === 'options') {
      if (!last) return `${where}: options must be the last argument`;
      if (typeof d.options !== 'object' || d.options === null)
        return `${where}: options must map each key to a declaration`;
      for (const [key, o] of Object.entries(d.options as Record<string, OptionDecl>)) {
        if (!ARG_NAME.test(key)) return `${where}: option key "${key}" must be a word`;
        const why = checkScalar(o);
        if (why !== null) return `${where}, option "${key}": ${why}`;
      }
      continue;
    }
    const why = checkScalar(d);
    if (why !== null) return `${where}: ${why}`;
    if ((d.variadic || d.rest) && !last)
      return `${where}: only the last argument can take the rest`;
    if (d.variadic && d.rest) return `${where}: variadic and rest exclude each other`;
    if (d.rest && d.type !== 'string' && d.type !== 'bytes')
      return `${where}: rest needs type string or bytes`;
    if (optionalSeen && !d.optional)
      return `${where}: a required argument cannot follow an optional one`;
    if (d.optional) optionalSeen = true;
  }
  return null;
}

function checkScalar(d: OptionDecl): string | null {
  switch (d?.type) {
    case 'string':
    case 'bytes':
      return d.maxLength === undefined || (Number.isInteger(d.maxLength) && d.maxLength >= 0)
        ? null
        : 'maxLength must be a non-negative integer';
    case 'integer':
    case 'number':
      if (d.min !== undefined && typeof d.min !== 'number') return 'min must be a number';
      if (d.max !== undefined && typeof d.max !== 'number') return 'max must be a number';
      return d.min !== undefined && d.max !== undefined && d.min > d.max
        ? 'min is above max'
        : null;
    case 'enum':
      return Array.isArray(d.values) &&
        d.values.length > 0 &&
        d.values.every((v) => typeof v === 'string' && /^\S+$/.test(v))
        ? null
        : 'values must be a non-empty list of words';
    default:
      return 'type must be string, bytes, integer, number, enum or options';
  }
}

/** "an integer from 1 to 100", for usage errors and docs. */
function describe(d: OptionDecl): string {
  switch (d.type) {
    case 'string':
    case 'bytes':
      return d.maxLength === undefined ? 'text' : `at most ${d.maxLength} bytes`;
    case 'integer':
    case 'number': {
      const what = d.type === 'integer' ? 'an integer' : 'a number';
      if (d.min !== undefined && d.max !== undefined) return `${what} from ${d.min} to ${d.max}`;
      if (d.min !== undefined) return `${what} of at least ${d.min}`;
      if (d.max !== undefined) return `${what} of at most ${d.max}`;
      return what;
    }
    case 'enum':
      return `one of ${d.values.join(', ')}`;
  }
}

function usageWord(d: ArgDecl): string {
  if (d.type === 'options')
    return Object.entries(d.options as Record<string, OptionDecl>)
      .map(([k, o]) => `[${k}=${o.type === 'enum' ? o.values.join('|') : `<${o.type}>`}]`)
      .join(' ');
  const core = d.type === 'enum' ? d.values.join('|') : `<${d.name}>`;
  const word = d.variadic || d.rest ? `${core} ...` : core;
  return d.optional ? `[${word}]` : word;
}

const INTEGER = /^-?(0|[1-9][0-9]{0,15})$/;
const NUMBER = /^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/;

/** One raw argument as the declared scalar, or the reason it is not one. */
function convert(d: OptionDecl, raw: Buffer): unknown {
  switch (d.type) {
    case 'bytes':
      return d.maxLength !== undefined && raw.length > d.maxLength ? null : raw;
    case 'string':
      return d.maxLength !== undefined && raw.length > d.maxLength ? null : raw.toString('utf8');
    case 'integer':
    case 'number': {
      const s = raw.toString('latin1');
      if (!(d.type === 'integer' ? INTEGER : NUMBER).test(s)) return null;
      const n = Number(s);
      if (!Number.isFinite(n) || (d.type === 'integer' && !Number.isSafeInteger(n))) return null;
      if ((d.min !== undefined && n < d.min) || (d.max !== undefined && n > d.max)) return null;
      return n;
    }
    case 'enum': {
      const s = raw.toString('latin1').toLowerCase();
      return d.values.find((v) => v.toLowerCase() === s) ?? null;
    }
  }
}

function invalid(command: string, usage: string, what: string, d: OptionDecl): ReplyError {
  const must = `must be ${describe(d)}`;
  return badArgument(
    `Invalid ${what} for '${command}': ${must} (usage: ${usage})`,
    `ERR invalid ${what} for '${command.toLowerCase()}' command: ${must}`,
  );
}

/** Arity, usage and the parser for a declaration list (already checked by checkDecls). */
export function shapeOf(name: string, decls: readonly ArgDecl[]): ArgShape {
  let minArgs = 0;
  let maxArgs = 0;
  for (const d of decls) {
    if (d.type === 'options' || d.variadic || d.rest) maxArgs = Infinity;
    else maxArgs++;
    if (d.type !== 'options' && !d.optional) minArgs++;
  }
  const usage = [name, ...decls.map(usageWord)].join(' ');
  const only = decls.length === 1 ? decls[0] : null;
  const restOfLine = only !== null && only.type !== 'options' && only.rest === true;
  const last = decls[decls.length - 1];
  const options = last?.type === 'options' ? last : null;
  const positional = options === null ? decls : decls.slice(0, -1);

  /**
   * Whether a word is one of the trailing key=value options rather than the value of an optional
   * argument: a known key always is; for arguments that cannot hold "=" (numbers, enums) any
   * key=value word is, so a misspelt option gets "unknown option" rather than "invalid value".
   */
  const isOption = (raw: Buffer, type: ArgDecl['type'] = 'string'): boolean => {
    if (options === null) return false;
    const eq = raw.indexOf(0x3d); // "="
    if (eq <= 0) return false;
    const key = raw.toString('latin1', 0, eq);
    if (key.toLowerCase() in lowerKeys) return true;
    return type !== 'string' && type !== 'bytes' && ARG_NAME.test(key);
  };
  const lowerKeys: Record<string, string> = {};
  if (options !== null)
    for (const k of Object.keys(options.options)) lowerKeys[k.toLowerCase()] = k;

  const parse = (
    command: string,
    use: string,
    args: Buffer[],
  ): Record<string, unknown> | ReplyError => {
    const out: Record<string, unknown> = {};
    let i = 0;
    for (const d of positional) {
      if (d.type === 'options') continue; // only ever last, handled below
      if (d.rest) {
        const parts = args.slice(i);
        i = args.length;
        if (parts.length === 0) continue;
        const joined = parts.length === 1 ? parts[0] : Buffer.concat(joinWithSpaces(parts));
        const v = convert(d, joined);
        if (v === null) return invalid(command, use, `'${d.name}'`, d);
        out[d.name] = v;
        continue;
      }
      if (d.variadic) {
        const list: unknown[] = [];
        while (i < args.length && !isOption(args[i], d.type)) {
          const v = convert(d, args[i++]);
          if (v === null) return invalid(command, use, `'${d.name}'`, d);
          list.push(v);
        }
        if (list.length === 0 && !d.optional) return missing(command, use);
        out[d.name] = list;
        continue;
      }
      if (i >= args.length || (d.optional && isOption(args[i], d.type))) {
        if (!d.optional) return missing(command, use);
        continue;
      }
      const v = convert(d, args[i++]);
      if (v === null) return invalid(command, use, `'${d.name}'`, d);
      out[d.name] = v;
    }
    if (options !== null) {
      const given: Record<string, unknown> = {};
      for (; i < args.length; i++) {
        const raw = args[i];
        const eq = raw.indexOf(0x3d);
        const key = eq > 0 ? lowerKeys[raw.toString('latin1', 0, eq).toLowerCase()] : undefined;
        if (key === undefined || key in given) return unknownOption(command, use, raw, eq);
        const decl = options.options[key];
        const v = convert(decl, raw.subarray(eq + 1));
        if (v === null) return invalid(command, use, `option '${key}'`, decl);
        given[key] = v;
      }
      out[options.name] = given;
    }
    if (i < args.length) return missing(command, use); // more than declared
    return out;
  };
  return { minArgs, maxArgs, usage, restOfLine, parse };
}

function joinWithSpaces(parts: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  const space = Buffer.from(' ');
  for (const [i, p] of parts.entries()) {
    if (i > 0) out.push(space);
    out.push(p);
  }
  return out;
}

function missing(command: string, usage: string): ReplyError {
  return badArgument(
    `Wrong arguments for '${command}' (usage: ${usage})`,
    `ERR wrong number of arguments for '${command.toLowerCase()}' command`,
  );
}

function unknownOption(command: string, usage: string, raw: Buffer, eq: number): ReplyError {
  const word = raw
    .toString('utf8', 0, eq > 0 ? eq : Math.min(raw.length, 64))
    .replace(/[\r\n]/g, ' ');
  return badArgument(
    `Unknown or repeated option '${word}' for '${command}' (usage: ${usage})`,
    `ERR unknown or repeated option '${word}' for '${command.toLowerCase()}' command`,
  );
}

/** COMMAND DOCS "arguments" for redis-cli's hints and clients, in Redis's shape. */
export function argDocs(decls: readonly ArgDecl[]): Record<string, unknown>[] {
  const docs: Record<string, unknown>[] = [];
  const redisType = (d: OptionDecl): string =>
    d.type === 'integer' ? 'integer' : d.type === 'number' ? 'double' : 'string';
  for (const d of decls) {
    if (d.type === 'options') {
      for (const [k, o] of Object.entries(d.options as Record<string, OptionDecl>))
        docs.push({
          name: k,
          type: redisType(o),
          display_text: `${k}=<${o.type}>`,
          optional: true,
        });
      continue;
    }
    if (d.type === 'enum') {
      docs.push({
        name: d.name,
        type: 'oneof',
        optional: d.optional === true,
        multiple: d.variadic === true,
        arguments: d.values.map((v) => ({ name: v, type: 'pure-token', token: v })),
      });
      continue;
    }
    docs.push({
      name: d.name,
      type: redisType(d),
      optional: d.optional === true,
      multiple: d.variadic === true || d.rest === true,
    });
  }
  return docs;
}
