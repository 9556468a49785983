import type { CommandSpec } from '../registry.ts';
import auth from './auth.ts';
import client from './client.ts';
import command from './command.ts';
import config from './config.ts';
import echo from './echo.ts';
import hello from './hello.ts';
import help from './help.ts';
import info from './info.ts';
import ping from './ping.ts';
import quit from './quit.ts';
import reset from './reset.ts';
import select from './select.ts';
import stats from './stats.ts';
import time from './time.ts';
import { transactionCommands } from './transaction.ts';
import { unsupported } from './unsupported.ts';
import { pubsubCommands } from '../../pubsub/commands.ts';

/** The built-in commands, in the order HELP lists them; the line protocol sees the first seven. */
export const builtins: readonly CommandSpec[] = [
  ping,
  echo,
  time,
  stats,
  quit,
  help,
  auth,
  hello,
  client,
  info,
  command,
  config,
  select,
  reset,
  ...transactionCommands,
  ...pubsubCommands,
  ...unsupported,
];
