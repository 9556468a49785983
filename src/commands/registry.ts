// The one command registry. Every command, built in or loaded from COMMANDS_MODULE, is a
// CommandSpec; protocols look commands up here by name and never know their behaviour.
import { codes, ReplyError, TcpoolError, wrongArity } from '../errors.ts';
import type { Reply } from '../protocol/reply.ts';
import type { CommandContext } from './context.ts';
import { type ArgDecl, type ArgValues, checkDecls, shapeOf } from './declared-args.ts';

export interface CommandSpec {
  /** Upper-case name; clients may send it in any case. */
  readonly name: string;
  /** Usage line, e.g. "ECHO <message>". */
  readonly usage: string;
  /** One sentence for HELP. */
  readonly summary: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  /**
   * Line protocol only: everything after "NAME " is one argument, byte for byte (ECHO keeps its
   * spaces). Otherwise the rest of the line is split into space-separated words.
   */
  readonly restOfLine: boolean;
  /**
   * "core": tcpool's own commands; "redis": commands that exist so Redis clients work (HELLO,
   * SELECT, MULTI …). Each protocol says which families it offers (Protocol.offers): the line
   * protocol offers "core" only.
   */
  readonly family: CommandFamily;
  /** For COMMAND DOCS: "connection", "server", "generic" … */
  readonly group: string;
  /** For COMMAND: Redis command flags such as "fast", "loading", "stale". */
  readonly flags: readonly string[];
  /** Runs before AUTH (the "no_auth" flag): AUTH, HELLO, QUIT and HELP. */
  readonly noAuth: boolean;
  /**
   * The declared arguments (defineCommand's `args`), null for a command that takes raw Buffers.
   * Read-only data: the HTTP API's schema and COMMAND DOCS are built from it.
   */
  readonly args: readonly ArgDecl[] | null;
  /** Milliseconds an asynchronous run may take; null: the server's COMMAND_TIMEOUT_MS; 0: none. */
  readonly timeoutMs: number | null;
  /** RATE_LIMIT tokens one call takes (1 unless the definition says otherwise). */
  readonly cost: number;
  /**
   * May return a promise; replies still go out in request order. Throwing replies "Internal error".
   */
  readonly run: (ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>;
}

export type CommandFamily = 'core' | 'redis';

/** Options every definition may give, raw or declared. */
interface DefinitionOptions {
  readonly name: string;
  /** Derived from `args` when they are declared; else the name. */
  readonly usage?: string;
  readonly summary?: string;
  readonly group?: string;
  readonly flags?: readonly string[];
  /** Callable before AUTH (as AUTH and HELP are). */
  readonly noAuth?: boolean;
  /** "redis": a command that exists so Redis clients work; the line protocol does not offer it. */
  readonly family?: CommandFamily;
  /** Milliseconds an asynchronous run may take before the client gets a timeout error; 0: none. */
  readonly timeout?: number;
  /** RATE_LIMIT tokens one call takes (default 1): an expensive command can cost more. */
  readonly cost?: number;
}

/**
 * The raw form: arguments as Buffers, nothing parsed (the hot-path form the built-ins use).
 * `maxArgs` defaults to `minArgs` (an exact count, as Redis's arity); give `maxArgs: Infinity`
 * for "any number".
 */
export interface RawCommandDefinition extends DefinitionOptions {
  readonly args?: undefined;
  readonly minArgs?: number;
  readonly maxArgs?: number;
  readonly restOfLine?: boolean;
  readonly run: (ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>;
}

/** The declared form: `run` gets each argument parsed, checked and typed, under its name. */
export interface DeclaredCommandDefinition<
  A extends readonly ArgDecl[] = readonly ArgDecl[],
  R extends Reply = Reply,
> extends DefinitionOptions {
  readonly args: A;
  readonly run: (ctx: CommandContext, args: ArgValues<A>) => R | Promise<R>;
}

export type CommandDefinition = RawCommandDefinition | DeclaredCommandDefinition;

/**
 * A spec that remembers, for the type checker only, its name, arguments and reply type: what
 * `tcpool/client` reads to type `client.greet('ann')`. `types` is never set at run time.
 */
export interface TypedCommandSpec<N extends string, A, R> extends CommandSpec {
  readonly types?: { readonly name: N; readonly args: A; readonly reply: R };
}

const NAME = /^[A-Z][A-Z0-9_.-]{0,63}$/;
/**
 * Marks specs made by defineCommand: defining one again (a module's list, checked on load) is a
 * no-op. A global symbol, so a spec made by another copy of tcpool (the module imports the
 * installed package, the server runs from a checkout) is recognised too.
 */
const kSpec = Symbol.for('tcpool.CommandSpec');

/** Validates a command definition and fills in the defaults. */
export function defineCommand<
  const N extends string,
  const A extends readonly ArgDecl[],
  R extends Reply,
>(def: DeclaredCommandDefinition<A, R> & { readonly name: N }): TypedCommandSpec<N, A, R>;
export function defineCommand<const N extends string, R extends Reply>(
  def: RawCommandDefinition & {
    readonly name: N;
    readonly run: (ctx: CommandContext, args: Buffer[]) => R | Promise<R>;
  },
): TypedCommandSpec<N, null, R>;
export function defineCommand(def: CommandDefinition | CommandSpec): CommandSpec;
export function defineCommand(def: CommandDefinition | CommandSpec): CommandSpec {
  if ((def as { [kSpec]?: boolean })?.[kSpec] === true) return def as CommandSpec;
  const fail = (why: string): never => {
    throw new TcpoolError(
      codes.ERR_COMMAND_DEFINITION,
      `Invalid command ${JSON.stringify(def?.name)}: ${why}`,
    );
  };
  if (typeof def !== 'object' || def === null) fail('a definition must be an object');
  if (typeof def.name !== 'string' || !NAME.test(def.name.toUpperCase())) {
    fail('name must be a letter followed by up to 63 letters, digits, "_", "." or "-"');
  }
  if (typeof def.run !== 'function') fail('run must be a function');
  if (def.family !== undefined && def.family !== 'core' && def.family !== 'redis')
    fail('family must be "core" or "redis"');
  const name = def.name.toUpperCase();
  const timeout = (def as DefinitionOptions).timeout;
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 0))
    fail('timeout must be a whole number of milliseconds (0: none)');
  const cost = (def as DefinitionOptions).cost ?? 1;
  if (!Number.isInteger(cost) || cost < 0 || cost > 1_000_000)
    fail('cost must be an integer from 0 to 1000000');

