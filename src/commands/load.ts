// Builds a worker's registry: the built-ins, then COMMANDS_MODULE's commands when one is set.
// The module may be a file (.ts, .mts, .cts, .js, .mjs, .cjs) or a package name, export an array
// of commands or a module object with hooks (module.ts), and live in an ES or CommonJS project.
import { existsSync, readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { codes, commandTimedOut, ReplyError, TcpoolError } from '../errors.ts';
import type { Reply } from '../protocol/reply.ts';
import { builtins } from './builtin/index.ts';
import type { CommandContext } from './context.ts';
import type { CommandModule, WorkerHandle } from './module.ts';
import { type CommandSpec, defineCommand, Registry } from './registry.ts';

export interface LoadedCommands {
  registry: Registry;
  /** The module's commands (not the built-ins), in its order. */
  commands: CommandSpec[];
  /** Runs the module's setup in this worker; a failure names the module. */
  setup(worker: WorkerHandle): Promise<void>;
  /** Runs the module's teardown, if any, giving up after `timeoutMs`; never throws. */
  teardown(timeoutMs: number, log: (msg: string) => void): Promise<void>;
}

export async function createRegistry(commandsModule: string): Promise<Registry> {
  return (await loadCommands(commandsModule)).registry;
}

/**
 * Loads the built-ins and COMMANDS_MODULE. `commandTimeoutMs` (COMMAND_TIMEOUT_MS) bounds each
 * asynchronous module command without a `timeout` of its own; 0 means no bound.
 */
export async function loadCommands(
  commandsModule: string,
  commandTimeoutMs = 0,
): Promise<LoadedCommands> {
  const registry = new Registry();
  for (const spec of builtins) registry.register(spec);
  const none: LoadedCommands = {
    registry,
    commands: [],
    setup: async () => {},
    teardown: async () => {},
  };
  if (commandsModule === '') return none;

  const fail = (why: string): never => {
    throw new TcpoolError(codes.ERR_COMMANDS_MODULE, `COMMANDS_MODULE ${commandsModule}: ${why}`);
  };
  let exported: unknown;
  try {
    const url = locate(commandsModule);
    const mod = (await import(url)) as { default?: unknown };
    exported = mod.default;
    // A CommonJS module's `module.exports = { default: [...] }` (what TypeScript's CJS output makes).
    if (isObject(exported) && !Array.isArray(exported) && !('commands' in exported))
      exported = (exported as { default?: unknown }).default ?? exported;
  } catch (err) {
    return fail(`cannot load it (${(err as Error).message.split('\n')[0]})`);
  }
  const mod = asModule(exported);
  if (mod === null)
    return fail(
      'its default export must be an array of commands, or { commands, setup?, teardown? }',
    );
  for (const hook of ['setup', 'teardown'] as const) {
    if (mod[hook] !== undefined && typeof mod[hook] !== 'function')
      fail(`${hook} must be a function`);
  }
  const commands: CommandSpec[] = [];
  for (const def of mod.commands) {
    try {
      const spec = guard(defineCommand(def), commandTimeoutMs);
      registry.register(spec);
      commands.push(spec);
    } catch (err) {
      fail((err as Error).message);
    }
  }
  return {
    registry,
    commands,
    setup: async (worker) => {
      try {
        await mod.setup?.(worker);
      } catch (err) {
        const e = err as Error;
        throw new TcpoolError(
          codes.ERR_COMMANDS_SETUP,
          `COMMANDS_MODULE ${commandsModule}: setup failed in worker ${worker.id}: ${e?.message ?? String(err)}`,
        );
      }
    },
    teardown: async (timeoutMs, log) => {
      if (mod.teardown === undefined) return;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), timeoutMs)));
      try {
        const outcome = await Promise.race([Promise.resolve().then(() => mod.teardown?.()), late]);
        if (outcome === 'late')
          log(`COMMANDS_MODULE ${commandsModule}: teardown did not finish within ${timeoutMs} ms`);
      } catch (err) {
        log(
          `COMMANDS_MODULE ${commandsModule}: teardown failed: ${(err as Error)?.message ?? err}`,
        );
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function asModule(v: unknown): CommandModule<readonly unknown[] & CommandSpec[]> | null {
  if (Array.isArray(v)) return { commands: v };
  if (isObject(v) && Array.isArray(v.commands))
    return v as unknown as CommandModule<readonly unknown[] & CommandSpec[]>;
  return null;
}

/**
 * A file path (relative to the working directory), or else a package name resolved from the
 * working directory's node_modules, as a file: URL.
 */
function locate(name: string): string {
  const path = resolve(name);
  if (existsSync(path) || isAbsolute(name) || name.startsWith('.')) {
    allowEsmSyntaxIn(dirname(path));
    return pathToFileURL(path).href;
  }
  return pathToFileURL(createRequire(join(process.cwd(), 'noop.js')).resolve(name)).href;
}

// A command module written with import/export in a CommonJS project ("type": "commonjs", or a
// .ts file there) would fail with "Unexpected token 'export'". The module's own folder is the
// user's code, not a dependency: files there whose source is plainly ES module syntax load as
// ES modules whatever the package says, as Node's own syntax detection does for typeless packages.
const ESM_SYNTAX = /^[ \t]*(?:export[ \t{*]|import[ \t]+[\w{*'"])/m;
const esmFolders: string[] = [];
let hooked = false;

function allowEsmSyntaxIn(folder: string): void {
  // registerHooks arrived in Node 22.15 (Bun has none): without it such a module needs a .mts/.mjs
  // name. Read off the namespace, as a named import of a missing export fails to link on Bun.
  const registerHooks = (nodeModule as Partial<typeof nodeModule>).registerHooks;
  if (typeof registerHooks !== 'function') return;
  esmFolders.push(folder.endsWith(sep) ? folder : folder + sep);
  if (hooked) return;
  hooked = true;
  registerHooks({
    load(url, context, nextLoad) {
      const result = nextLoad(url, context);
      if (result.format !== 'commonjs' && result.format !== 'commonjs-typescript') return result;
      if (!url.startsWith('file:')) return result;
      const file = fileURLToPath(url);
      if (file.includes(`${sep}node_modules${sep}`)) return result;
      if (!esmFolders.some((f) => file.startsWith(f))) return result;
      const source = result.source ?? readFileSync(file);
      if (!ESM_SYNTAX.test(String(source))) return result;
      const format = result.format === 'commonjs' ? 'module' : 'module-typescript';
      return { ...result, format, source };
    },
  });
}

/**
 * A module command made safe to run: a CommandError thrown (or rejected) becomes its reply, and
 * an asynchronous run is bounded by its timeout; the connection then carries on in order (the
 * late result is dropped).
 */
function guard(spec: CommandSpec, defaultTimeoutMs: number): CommandSpec {
  const ms = spec.timeoutMs ?? defaultTimeoutMs;
  const inner = spec.run;
  const settle = (err: unknown): Reply => {
    if (err instanceof ReplyError) return err;
    throw err;
  };
  const bounded = (ctx: CommandContext, pending: Promise<Reply>): Promise<Reply> => {
    if (ms === 0) return pending.catch(settle);
    return new Promise<Reply>((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        ctx.stats.count(ctx.workerId, 'command_timeouts');
        resolvePromise(commandTimedOut(spec.name, ms));
      }, ms);
      pending.then(
        (r) => {
          clearTimeout(timer);
          resolvePromise(r);
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (err instanceof ReplyError) resolvePromise(err);
          else reject(err);
        },
      );
    });
  };
  return Object.freeze({
    ...spec,
    run: (ctx: CommandContext, args: Buffer[]): Reply | Promise<Reply> => {
      let reply: Reply | Promise<Reply>;
      try {
        reply = inner(ctx, args);
      } catch (err) {
        if (err instanceof ReplyError) return err; // CommandError included
        throw err;
      }
      return reply instanceof Promise ? bounded(ctx, reply) : reply;
    },
  });
}
