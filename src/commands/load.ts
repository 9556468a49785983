// Builds a worker's registry: the built-ins, then COMMANDS_MODULE's commands when one is set.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { codes, TcpoolError } from '../errors.ts';
import { builtins } from './builtin/index.ts';
import { defineCommand, Registry } from './registry.ts';

export async function createRegistry(commandsModule: string): Promise<Registry> {
  const registry = new Registry();
  for (const spec of builtins) registry.register(spec);
  if (commandsModule === '') return registry;

  const fail = (why: string): never => {
    throw new TcpoolError(codes.ERR_COMMANDS_MODULE, `COMMANDS_MODULE ${commandsModule}: ${why}`);
  };
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(resolve(commandsModule)).href);
  } catch (err) {
    return fail(`cannot load it (${(err as Error).message.split('\n')[0]})`);
  }
  if (!Array.isArray(mod.default))
    return fail('its default export must be an array of command definitions');
  for (const def of mod.default) {
    try {
      registry.register(defineCommand(def));
    } catch (err) {
      fail((err as Error).message);
    }
  }
  return registry;
}
