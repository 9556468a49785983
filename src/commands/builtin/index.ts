import type { CommandSpec } from '../registry.ts';
import echo from './echo.ts';
import help from './help.ts';
import ping from './ping.ts';
import quit from './quit.ts';
import stats from './stats.ts';
import time from './time.ts';

/** The built-in commands, in the order HELP lists them. */
export const builtins: readonly CommandSpec[] = [ping, echo, time, stats, quit, help];
