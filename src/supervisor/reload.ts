// What a reload may change. A reload re-reads the config file and the environment (flags stay as
// given); every key not listed here takes effect in every worker without dropping a connection.
import type { Config, ConfigKey } from '../config/schema.ts';
import { configKeys } from '../config/schema.ts';

/**
 * Keys fixed for the life of the process: the sockets already bound, the shared memory already
 * laid out, the commands every worker loaded. A reload that changes one reports it by name and
 * leaves it as it is.
 */
export const RESTART_ONLY: ReadonlySet<ConfigKey> = new Set<ConfigKey>([
  'PORT',
  'HOST',
  'TLS_PORT',
  'THREAD_POOL_MAX',
  'IP_TABLE_SLOTS',
  'COMMANDS_MODULE',
  'WORKER_YOUNG_GENERATION_MB',
  'LOG_BUFFER_BYTES',
  'ADMIN_PORT',
  'ADMIN_HOST',
  // The other transports' listeners, bound at start like PORT.
  'WS_PORT',
  'WS_TLS',
  'HTTP_PORT',
  'HTTP_TLS',
  // Decided once by each worker as it starts: a live change would split the pool (only workers
  // started after it would follow), so they stay as they are until a restart.
  'TRACING',
  'TCP_READ_PATH',
]);

/** Keys whose value is secret: the admin API shows them redacted. */
export const SECRET_KEYS: ReadonlySet<ConfigKey> = new Set<ConfigKey>([
  'AUTH_TOKENS',
  'ADMIN_TOKENS',
]);

/** Keys whose values differ. */
export function changedKeys(before: Config, after: Config): ConfigKey[] {
  return configKeys.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
}

/**
 * The configuration a reload puts in force: the new values, but the restart-only keys as they
 * were. Returns it with the keys that changed and those that could not.
 */
export function reloadedConfig(
  running: Config,
  loaded: Config,
): { config: Config; changed: ConfigKey[]; notLive: ConfigKey[] } {
  const changed = changedKeys(running, loaded);
  const notLive = changed.filter((k) => RESTART_ONLY.has(k));
  const config = { ...loaded };
  for (const k of notLive) (config as Record<ConfigKey, unknown>)[k] = running[k];
  return { config, changed: changed.filter((k) => !RESTART_ONLY.has(k)), notLive };
}
