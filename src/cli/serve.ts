// `tcpool serve`: load the config, start the supervisor, handle signals.
import { createRegistry } from '../commands/load.ts';
import { loadConfig } from '../config/load.ts';
import { loadTls } from '../config/tls.ts';
import { type ConfigKey, configKeys, flagName } from '../config/schema.ts';
import { ConfigError, codes, TcpoolError } from '../errors.ts';
import { Logger } from '../log/logger.ts';
import { LogWriter } from '../log/writer.ts';
import { Supervisor } from '../supervisor/supervisor.ts';
import { serveHelp } from './help.ts';
import { type Options, parseOptions } from './options.ts';
import { formatHostPort, isLoopback } from '../net/address.ts';

function fail(message: string, code: number): number {
  process.stderr.write(`tcpool: ${message}\n`);
  return code;
}

export async function serve(argv: string[]): Promise<number> {
  const options: Options = {
    help: { type: 'boolean', short: 'h' },
    config: { type: 'string', short: 'c' },
  };
  for (const key of configKeys) options[flagName(key)] = { type: 'string' };

  let writer: LogWriter;
  let logger: Logger;
  let supervisor: Supervisor;
  try {
    const { values, positionals } = parseOptions(argv, options, 'serve');
    if (values.help) {
      process.stdout.write(serveHelp() + '\n');
      return 0;
    }
    if (positionals.length > 1)
      throw new ConfigError(
        codes.ERR_CONFIG_OPTION,
        `Expected one config file, got: ${positionals.join(' ')}`,
      );
    if (positionals.length === 1 && values.config !== undefined) {
      throw new ConfigError(
        codes.ERR_CONFIG_OPTION,
        'Give the config file either as an argument or with --config, not both',
      );
    }
    const flags: Partial<Record<ConfigKey, string>> = {};
    for (const key of configKeys) {
      const v = values[flagName(key)];
      if (typeof v === 'string') flags[key] = v;
    }
    const file = (values.config as string | undefined) ?? positionals[0];
    const loaded = loadConfig({
      flags,
      file,
      defaultFile: file === undefined ? 'config.txt' : undefined,
    });
    const { config } = loaded;
    await createRegistry(config.COMMANDS_MODULE); // refuse a broken module before any worker starts
    const tls = loadTls(config);
    writer = new LogWriter(config.LOG_FILE);
    logger = new Logger(config.LOG_LEVEL, config.LOG_FORMAT, writer.write);
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
    supervisor = new Supervisor(config, logger, writer.write, tls);
  } catch (err) {
    if (err instanceof TcpoolError) return fail(err.message, 2);
    throw err;
  }

  // Signals are handled from before the first worker starts: a signal that arrives while the
  // pool is starting shuts it down as soon as it is up, instead of killing the process outright.
  let stopping = false;
  let startedShutdown: (() => void) | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn(`Received ${signal} again: exiting immediately`);
      writer.close();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    stopping = true;
    logger.info(`Received ${signal}, shutting down server...`);
    startedShutdown?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await supervisor.start();
  } catch (err) {
    if (err instanceof TcpoolError) return fail(err.message, 1);
    throw err;
  }
  const { HOST } = supervisor.config;
  if (supervisor.port !== -1) {
    logger.info(`Server listening on ${formatHostPort(HOST, supervisor.port)}`);
  }
  if (supervisor.tlsPort !== 0) {
    const mtls = supervisor.tls?.ca ? ', client certificates required' : '';
    logger.info(
      `Server listening on ${formatHostPort(HOST, supervisor.tlsPort)} (TLS, ${supervisor.config.TLS_MIN_VERSION} or newer${mtls})`,
    );
  }
  // The other transports' ports (HTTP_PORT, WS_PORT …), each named by its key.
  for (const [key, port] of Object.entries(supervisor.ports)) {
    if (key !== 'PORT' && key !== 'TLS_PORT')
      logger.info(`Server listening on ${formatHostPort(HOST, port)} (${key})`);
  }

  await new Promise<void>((resolve) => {
    startedShutdown = resolve;
    if (stopping) resolve();
  });
  const active = await supervisor.shutdown();
  logger.info(`Server stopped. Total active clients at shutdown: ${active}`);
  writer.close();
  return 0;
}
