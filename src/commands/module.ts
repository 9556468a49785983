// What a COMMANDS_MODULE exports, and the per-worker lifecycle around it. Each worker thread
// imports the module itself, so module-level state (a database pool opened in `setup`) is
// already per worker.
import type { Config } from '../config/schema.ts';
import type { CommandDefinition, CommandSpec } from './registry.ts';

/** What `setup` gets: the worker it runs in. */
export interface WorkerHandle {
  /** Index of the worker thread (0 … THREAD_POOL_SIZE-1). */
  readonly id: number;
  readonly config: Readonly<Config>;
  /** Writes to the server's log, with the worker's index. */
  readonly log: {
    debug(msg: string): void;
    info(msg: string): void;
    warn(msg: string): void;
    error(msg: string): void;
  };
}

/**
 * A command module: its commands and the hooks around them. `setup(worker)` runs in each worker
 * before it accepts clients (open pools, load data; a throw stops start-up, naming the module);
 * `teardown()` runs when the worker stops (shutdown, drain, resize), within SHUTDOWN_TIMEOUT_MS.
 */
export interface CommandModule<
  C extends readonly (CommandDefinition | CommandSpec)[] = readonly CommandSpec[],
> {
  readonly commands: C;
  readonly setup?: (worker: WorkerHandle) => void | Promise<void>;
  readonly teardown?: () => void | Promise<void>;
}

/** Types a module object (the identity at run time): `export default defineModule({ ... })`. */
export function defineModule<const C extends readonly (CommandDefinition | CommandSpec)[]>(
  mod: CommandModule<C>,
): CommandModule<C> {
  return mod;
}
