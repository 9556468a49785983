// The HTTP API's named arguments: {"args": {"room": "a", "seats": 2}} for a command that declares
// its arguments (spec.args), the same object its `run` receives. They are put back in the
// declared order as the words a positional request would send, so the one parser of
// declared-args.ts checks ranges, lengths and enums and gives the same errors on every
// transport; what only a JSON object can get wrong (an unknown name, a missing or ill-typed
// value) is refused here, naming the argument.
import type { ArgDecl, OptionDecl } from '../../commands/declared-args.ts';
import type { CommandSpec } from '../../commands/registry.ts';
import { codes, type ErrorCode, ReplyError } from '../../errors.ts';

type Scalar = Exclude<ArgDecl, { type: 'options' }> | OptionDecl;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** What a JSON value of this declaration must be, for the error. */
function expected(d: Scalar): string {
  switch (d.type) {
    case 'string':
      return 'a JSON string';
    case 'bytes':
      return 'a JSON string or {"base64": "..."}';
    case 'integer':
      return 'a JSON integer';
    case 'number':
      return 'a JSON number';
    case 'enum':
      return `one of ${d.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
}

/** One scalar as the word a positional request would carry, or null when its JSON type is wrong. */
function word(d: Scalar, value: unknown): Buffer | null {
  switch (d.type) {
    case 'string':
    case 'enum':
      return typeof value === 'string' ? Buffer.from(value, 'utf8') : null;
    case 'bytes':
      if (typeof value === 'string') return Buffer.from(value, 'utf8');
      if (isObject(value) && typeof value.base64 === 'string' && Object.keys(value).length === 1)
        return Buffer.from(value.base64, 'base64');
      return null;
    case 'integer':
      return Number.isSafeInteger(value) ? Buffer.from(String(value)) : null;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
        ? Buffer.from(String(value))
        : null;
  }
}

/**
 * The positional arguments for `named`, or the 400 that says which argument is wrong. A command
 * without declarations has no names to give: it takes "args" as an array.
 */
export function namedArgs(
  spec: CommandSpec,
  named: Record<string, unknown>,
): Buffer[] | ReplyError {
  const usage = spec.usage;
  const refuse = (what: string, code: ErrorCode = codes.ERR_BAD_ARGUMENT): ReplyError =>
    new ReplyError(
      code,
      `Wrong arguments for '${spec.name}': ${what} (usage: ${usage})`,
      `ERR wrong arguments for '${spec.name.toLowerCase()}' command: ${what}`,
    );
  const decls = spec.args;
  if (decls === null) return refuse('it declares no argument names, so "args" must be an array');
  for (const key of Object.keys(named))
    if (!decls.some((d) => d.name === key))
      return refuse(
        `no argument '${key.slice(0, 64)}' (it takes ${decls.map((d) => `'${d.name}'`).join(', ')})`,
      );
  const last = decls[decls.length - 1];
  const optionKeys =
    last?.type === 'options' ? Object.keys(last.options).map((k) => `${k.toLowerCase()}=`) : [];
  /** An optional or list value that the positional parser would take for a key=value option. */
  const readsAsOption = (w: Buffer): boolean => {
    const text = w.toString('latin1', 0, 80).toLowerCase();
    return optionKeys.some((k) => text.startsWith(k));
  };
  const out: Buffer[] = [];
  let skipped: string | null = null;
  for (const d of decls) {
    const value = named[d.name];
    if (d.type === 'options') {
      if (value === undefined) continue;
      if (!isObject(value)) return refuse(`'${d.name}' must be an object of options`);
      for (const [key, v] of Object.entries(value)) {
        const decl = (d.options as Record<string, OptionDecl>)[key];
        if (decl === undefined)
          return refuse(
            `no option '${key.slice(0, 64)}' in '${d.name}' (it has ${Object.keys(d.options)
              .map((k) => `'${k}'`)
              .join(', ')})`,
          );
        const w = word(decl, v);
        if (w === null) return refuse(`option '${key}' must be ${expected(decl)}`);
        out.push(Buffer.concat([Buffer.from(`${key}=`), w]));
      }
      continue;
    }
    if (value === undefined) {
      // Optional arguments come last (checkDecls): a later one cannot be given without this one.
      // A missing argument is a wrong number of them, as it is in order.
      if (!d.optional) return refuse(`missing '${d.name}'`, codes.ERR_WRONG_ARITY);
      skipped ??= d.name;
      continue;
    }
    if (skipped !== null) return refuse(`'${d.name}' is given without '${skipped}' before it`);
    if (d.variadic) {
      if (!Array.isArray(value)) return refuse(`'${d.name}' must be an array`);
      for (const item of value) {
        const w = word(d, item);
        if (w === null) return refuse(`each of '${d.name}' must be ${expected(d)}`);
        out.push(w); // the last argument (checkDecls): no option follows it
      }
      continue;
    }
    const w = word(d, value);
    if (w === null) return refuse(`'${d.name}' must be ${expected(d)}`);
    if (d.optional && readsAsOption(w)) return refuse(`'${d.name}' would read as an option`);
    out.push(w);
  }
  return out;
}
