// The OpenAPI 3.1 document of the HTTP API, generated from the registry: one operation per
// command (its usage, summary and argument counts; for a command with declared arguments, the
// type, range, enum and length of each, from spec.args, in order or by name), plus the listing
// and the pipeline.
import type { ArgDecl, OptionDecl } from '../../commands/declared-args.ts';
import type { CommandSpec, Registry } from '../../commands/registry.ts';

const json = (schema: object) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });

/**
 * The JSON Schema of one declared value (a positional argument, a list item, an option's value).
 */
function scalarSchema(d: OptionDecl, summary: string | undefined): Record<string, unknown> {
  const schema: Record<string, unknown> = {};
  switch (d.type) {
    case 'string':
      schema.type = 'string';
      if (d.maxLength !== undefined) schema.maxLength = d.maxLength;
      break;
    case 'bytes':
      // Text, or {"base64": …} for bytes that are not UTF-8; maxLength counts bytes.
      Object.assign(schema, ref('Argument'));
      break;
    case 'integer':
    case 'number':
      schema.type = d.type;
      if (d.min !== undefined && Number.isFinite(d.min)) schema.minimum = d.min;
      if (d.max !== undefined && Number.isFinite(d.max)) schema.maximum = d.max;
      break;
    case 'enum':
      schema.type = 'string';
      schema.enum = [...d.values];
      break;
  }
  const limit =
    d.type === 'bytes' && d.maxLength !== undefined ? `At most ${d.maxLength} bytes.` : '';
  const text = [summary, limit].filter(Boolean).join(' ');
  if (text !== '') schema.description = text;
  return schema;
}

/** A `key=value` word: the known keys, each value's type in the description. */
function optionSchema(d: Extract<ArgDecl, { type: 'options' }>): Record<string, unknown> {
  const keys = Object.keys(d.options);
  const each = Object.entries(d.options as Record<string, OptionDecl>).map(([k, o]) => {
    const s = scalarSchema(o, undefined);
    const what =
      o.type === 'enum'
        ? (s.enum as string[]).join('|')
        : [
            o.type,
            s.minimum !== undefined ? `>= ${s.minimum}` : '',
            s.maximum !== undefined ? `<= ${s.maximum}` : '',
          ]
            .filter(Boolean)
            .join(' ');
    return `${k}=<${what}>`;
  });
  return {
    type: 'string',
    // Keys are matched case-insensitively by the server; the schema names them as declared.
    pattern: `^(${keys.join('|')})=`,
    description: `${d.summary ? `${d.summary} ` : ''}Options, each at most once: ${each.join(', ')}`,
  };
}

/**
 * The "args" array of a command with declared arguments: one typed item per positional argument
 * (prefixItems), then what takes the rest (a variadic list's items, a rest text's words, options).
 */
function declaredArgsSchema(decls: readonly ArgDecl[]): Record<string, unknown> {
  const prefixItems: Record<string, unknown>[] = [];
  let rest: Record<string, unknown> | false = false;
  let minItems = 0;
  for (const d of decls) {
    if (d.type === 'options') {
      rest = optionSchema(d); // always the last declaration
      continue;
    }
    if (!d.optional) minItems++;
    const item = scalarSchema(d, d.summary);
    // A list takes every remaining item; a rest text takes the remaining words.
    if (d.variadic) rest = item;
    else if (d.rest) rest = item;
    else prefixItems.push(item);
  }
  const schema: Record<string, unknown> = { type: 'array', minItems, items: rest };
  if (prefixItems.length > 0) schema.prefixItems = prefixItems;
  return schema;
}

/**
 * "args" as an object of named arguments (named-args.ts): each declared argument under its name,
 * a list as an array, options as an object, the required ones required.
 */
function namedArgsSchema(decls: readonly ArgDecl[]): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  for (const d of decls) {
    if (d.type === 'options') {
      const options: Record<string, unknown> = {};
      for (const [k, o] of Object.entries(d.options as Record<string, OptionDecl>))
        options[k] = scalarSchema(o, undefined);
      properties[d.name] = {
        type: 'object',
        properties: options,
        additionalProperties: false,
        ...(d.summary ? { description: d.summary } : {}),
      };
      continue;
    }
    const item = scalarSchema(d, d.summary);
    properties[d.name] = d.variadic
      ? { type: 'array', items: item, minItems: d.optional ? 0 : 1 }
      : item;
    if (!d.optional) required.push(d.name);
  }
  const schema: Record<string, unknown> = { type: 'object', properties };
  if (required.length > 0) schema.required = required;
  schema.additionalProperties = false;
  return schema;
}

