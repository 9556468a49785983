// Plain TCP (PORT) and TLS (TLS_PORT): a socket is a Connection's channel as it is. The first
// byte picks the protocol (src/protocol/index.ts); a refusal at accept is written in the
// protocol of the client's first bytes when it speaks at once (Redis clients do), else in the
// line protocol.
import type { Socket } from 'node:net';
import type { Config } from '../../config/schema.ts';
import { detectProtocol } from '../../protocol/index.ts';
import type { Connection } from '../../worker/connection.ts';
import type { Refusal, Transport } from '../transport.ts';

// The socket listeners are shared by every connection (no closures per client): each finds its
// connection through this property of the socket.
const kConnection = Symbol('connection');
type OwnedSocket = Socket & { [kConnection]: Connection };

function onData(this: OwnedSocket, chunk: Buffer): void {
  this[kConnection].onData(chunk);
}
function onEnd(this: OwnedSocket): void {
  this[kConnection].onEnd();
}
function onError(this: OwnedSocket, err: NodeJS.ErrnoException): void {
  // Resets and broken pipes are how clients leave; 'close' follows and does the bookkeeping.
  const conn = this[kConnection];
  conn.owner.logger.debug(`Client error: ${conn.peer}: ${err.code ?? err.message}`);
}
function onClose(this: OwnedSocket): void {
  this[kConnection].onClose();
}

const refusal: Refusal = (error, first) =>
  detectProtocol(first !== null && first.length > 0 ? first[0] : 0).encode(error);

export const tcp: Transport = {
  name: 'tcp',
  portKeys: (config: Config) => [
    ...(config.PORT === -1 ? [] : ['PORT']),
    ...(config.TLS_PORT === 0 ? [] : ['TLS_PORT']),
  ],
  async start(host, ports, tls) {
    for (const key of ['PORT', 'TLS_PORT']) {
      const port = ports[key];
      if (port === undefined || (key === 'TLS_PORT' && tls === null)) continue;
      const transport = key === 'PORT' ? 'tcp' : 'tls';
      await host.listen({
        port,
        tls: key === 'PORT' ? null : tls,
        refusal,
        serve(socket, admitted, firstBytes, refuseProxyHeader) {
          const conn = host.open(socket, { admitted, transport, refuseProxyHeader });
          (socket as OwnedSocket)[kConnection] = conn;
          socket.on('data', onData);
          socket.on('end', onEnd);
          socket.on('error', onError);
          socket.on('close', onClose);
          if (firstBytes !== null) conn.onData(firstBytes);
        },
      });
    }
  },
};
