// Connection churn for tests, from the product's own load tool (`tcpool bench --connect-rate`'s
// runConnectRate): loops that each connect, PING, read the reply and close, until stopped.
import { type ConnectRateResult, runConnectRate } from '../../src/bench/connect-rate.ts';

export interface ConnectLoad {
  /** Stops starting connections; resolves with the result once those under way are done. */
  stop(): Promise<ConnectRateResult>;
}

export function connectLoad(port: number, loops: number): ConnectLoad {
  const controller = new AbortController();
  const running = runConnectRate(
    {
      host: '127.0.0.1',
      port,
      connections: loops,
      pipeline: 1,
      requests: Infinity,
      duration: 0,
      protocol: 'line',
      command: 'PING',
      threads: 1,
      rate: 0,
      idle: 0,
      stallMs: 5000,
    },
    controller.signal,
  );
  return {
    stop: () => {
      controller.abort();
      return running;
    },
  };
}
