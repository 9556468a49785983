// The one command registry. Every command, built in or loaded from COMMANDS_MODULE, is a
// CommandSpec; protocols look commands up here by name and never know their behaviour.
import { codes, TcpoolError, wrongArity } from '../errors.ts';
import type { Reply } from '../protocol/reply.ts';
import type { CommandContext } from './context.ts';

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
  /** May return a promise; replies still go out in request order. Throwing replies "Internal error". */
  readonly run: (ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>;
}

export type CommandFamily = 'core' | 'redis';

type Defaulted = 'restOfLine' | 'maxArgs' | 'minArgs' | 'family' | 'group' | 'flags' | 'noAuth';
export type CommandDefinition = Omit<CommandSpec, Defaulted> &
  Partial<Pick<CommandSpec, Defaulted>>;

const NAME = /^[A-Z][A-Z0-9_.-]{0,63}$/;

/** Validates a command definition and fills in the defaults (no arguments, words split). */
export function defineCommand(def: CommandDefinition): CommandSpec {
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
  const minArgs = def.minArgs ?? 0;
  const maxArgs = def.maxArgs ?? minArgs;
  if (def.family !== undefined && def.family !== 'core' && def.family !== 'redis')
    fail('family must be "core" or "redis"');
  if (!Number.isInteger(minArgs) || minArgs < 0) fail('minArgs must be a non-negative integer');
  if (maxArgs !== Infinity && (!Number.isInteger(maxArgs) || maxArgs < minArgs))
    fail('maxArgs must be >= minArgs');
  const name = def.name.toUpperCase();
  return Object.freeze({
    name,
    usage: typeof def.usage === 'string' && def.usage !== '' ? def.usage : name,
    summary: typeof def.summary === 'string' ? def.summary : '',
    minArgs,
    maxArgs,
    restOfLine: def.restOfLine === true,
    family: def.family ?? 'core',
    group: typeof def.group === 'string' ? def.group : 'generic',
    flags: Array.isArray(def.flags) ? Object.freeze([...def.flags]) : [],
    noAuth: Array.isArray(def.flags) && def.flags.includes('no_auth'),
    run: def.run,
  });
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
