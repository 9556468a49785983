// End-to-end types: from the type of a server's command module to typed client methods, as tRPC
// does for HTTP. `createClient<typeof commands>()` makes `client.greet('ann')` take the declared
// arguments and resolve to the reply's decoded type. Types only: nothing here runs.
import type { CommandModule } from '../commands/module.ts';
import type { ReplyError } from '../errors.ts';
import type { Push, RespMap, RespSet } from '../protocol/reply.ts';

/** A declared argument as the client sends it. */
type Input<A> = A extends { type: 'string' }
  ? string
  : A extends { type: 'bytes' }
    ? string | Buffer
    : A extends { type: 'integer' | 'number' }
      ? number
      : A extends { type: 'enum'; values: readonly (infer V)[] }
        ? V
        : never;

/** The method's parameters, from the declarations in order. */
export type Params<A> = A extends readonly []
  ? []
  : A extends readonly [infer H, ...infer T]
    ? H extends { type: 'options'; options: infer O }
      ? [options?: { [K in keyof O]?: Input<O[K]> }]
      : H extends { variadic: true }
        ? Input<H>[]
        : H extends { rest: true }
          ? H extends { optional: true }
            ? [text?: string]
            : [text: string]
          : H extends { optional: true }
            ? [value?: Input<H>, ...Params<T>]
            : [value: Input<H>, ...Params<T>]
    : (string | number | Buffer)[];

/** What a reply becomes once decoded (strings for text and bytes unless `buffers` is set). */
export type Decoded<R> = R extends ReplyError
  ? never
  : R extends string | Buffer
    ? string
    : R extends number | boolean | null
      ? R
      : R extends RespMap
        ? Record<string, unknown>
        : R extends RespSet | Push
          ? unknown[]
          : R extends readonly (infer E)[]
            ? Decoded<E>[]
            : unknown;

type SpecsOf<M> = M extends readonly (infer S)[]
  ? S
  : M extends CommandModule<infer C>
    ? C[number]
    : never;

type Method<S> = S extends {
  readonly types?: { readonly args: infer A; readonly reply: infer R };
}
  ? (...args: Params<A>) => Promise<Decoded<R>>
  : never;

/** One method per command of module M, named in lower case: `greet`, `user_get`. */
export type CommandMethods<M> = {
  [S in SpecsOf<M> as S extends { readonly types?: { readonly name: infer N extends string } }
    ? Lowercase<N>
    : never]: Method<S>;
};
