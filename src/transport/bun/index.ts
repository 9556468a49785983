// Plain TCP (PORT) on Bun, through Bun.listen with reusePort: every worker binds the port and the
// kernel spreads connections over them, as with node:net on Node. A client goes through the same
// PROXY header check and admission as on Node (host.acceptPlain), then a Connection serves it over
// a BunChannel. Bun hands every read over in its own buffer, so nothing needs copying.
// TLS_PORT stays on node:net/node:tls (Bun's Node compatibility), by the tcp transport.
import type { Socket } from 'node:net';
import type { Config } from '../../config/schema.ts';
import { listenError } from '../../errors.ts';
import { detectProtocol } from '../../protocol/index.ts';
import type { ListenOptions, Refusal, Transport, TransportHost } from '../transport.ts';
import { BunChannel } from './channel.ts';
import { type BunApi, type BunSocketHandlers, bunApi } from './runtime.ts';

const refusal: Refusal = (error, first) =>
  detectProtocol(first !== null && first.length > 0 ? first[0] : 0).encode(error);

/**
 * One set of handlers per listener: each finds its channel in socket.data (no closures per client).
 */
function handlers(host: TransportHost, options: ListenOptions): BunSocketHandlers<BunChannel> {
  return {
    open(socket) {
      socket.setNoDelay(true);
      const channel = new BunChannel(socket);
      socket.data = channel;
      host.acceptPlain(channel as unknown as Socket, options);
    },
    data(socket, data) {
      const channel = socket.data;
      if (channel.conn !== null) channel.conn.onData(data);
      else channel.emit('data', data);
    },
    drain(socket) {
      socket.data.onDrain();
    },
    end(socket) {
      const channel = socket.data;
      channel.peerEnded = true;
      if (channel.conn !== null) channel.conn.onEnd();
      else channel.emit('end');
    },
    close(socket, error) {
      // Bun reports a reset here, where Node emits 'error' before 'close'.
      if (error !== undefined) clientError(socket.data, error);
      const channel = socket.data;
      channel.closed = true;
      if (channel.conn !== null) channel.conn.onClose();
      else channel.emit('close');
    },
    error(socket, error) {
      clientError(socket.data, error);
    },
  };
}

/** Resets are how clients leave: logged at DEBUG, as on Node; close does the bookkeeping. */
function clientError(channel: BunChannel, error: Error): void {
  const conn = channel.conn;
  const code = (error as NodeJS.ErrnoException).code ?? error.message;
  if (conn !== null) conn.owner.logger.debug(`Client error: ${conn.peer}: ${code}`);
}

function listen(bun: BunApi, host: TransportHost, port: number): void {
  const options: ListenOptions = {
    port,
    tls: null,
    refusal,
    serve(socket, admitted, firstBytes, refuseProxyHeader) {
      const channel = socket as unknown as BunChannel;
      channel.removeAllListeners();
      const conn = host.open(channel, { admitted, transport: 'tcp', refuseProxyHeader });
      channel.conn = conn;
      if (firstBytes !== null) conn.onData(firstBytes);
    },
  };
  const hostname = host.config.HOST;
  try {
    const listener = bun.listen<BunChannel>({
      hostname,
      port,
      reusePort: true,
      allowHalfOpen: true,
      socket: handlers(host, options),
    });
    host.onStop(() => listener.stop(false));
  } catch (err) {
    throw listenError(err as NodeJS.ErrnoException, hostname, port);
  }
}

/** Whether PORT is served through Bun.listen: on Bun, unless TCP_READ_PATH=stream. */
export function bunListens(config: Config): boolean {
  return bunApi !== null && config.TCP_READ_PATH !== 'stream';
}

/** PORT through Bun.listen, when bunListens(); the tcp transport leaves PORT to it then. */
export const bunTcp: Transport = {
  name: 'bun-tcp',
  portKeys: (config: Config) => (config.PORT === -1 || !bunListens(config) ? [] : ['PORT']),
  tlsKeys: () => [], // TLS_PORT is the tcp transport's (node:tls)
  async start(host, ports) {
    const port = ports.PORT;
    if (port === undefined || bunApi === null || !bunListens(host.config)) return;
    listen(bunApi, host, port);
  },
};
