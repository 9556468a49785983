// Connection churn for tests, from the product's own load tool (`tcpool bench --connect-rate`'s
// runConnectRate): loops that each connect, PING, read the reply and close, until stopped.
import { type ConnectRateResult, runConnectRate } from '../../src/bench/connect-rate.ts';
import { benchOptions } from '../../src/bench/plan.ts';

export interface ConnectLoad {
  /** Stops starting connections; resolves with the result once those under way are done. */
  stop(): Promise<ConnectRateResult>;
}

export function connectLoad(port: number, loops: number): ConnectLoad {
  const controller = new AbortController();
  const running = runConnectRate(
    benchOptions({ port, connections: loops, requests: Infinity }),
    controller.signal,
  );
  return {
    stop: () => {
      controller.abort();
      return running;
    },
  };
}