  let minArgs: number;
  let maxArgs: number;
  let usage: string;
  let restOfLine: boolean;
  let run: CommandSpec['run'];
  let args: readonly ArgDecl[] | null = null;
  if (def.args !== undefined && def.args !== null) {
    const why = checkDecls(def.args);
    if (why !== null) fail(why);
    if ('minArgs' in def || 'maxArgs' in def || 'restOfLine' in def)
      fail('give either args or minArgs/maxArgs/restOfLine, not both');
    args = Object.freeze(def.args.map((d) => Object.freeze({ ...d })));
    const shape = shapeOf(name, args);
    ({ minArgs, maxArgs, restOfLine } = shape);
    usage = typeof def.usage === 'string' && def.usage !== '' ? def.usage : shape.usage;
    const typedRun = def.run as (ctx: CommandContext, a: Record<string, unknown>) => Reply;
    run = (ctx, raw) => {
      const parsed = shape.parse(name, usage, raw);
      return parsed instanceof ReplyError ? parsed : typedRun(ctx, parsed);
    };
  } else {
    const raw = def as RawCommandDefinition;
    minArgs = raw.minArgs ?? 0;
    maxArgs = raw.maxArgs ?? minArgs;
    if (!Number.isInteger(minArgs) || minArgs < 0) fail('minArgs must be a non-negative integer');
    if (maxArgs !== Infinity && (!Number.isInteger(maxArgs) || maxArgs < minArgs))
      fail('maxArgs must be >= minArgs');
    usage = typeof raw.usage === 'string' && raw.usage !== '' ? raw.usage : name;
    restOfLine = raw.restOfLine === true;
    run = raw.run;
  }
  const flags = Array.isArray(def.flags) ? [...def.flags] : [];
  const noAuth = (def as DefinitionOptions).noAuth === true || flags.includes('no_auth');
  if (noAuth && !flags.includes('no_auth')) flags.push('no_auth');
  const spec: CommandSpec = Object.freeze({
    name,
    usage,
    summary: typeof def.summary === 'string' ? def.summary : '',
    minArgs,
    maxArgs,
    restOfLine,
    family: def.family ?? 'core',
    group: typeof def.group === 'string' ? def.group : 'generic',
    flags: Object.freeze(flags),
    noAuth,
    args,
    timeoutMs: timeout ?? null,
    cost,
    run,
    [kSpec]: true,
  });
  return spec;
}

export class Registry {
  private readonly byName = new Map<string, CommandSpec>();
  /** For lookups straight from request bytes: specs and their upper-case names, by name length. */
  private readonly byLength: { spec: CommandSpec; name: Buffer }[][] = [];

  register(spec: CommandSpec): void {
    if (this.byName.has(spec.name)) {
      throw new TcpoolError(
        codes.ERR_COMMAND_DEFINITION,
        `Command ${spec.name} is already registered`,
      );
    }
    this.byName.set(spec.name, spec);
    const name = Buffer.from(spec.name, 'latin1');
    this.byLength[name.length] ??= [];
    this.byLength[name.length].push({ spec, name });
  }

  /**
   * Case-insensitive lookup of the name in buf[start, end) without making a string: the hot path
   * of every request.
   */
  lookupBytes(buf: Buffer, start: number, end: number): CommandSpec | undefined {
    const candidates = this.byLength[end - start];
    if (candidates === undefined) return undefined;
    next: for (let c = 0; c < candidates.length; c++) {
      const name = candidates[c].name;
      for (let i = 0, j = start; j < end; i++, j++) {
        let b = buf[j];
        if (b >= 0x61 && b <= 0x7a) b -= 0x20; // a-z → A-Z
        if (b !== name[i]) continue next;
      }
      return candidates[c].spec;
    }
    return undefined;
  }

  /** Case-insensitive; upper-case names (what clients usually send) skip the case conversion. */
  lookup(name: string): CommandSpec | undefined {
    return this.byName.get(name) ?? this.byName.get(name.toUpperCase());
  }

  /** Every command, in registration order; `offered` keeps those a protocol offers. */
  list(offered?: (spec: CommandSpec) => boolean): CommandSpec[] {
    const all = [...this.byName.values()];
    return offered === undefined ? all : all.filter(offered);
  }
}

/** Redis's arity: the argument count including the name, negative when it is a minimum. */
export function redisArity(spec: CommandSpec): number {
  return spec.minArgs === spec.maxArgs ? spec.minArgs + 1 : -(spec.minArgs + 1);
}

/** The arity error for `spec`, or null when `count` arguments are acceptable. */
export function checkArity(spec: CommandSpec, count: number) {
  return count < spec.minArgs || count > spec.maxArgs ? wrongArity(spec.name, spec.usage) : null;
}
