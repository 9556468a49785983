// `tcpool bench`: the load generator users get.
import { closeSync, openSync, writeSync } from 'node:fs';
import { latencyChart } from '../bench/chart.ts';
import { formatConnectRate, runConnectRate } from '../bench/connect-rate.ts';
import type { BenchOptions } from '../bench/plan.ts';
import { formatPubSubReport, type PubSubOptions, runPubSubBench } from '../bench/pubsub.ts';
import { formatReport, runBench } from '../bench/run.ts';
import { usageError } from '../errors.ts';
import { benchHelp } from './help.ts';
import { integerOption, parseOptions } from './options.ts';

interface BenchCommand {
  options: BenchOptions;
  /** --pubsub: the fan-out mode instead of request/reply. */
  pubsub: PubSubOptions | null;
  json: boolean;
  /** The --chart file, opened before the run so that a bad path fails at once, not after it. */
  chartFd: number | null;
  /** --connect-rate: a new connection per request (accept throughput). */
  connectRate: boolean;
}

function parseBenchCommand(argv: string[]): BenchCommand | 'help' {
  const { values, positionals } = parseOptions(
    argv,
    {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8080' },
      connections: { type: 'string', short: 'c', default: '50' },
      pipeline: { type: 'string', short: 'P' },
      requests: { type: 'string', short: 'n' },
      duration: { type: 'string', short: 'd' },
      protocol: { type: 'string', default: 'line' },
      command: { type: 'string', default: 'PING' },
      threads: { type: 'string', short: 't' },
      rate: { type: 'string' },
      idle: { type: 'string', default: '0' },
      'stall-timeout': { type: 'string', default: '5000' },
      json: { type: 'boolean' },
      chart: { type: 'string' },
      'connect-rate': { type: 'boolean' },
      pubsub: { type: 'boolean' },
      subscribers: { type: 'string', default: '1000' },
      channels: { type: 'string', default: '4' },
      messages: { type: 'string', default: '20000' },
      payload: { type: 'string', default: '64' },
      help: { type: 'boolean', short: 'h' },
    },
    'bench',
  );
  if (values.help) return 'help';
  if (positionals.length > 0)
    throw usageError(`Unexpected argument ${positionals[0]} (see tcpool bench --help)`);
  const protocol = values.protocol as string;
  if (protocol !== 'line' && protocol !== 'resp')
    throw usageError(`Invalid --protocol "${protocol}": must be line or resp`);
  const int = (name: string, min = 1, max?: number): number =>
    integerOption(name, values[name] as string, min, max);
  const duration = values.duration === undefined ? 0 : int('duration', 1, 3600);
  // Bounded either way: a request count, or a duration (default 100,000 requests).
  const requests =
    values.requests !== undefined ? int('requests') : duration > 0 ? Infinity : 100_000;
  // --pubsub's defaults: one publisher with 500 PUBLISH in flight, 4 subscriber threads.
  values.pipeline ??= values.pubsub ? '500' : '1';
  values.threads ??= values.pubsub ? '4' : '1';
  const options: BenchOptions = {
    host: values.host as string,
    port: int('port', 1, 65535),
    connections: int('connections'),
    pipeline: int('pipeline'),
    requests,
    duration,
    protocol,
    command: values.command as string,
    threads: int('threads'),
    rate: values.rate === undefined ? 0 : int('rate'),
    idle: int('idle', 0),
    stallMs: int('stall-timeout'),
  };
  const chart = values.chart as string | undefined;
  let pubsub: PubSubOptions | null = null;
  if (values.pubsub) {
    if (chart !== undefined) throw usageError('--chart is for request latency, not --pubsub');
    pubsub = {
      host: options.host,
      port: options.port,
      subscribers: int('subscribers', 1, 1_000_000),
      channels: int('channels', 1, 100_000),
      messages: int('messages'),
      payload: int('payload', 0, 16 * 1024 * 1024),
      pipeline: options.pipeline,
      threads: options.threads,
      stallMs: options.stallMs,
    };
    if (pubsub.messages < pubsub.channels)
      throw usageError(
        `--messages (${pubsub.messages}) must be at least --channels (${pubsub.channels})`,
      );
  }
  const connectRate = values['connect-rate'] === true;
  if (connectRate && (options.rate > 0 || options.idle > 0 || options.pipeline > 1 || chart))
    throw usageError('--connect-rate takes none of --rate, --idle, --pipeline, --chart');
  if (connectRate && pubsub !== null) throw usageError('--connect-rate and --pubsub are two modes');
  // A connection per request: 100,000 would take minutes; default to 10,000.
  if (connectRate && values.requests === undefined && duration === 0) options.requests = 10_000;
  return {
    options,
    pubsub,
    json: values.json === true,
    chartFd: chart === undefined ? null : open(chart),
    connectRate,
  };
}

function open(chart: string): number {
  try {
    return openSync(chart, 'w');
  } catch (err) {
    throw usageError(`Cannot write --chart ${chart}: ${(err as NodeJS.ErrnoException).code}`);
  }
}

export async function bench(argv: string[]): Promise<number> {
  const command = parseBenchCommand(argv);
  if (command === 'help') {
    process.stdout.write(benchHelp() + '\n');
    return 0;
  }
  const { options, json, chartFd } = command;
  if (command.connectRate) {
    // SIGINT (Ctrl-C, or a script that drives the load alongside something else) ends the run
    // early: the connections under way finish and the result is reported as usual.
    const interrupt = new AbortController();
    const onSigint = (): void => interrupt.abort();
    process.once('SIGINT', onSigint);
    const result = await runConnectRate(options, interrupt.signal).finally(() =>
      process.off('SIGINT', onSigint),
    );
    process.stdout.write(
      (json ? JSON.stringify(result, null, 2) : formatConnectRate(result)) + '\n',
    );
    return result.ok ? 0 : 1;
  }
  const live = process.stderr.isTTY && !json;
  const progress = live ? (line: string) => process.stderr.write(`\r\x1b[K${line}`) : undefined;
  if (command.pubsub !== null) {
    const result = await runPubSubBench(command.pubsub, progress);
    if (live) process.stderr.write('\r\x1b[K');
    process.stdout.write(
      (json ? JSON.stringify(result, null, 2) : formatPubSubReport(result)) + '\n',
    );
    return result.ok ? 0 : 1;
  }
  try {
    const result = await runBench(options, progress);
    if (live) process.stderr.write('\r\x1b[K');
    process.stdout.write((json ? JSON.stringify(result, null, 2) : formatReport(result)) + '\n');
    if (chartFd !== null) writeSync(chartFd, latencyChart(result));
    return result.ok ? 0 : 1;
  } finally {
    if (chartFd !== null) closeSync(chartFd);
  }
}