function commandOperation(spec: CommandSpec) {
  let args: Record<string, unknown>;
  if (spec.args !== null)
    // In order, or by name: an array and an object, so exactly one of the two matches.
    args = { oneOf: [declaredArgsSchema(spec.args), namedArgsSchema(spec.args)] };
  else {
    args = { type: 'array', items: ref('Argument'), minItems: spec.minArgs };
    if (spec.maxArgs !== Infinity) args.maxItems = spec.maxArgs;
  }
  return {
    post: {
      operationId: `command_${spec.name.replace(/[^A-Za-z0-9_]/g, '_')}`,
      summary: spec.usage,
      description: spec.summary,
      tags: [spec.group],
      requestBody: {
        required: false,
        content: {
          ...json({ type: 'object', properties: { args }, additionalProperties: false }),
          'application/octet-stream': {
            schema: { type: 'string', contentMediaType: 'application/octet-stream' },
          },
        },
      },
      responses: {
        '200': { description: 'The reply', content: json(ref('Result')) },
        '400': errorResponse('Wrong arguments or a malformed request'),
        '401': errorResponse('Authentication required or refused'),
        '429': errorResponse('Rate limited'),
        default: errorResponse('Another error'),
      },
    },
  };
}

export function openApiDocument(registry: Registry, version: string): object {
  const paths: Record<string, unknown> = {
    '/v1/commands': {
      get: {
        operationId: 'listCommands',
        summary: 'Every command with its usage',
        responses: { '200': { description: 'The commands', content: json(ref('CommandList')) } },
      },
    },
    '/v1/pipeline': {
      post: {
        operationId: 'pipeline',
        summary: 'Runs several commands in order; one result (or error) each',
        description:
          'Each command is ["NAME", arg, ...], or {"command": "NAME", "args": ...} with "args" as in POST /v1/commands/{NAME} (an array, or an object of named arguments).',
        requestBody: {
          required: true,
          content: json({
            type: 'array',
            minItems: 1,
            items: {
              oneOf: [
                {
                  type: 'array',
                  prefixItems: [{ type: 'string' }],
                  items: ref('Argument'),
                  minItems: 1,
                },
                {
                  type: 'object',
                  properties: {
                    command: { type: 'string' },
                    args: {
                      oneOf: [{ type: 'array', items: ref('Argument') }, { type: 'object' }],
                    },
                  },
                  required: ['command'],
                  additionalProperties: false,
                },
              ],
            },
          }),
        },
        responses: {
          '200': {
            description: 'One entry per command, in order',
            content: json({
              type: 'object',
              properties: {
                results: { type: 'array', items: { oneOf: [ref('Result'), ref('Error')] } },
              },
              required: ['results'],
            }),
          },
          default: errorResponse('A malformed pipeline'),
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'openApi',
        summary: 'This document',
        responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } },
      },
    },
  };
  for (const spec of registry.list()) paths[`/v1/commands/${spec.name}`] = commandOperation(spec);
  return {
    openapi: '3.1.0',
    info: {
      title: 'tcpool HTTP API',
      version,
      description:
        'Every tcpool command over HTTP/1.1 and HTTP/2. Replies keep their RESP3 types: ' +
        '{"map"}, {"set"}, {"double"}, {"bignum"}, {"verbatim"}, {"push"}; bytes that are not UTF-8 as {"base64"}.',
    },
    security: [{}, { bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Argument: {
          oneOf: [
            { type: 'string' },
            {
              type: 'object',
              properties: { base64: { type: 'string', contentEncoding: 'base64' } },
              required: ['base64'],
              additionalProperties: false,
            },
          ],
        },
        Result: {
          type: 'object',
          properties: { result: { description: 'The reply, as JSON' } },
          required: ['result'],
        },
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: { code: { type: 'string' }, message: { type: 'string' } },
              required: ['code', 'message'],
            },
          },
          required: ['error'],
        },
        CommandList: {
          type: 'object',
          properties: {
            commands: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  name: { type: 'string' },
                  usage: { type: 'string' },
                  summary: { type: 'string' },
                  minArgs: { type: 'integer' },
                  maxArgs: { type: ['integer', 'null'] },
                  group: { type: 'string' },
                  family: { type: 'string' },
                  flags: { type: 'array', items: { type: 'string' } },
                  args: {
                    description:
                      'The declared arguments (name, type; min/max, values, maxLength, optional, variadic, rest, options), null for a command that takes raw arguments',
                    type: ['array', 'null'],
                    items: { type: 'object', required: ['name', 'type'] },
                  },
                },
                required: ['name', 'usage'],
              },
            },
          },
          required: ['commands'],
        },
      },
    },
  };
}
