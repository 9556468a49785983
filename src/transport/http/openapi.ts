// The OpenAPI 3.1 document of the HTTP API, generated from the registry: one operation per
// command (its usage, summary and argument counts), plus the listing and the pipeline.
import type { CommandSpec, Registry } from '../../commands/registry.ts';

const json = (schema: object) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });

function commandOperation(spec: CommandSpec) {
  const args: Record<string, unknown> = {
    type: 'array',
    items: ref('Argument'),
    minItems: spec.minArgs,
  };
  if (spec.maxArgs !== Infinity) args.maxItems = spec.maxArgs;
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
        requestBody: {
          required: true,
          content: json({
            type: 'array',
            items: { type: 'array', items: ref('Argument'), minItems: 1 },
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
