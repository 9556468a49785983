// `tcpool serve`: load the config, start the supervisor, handle signals.
import { AdminServer } from '../admin/server.ts';
import { createRegistry } from '../commands/load.ts';
import { type LoadedConfig, loadConfig } from '../config/load.ts';
import { type ConfigKey, configKeys, flagName } from '../config/schema.ts';
import { loadTls } from '../config/tls.ts';
import { usageError } from '../errors.ts';
import { Logger } from '../log/logger.ts';
import { LogWriter } from '../log/writer.ts';
import { readFileSync } from 'node:fs';
import { formatHostPort, isLoopback } from '../net/address.ts';
import { SharedStats } from '../stats/counters.ts';
import { Supervisor } from '../supervisor/supervisor.ts';
import { serveHelp } from './help.ts';
import { type Options, parseOptions } from './options.ts';

/** How often a server started by npm checks that npm is still its parent. */
const PARENT_CHECK_MS = 1000;

export async function serve(argv: string[]): Promise<number> {
  const args = parseServeArgs(argv);
  if (args === 'help') {
    process.stdout.write(serveHelp() + '\n');
    return 0;
  }
  // A reload reads the same file and the environment again; the flags stay as given.
  const source = (): LoadedConfig =>
    loadConfig({
      flags: args.flags,
      file: args.file,
      defaultFile: args.file === undefined ? 'config.txt' : undefined,
    });
  const loaded = source();
  const { config } = loaded;
  if (args.takeover && (config.PORT === 0 || (config.TLS_PORT === 0 && config.PORT === -1)))
    throw usageError('--takeover joins a port another tcpool serves: PORT must name it, not 0');
  await createRegistry(config.COMMANDS_MODULE); // refuse a broken module before any worker starts
  const tls = loadTls(config);
  const stats = SharedStats.create(Math.max(config.THREAD_POOL_MAX, config.THREAD_POOL_SIZE), 0);
  const writer = new LogWriter({
    file: config.LOG_FILE,
    format: config.LOG_FORMAT,
    bufferBytes: config.LOG_BUFFER_BYTES,
    stdout: process.stdout,
    stderr: process.stderr,
    count: (counter, n) => stats.count(0, counter, n),
  });
  const logger = new Logger(config.LOG_LEVEL, config.LOG_FORMAT, writer.write);
  logStartup(logger, loaded);
  let admin: AdminServer | null = null;
  const supervisor = new Supervisor(config, logger, writer.write, tls, stats, {
    reloadSource: source,
    origin: loaded.origin,
    takeover: args.takeover,
    onReconfigure: (next) => {
      logger.reconfigure(next.LOG_LEVEL, next.LOG_FORMAT);
      writer.setFormat(next.LOG_FORMAT);
      admin?.reconfigure();
      return writer.reopen(next.LOG_FILE);
    },
  });

  // Signals are handled from before the first worker starts: a signal that arrives while the
  // pool is starting shuts it down as soon as it is up, instead of killing the process outright.
  const signals = handleSignals(logger, writer, supervisor);
  try {
    // The admin endpoint comes first, so /readyz says 503 while the pool starts (and /metrics,
    // laid out by prepare(), tells tcpool_ready 0).
    await supervisor.prepare();
    if (config.ADMIN_PORT !== -1) {
      admin = new AdminServer(supervisor, logger);
      const port = await admin.listen(config.ADMIN_HOST, config.ADMIN_PORT);
      logger.info(`Admin API listening on http://${formatHostPort(config.ADMIN_HOST, port)}/`);
    }
    await supervisor.start();
    logListening(logger, supervisor);
    logMigrateReq(logger);
    if (args.takeover)
      logger.info('Joined the port (--takeover): stop the old server with SIGTERM');
    await signals.stopRequested;
    const active = await supervisor.shutdown();
    await admin?.close();
    logger.info(`Server stopped. Total active clients at shutdown: ${active}`);
    await writer.close(config.SHUTDOWN_TIMEOUT_MS);
  } catch (err) {
    await admin?.close();
    throw err;
  } finally {
    signals.remove();
  }
  return 0;
}

/**
 * Closing a SO_REUSEPORT listener (a shrink, a takeover, shutdown) resets the connections waiting
 * in its accept queue, unless the kernel migrates them to another listener of the port.
 */
function logMigrateReq(logger: Logger): void {
  const value = migrateReq();
  if (value === '1')
    logger.info(
      'net.ipv4.tcp_migrate_req=1: connections queued on a retiring worker move to the others',
    );
  else
    logger.info(
      `net.ipv4.tcp_migrate_req=${value ?? 'unknown'}: when the pool shrinks or a takeover ends, connections still queued on a closing listener are reset; set it to 1 (sysctl) for resizes without resets`,
    );
}

/**
 * net.ipv4.tcp_migrate_req, or null where it cannot be read (not Linux, or a kernel before 5.14).
 */
export function migrateReq(): string | null {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
  } catch {
    return null;
  }
}

interface ServeArgs {
  flags: Partial<Record<ConfigKey, string>>;
  file: string | undefined;
  takeover: boolean;
}

