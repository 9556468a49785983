// `tcpool bench`: the load generator users get.
import { writeFileSync } from 'node:fs';
import { latencyChart } from '../bench/chart.ts';
import { formatConnectRate, runConnectRate } from '../bench/connect-rate.ts';
import type { BenchOptions } from '../bench/plan.ts';
import { formatReport, runBench } from '../bench/run.ts';
import { benchHelp } from './help.ts';
import { parseOptions } from './options.ts';

function positiveInt(name: string, raw: string, min = 1): number {
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min)
    throw new Error(`Invalid --${name} "${raw}": must be an integer of at least ${min}`);
  return Number(raw);
}

export async function bench(argv: string[]): Promise<number> {
  let options: BenchOptions;
  let json = false;
  let chart: string | undefined;
  let connectRate = false;
  try {
    const { values, positionals } = parseOptions(
      argv,
      {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8080' },
        connections: { type: 'string', short: 'c', default: '50' },
        pipeline: { type: 'string', short: 'P', default: '1' },
        requests: { type: 'string', short: 'n' },
        duration: { type: 'string', short: 'd' },
        protocol: { type: 'string', default: 'line' },
        command: { type: 'string', default: 'PING' },
        threads: { type: 'string', short: 't', default: '1' },
        rate: { type: 'string' },
        idle: { type: 'string', default: '0' },
        'stall-timeout': { type: 'string', default: '5000' },
        json: { type: 'boolean' },
        chart: { type: 'string' },
        'connect-rate': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      'bench',
    );
    if (values.help) {
      process.stdout.write(benchHelp() + '\n');
      return 0;
    }
    if (positionals.length > 0)
      throw new Error(`Unexpected argument ${positionals[0]} (see tcpool bench --help)`);
    const protocol = values.protocol as string;
    if (protocol !== 'line' && protocol !== 'resp')
      throw new Error(`Invalid --protocol "${protocol}": must be line or resp`);
    const port = positiveInt('port', values.port as string);
    if (port > 65535) throw new Error(`Invalid --port "${port}": must be at most 65535`);
    const duration =
      values.duration === undefined ? 0 : positiveInt('duration', values.duration as string);
    if (duration > 3600) throw new Error(`Invalid --duration "${duration}": at most 3600 seconds`);
    // Bounded either way: a request count, or a duration (default 100,000 requests).
    const requests =
      values.requests !== undefined
        ? positiveInt('requests', values.requests as string)
        : duration > 0
          ? Infinity
          : 100_000;
    options = {
      host: values.host as string,
      port,
      connections: positiveInt('connections', values.connections as string),
      pipeline: positiveInt('pipeline', values.pipeline as string),
      requests,
      duration,
      protocol,
      command: values.command as string,
      threads: positiveInt('threads', values.threads as string),
      rate: values.rate === undefined ? 0 : positiveInt('rate', values.rate as string),
      idle: positiveInt('idle', values.idle as string, 0),
      stallMs: positiveInt('stall-timeout', values['stall-timeout'] as string),
    };
    json = values.json === true;
    chart = values.chart as string | undefined;
    connectRate = values['connect-rate'] === true;
    if (connectRate && (options.rate > 0 || options.idle > 0 || options.pipeline > 1 || chart))
      throw new Error('--connect-rate takes none of --rate, --idle, --pipeline, --chart');
    // A connection per request: 100,000 would take minutes; default to 10,000.
    if (connectRate && values.requests === undefined && duration === 0) options.requests = 10_000;
  } catch (err) {
    if (!(err instanceof Error) || (err as { code?: string }).code === 'ERR_ASSERTION') throw err;
    process.stderr.write(`tcpool: ${err.message}\n`);
    return 2;
  }

  if (connectRate) {
    const result = await runConnectRate(options);
    if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else process.stdout.write(formatConnectRate(result) + '\n');
    return result.ok ? 0 : 1;
  }
  const live = process.stderr.isTTY && !json;
  const result = await runBench(
    options,
    live ? (line) => process.stderr.write(`\r\x1b[K${line}`) : undefined,
  );
  if (live) process.stderr.write('\r\x1b[K');
  if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write(formatReport(result) + '\n');
  if (chart !== undefined) writeFileSync(chart, latencyChart(result));
  return result.ok ? 0 : 1;
}
