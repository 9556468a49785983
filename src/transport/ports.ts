// Which ports the transports listen on, resolved once by the supervisor: each port key a
// transport names (src/transport/index.ts) is probed exclusively, so a port held by anyone is
// refused at start, and PORT=0-style keys become real ports every worker then shares. Two keys
// set to the same port (WS_PORT = HTTP_PORT) share one listener.
import type { Config } from '../config/schema.ts';
import { transports } from './index.ts';

export async function resolvePorts(
  config: Config,
  known: Record<string, number>,
  probe: (port: number) => Promise<number>,
): Promise<Record<string, number>> {
  const ports: Record<string, number> = {};
  const byValue = new Map<number, number>();
  for (const transport of transports) {
    for (const key of transport.portKeys(config)) {
      if (key in ports) continue;
      if (key in known) {
        ports[key] = known[key];
        continue;
      }
      const wanted = (config as unknown as Record<string, number>)[key];
      let port = wanted === 0 ? undefined : byValue.get(wanted);
      if (port === undefined) {
        port = await probe(wanted);
        byValue.set(wanted, port);
      }
      ports[key] = port;
    }
  }
  return ports;
}
