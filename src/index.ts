// The public API, deliberately small: embed the server, write COMMANDS_MODULE commands with types
// and the reply shapes they need, and use the socket-free codecs. docs/API.md lists each export;
// test/unit/api.test.ts keeps that list and this file in step.

// Running a server.
export { loadConfig, type LoadedConfig, type LoadOptions } from './config/load.ts';
export { type Config, type ConfigKey, schema as configSchema } from './config/schema.ts';
export { Supervisor } from './supervisor/supervisor.ts';
export { Logger } from './log/logger.ts';
export { SharedStats, type StatsSnapshot } from './stats/counters.ts';

// Writing commands.
export {
  defineCommand,
  Registry,
  type CommandDefinition,
  type CommandSpec,
  type DeclaredCommandDefinition,
  type RawCommandDefinition,
  type TypedCommandSpec,
} from './commands/registry.ts';
export { type CommandModule, defineModule, type WorkerHandle } from './commands/module.ts';
export type { ArgDecl, ArgValues, OptionDecl } from './commands/declared-args.ts';
export type { ClientInfo, CommandContext, ServerInfo } from './commands/context.ts';
export {
  Double,
  Forms,
  Preencoded,
  Push,
  Replies,
  type Reply,
  RespMap,
  RespSet,
  Status,
  Verbatim,
} from './protocol/reply.ts';

// Errors.
export {
  badArgument,
  CommandError,
  codes,
  ConfigError,
  type ErrorCode,
  ListenError,
  notSupported,
  ReplyError,
  TcpoolError,
} from './errors.ts';

// Socket-free codecs.
export { encodeLineReply, LineDecoder } from './protocol/line.ts';
export {
  encodeResp,
  encodeRespRequest,
  RespDecoder,
  type RespLimits,
} from './protocol/resp.ts';
