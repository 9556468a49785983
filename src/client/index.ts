// tcpool/client: a pooled, pipelining RESP3 client with end-to-end types.
//
//   import { createClient } from 'tcpool/client';
//   import type commands from './commands.ts';
//   const client = createClient<typeof commands>({ port: 8080 });
//   await client.greet('ann'); // typed from the command module
import { type Arg, Client, type ClientOptions } from './client.ts';
import type { CommandMethods } from './typed.ts';

export { type Arg, type CallOptions, Client, type ClientOptions } from './client.ts';
export { ClientError, clientErrors } from './errors.ts';
export { PushMessage, ReplyDecoder, ServerError } from './reply-decoder.ts';
export type { CommandMethods, Decoded, Params } from './typed.ts';

/** A client whose methods are the commands of module M (any command stays reachable through `call`). */
export type TypedClient<M> = Client & CommandMethods<M>;

/**
 * A pooled client; with a module's type, one method per command. A name the Client itself uses
 * (call, close, ready …) is reached through `client.call('NAME', …)`.
 */
export function createClient<M = unknown>(options: ClientOptions): TypedClient<M> {
  const client = new Client(options);
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (typeof prop !== 'string' || prop in target) return Reflect.get(target, prop, receiver);
      if (prop === 'then') return undefined; // not a thenable: `await client` must not call THEN
      return (...args: Arg[]) => target.call(prop.toUpperCase(), ...args);
    },
  }) as TypedClient<M>;
}