function parseServeArgs(argv: string[]): ServeArgs | 'help' {
  const options: Options = {
    help: { type: 'boolean', short: 'h' },
    config: { type: 'string', short: 'c' },
    takeover: { type: 'boolean' },
  };
  for (const key of configKeys) options[flagName(key)] = { type: 'string' };
  const { values, positionals } = parseOptions(argv, options, 'serve');
  if (values.help) return 'help';
  if (positionals.length > 1)
    throw usageError(`Expected one config file, got: ${positionals.join(' ')}`);
  if (positionals.length === 1 && values.config !== undefined)
    throw usageError('Give the config file either as an argument or with --config, not both');
  const flags: Partial<Record<ConfigKey, string>> = {};
  for (const key of configKeys) {
    const v = values[flagName(key)];
    if (typeof v === 'string') flags[key] = v;
  }
  return {
    flags,
    file: (values.config as string | undefined) ?? positionals[0],
    takeover: values.takeover === true,
  };
}

/** The original's start-up lines, and what the operator should know about AUTH. */
function logStartup(logger: Logger, loaded: LoadedConfig): void {
  const { config } = loaded;
  for (const warning of loaded.warnings) logger.warn(warning);
  if (loaded.file !== null) logger.info(`Config loaded from ${loaded.file}`);
  logger.info(`Server starting on port ${config.PORT === -1 ? 'off (TLS only)' : config.PORT}`);
  logger.info(`Thread pool size: ${config.THREAD_POOL_SIZE}`);
  logger.info(`Max connections: ${config.MAX_CONNECTIONS}`);
  if (config.AUTH_TOKENS.length > 0) {
    logger.info(`AUTH required: ${config.AUTH_TOKENS.length} token hash(es)`);
  } else if (!config.PROTECTED_MODE) {
    logger.warn(
      'Protected mode is off: any client that can reach this port is served without AUTH',
    );
  } else if (!isLoopback(config.HOST)) {
    logger.info(
      `Protected mode: no AUTH on ${config.HOST}, so only loopback clients are served (set AUTH_TOKENS, or PROTECTED_MODE=no)`,
    );
  }
}

function logListening(logger: Logger, supervisor: Supervisor): void {
  const { HOST, TLS_MIN_VERSION } = supervisor.config;
  if (supervisor.port !== -1)
    logger.info(`Server listening on ${formatHostPort(HOST, supervisor.port)}`);
  if (supervisor.tlsPort !== 0) {
    const mtls = supervisor.tls?.ca ? ', client certificates required' : '';
    logger.info(
      `Server listening on ${formatHostPort(HOST, supervisor.tlsPort)} (TLS, ${TLS_MIN_VERSION} or newer${mtls})`,
    );
  }
  // The other transports' ports (HTTP_PORT, WS_PORT …), each named by its key.
  for (const [key, port] of Object.entries(supervisor.ports)) {
    if (key !== 'PORT' && key !== 'TLS_PORT')
      logger.info(`Server listening on ${formatHostPort(HOST, port)} (${key})`);
  }
}

interface Signals {
  /** Resolves on the first SIGINT or SIGTERM (or when npm, the parent, is gone). */
  stopRequested: Promise<void>;
  remove: () => void;
}

/**
 * SIGINT and SIGTERM: graceful shutdown; the second one exits at once. SIGUSR1: reopen LOG_FILE
 * (logrotate). SIGHUP: reload the configuration (systemd's ExecReload, nginx's habit). A server
 * started by npm also stops when npm is gone: if whatever npm ran it under
 * is killed, it would otherwise serve on with nobody to stop it.
 */
function handleSignals(logger: Logger, writer: LogWriter, supervisor: Supervisor): Signals {
  let stop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (stop = resolve));
  let stopping = false;
  const onStop = (why: string, signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn(`Received ${signal} again: exiting immediately`);
      writer.closeFile();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    stopping = true;
    logger.info(`${why}, shutting down server...`);
    stop();
  };
  const onSignal = (signal: NodeJS.Signals): void => onStop(`Received ${signal}`, signal);
  const onReopen = (): void => {
    const problem = writer.reopen();
    if (problem === null) logger.info('Received SIGUSR1: log file reopened');
    else logger.error(problem);
  };
  const onReload = (): void => {
    if (stopping || supervisor.phase === 'starting') return;
    logger.info('Received SIGHUP: reloading the configuration');
    void supervisor.reload();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGUSR1', onReopen);
  process.on('SIGHUP', onReload);
  let parentCheck: NodeJS.Timeout | undefined;
  if (process.env.npm_lifecycle_event !== undefined) {
    const parent = process.ppid;
    parentCheck = setInterval(() => {
      if (process.ppid !== parent && !stopping)
        onStop(`Parent process ${parent} (npm) is gone`, 'SIGTERM');
    }, PARENT_CHECK_MS);
    parentCheck.unref();
  }
  return {
    stopRequested,
    remove: () => {
      clearInterval(parentCheck);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGUSR1', onReopen);
      process.off('SIGHUP', onReload);
    },
  };
}
