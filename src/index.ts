// Public API: embed the server, or write commands for COMMANDS_MODULE with types.
export { loadConfig, type LoadedConfig, type LoadOptions } from './config/load.ts';
export { type Config, type ConfigKey, schema as configSchema } from './config/schema.ts';
export {
  defineCommand,
  Registry,
  type CommandDefinition,
  type CommandSpec,
} from './commands/registry.ts';
export type { CommandContext } from './commands/context.ts';
export type { Reply } from './protocol/reply.ts';
export { LineDecoder, encodeLineReply } from './protocol/line.ts';
export {
  codes,
  ConfigError,
  ListenError,
  ReplyError,
  TcpoolError,
  type ErrorCode,
} from './errors.ts';
export { Logger } from './log/logger.ts';
export { Supervisor } from './supervisor/supervisor.ts';
export { SharedStats, type StatsSnapshot } from './stats/counters.ts';
