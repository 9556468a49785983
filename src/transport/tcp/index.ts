// Plain TCP (PORT) and TLS (TLS_PORT): a socket is a Connection's channel as it is. The first
// byte picks the protocol (src/protocol/index.ts); a refusal at accept is written in the
// protocol of the client's first bytes when it speaks at once (Redis clients do), else in the
// line protocol. On Node, plain TCP goes without net.Socket through handle.ts
// (TCP_READ_PATH=handle), or reads through onread.ts (TCP_READ_PATH=onread), as far as this Node
// allows: each falls back to the next with one log line. TLS stays on the 'data' path.
import { Socket } from 'node:net';
import type { Config } from '../../config/schema.ts';
import { detectProtocol } from '../../protocol/index.ts';
import type { Connection, ConnectionOrigin } from '../../worker/connection.ts';
import type { Refusal, Transport, TransportHost } from '../transport.ts';
import { bunListens } from '../bun/index.ts';
import { runtime } from '../bun/runtime.ts';
import { plainIp } from '../../net/address.ts';
import { acceptHandles, adoptHandle, HandleChannel, probeHandle } from './handle.ts';
import { adopt, probeOnread } from './onread.ts';

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
/** The onread path: `buf` is the worker's read buffer, reused once this returns. */
function onRead(this: Socket, nread: number, buf: Buffer): boolean {
  (this as OwnedSocket)[kConnection].onData(buf.subarray(0, nread));
  return true;
}

type Path = 'handle' | 'onread' | 'stream';

/**
 * The path this worker's plain TCP connections take: asked once at start-up. Each path this Node
 * lacks what it needs for falls back to the next (handle, onread, stream), with one log line
 * (worker 0's).
 */
function startingPath(host: TransportHost): Path {
  const wanted = host.config.TCP_READ_PATH;
  if (wanted === 'stream' || runtime !== 'node') return 'stream';
  if (wanted === 'handle') {
    const missing = probeHandle();
    if (missing === null) return 'handle';
    if (host.workerId === 0) unavailable(host, 'handle', missing);
  }
  const missing = probeOnread();
  if (missing === null) return 'onread';
  if (host.workerId === 0) unavailable(host, 'onread', missing);
  return 'stream';
}

function unavailable(host: TransportHost, path: Path, missing: string): void {
  const next = path === 'handle' ? 'reading through onread' : "reading through 'data' events";
  host.logger.warn(`TCP_READ_PATH=${path} unavailable (${missing}): ${next}`);
}

const refusal: Refusal = (error, first) =>
  detectProtocol(first !== null && first.length > 0 ? first[0] : 0).encode(error);

export const tcp: Transport = {
  name: 'tcp',
  portKeys: (config: Config) => [
    ...(config.PORT === -1 ? [] : ['PORT']),
    ...(config.TLS_PORT === 0 ? [] : ['TLS_PORT']),
  ],
  tlsKeys: (config: Config) => (config.TLS_PORT === 0 ? [] : ['TLS_PORT']),
  async start(host, ports, tls) {
    let path = startingPath(host);
    /** A client on the handle path: its Connection, reading from now on. */
    const startChannel = (
      channel: HandleChannel,
      origin: Omit<ConnectionOrigin, 'authenticated'>,
      firstBytes: Buffer | null,
    ): void => {
      const conn = host.open(channel, origin);
      channel.start(conn);
      if (firstBytes !== null) conn.onData(firstBytes);
    };
    for (const key of ['PORT', 'TLS_PORT']) {
      const port = ports[key];
      if (port === undefined || (key === 'TLS_PORT' && tls === null)) continue;
      if (key === 'PORT' && bunListens(host.config)) continue; // Bun.listen has it (../bun/)
      const transport = key === 'PORT' ? 'tcp' : 'tls';
      await host.listen({
        port,
        tls: key === 'PORT' ? null : tls,
        refusal,
        // The handle path takes accepted connections before net.Server makes a net.Socket of
        // each (handle.ts acceptHandles); a trusted proxy's, and any it cannot take, go on to
        // serve() below.
        listening(server) {
          if (transport !== 'tcp' || path !== 'handle') return;
          const missing = acceptHandles(server, (accepted) => {
            if (path !== 'handle') return false;
            const ip = plainIp(accepted.address);
            const entry = host.admitUnread(ip, accepted.port, () => accepted.socket(), refusal);
            if (entry === undefined) return false; // a PROXY header to read first
            if (entry === null) return true; // refused, on a socket made for it
            const { admitted, refuseProxyHeader } = entry;
            startChannel(
              accepted.channel(),
              { admitted, transport, refuseProxyHeader, sharedReadBuffer: true },
              null,
            );
            return true;
          });
          if (missing !== null && host.workerId === 0)
            host.logger.warn(`TCP: connections accepted through net.Sockets (${missing})`);
        },
        serve(accepted, admitted, firstBytes, refuseProxyHeader) {
          const origin = { admitted, transport, refuseProxyHeader, sharedReadBuffer: true };
          if (path === 'handle' && transport === 'tcp') {
            const channel = adoptHandle(accepted);
            if (channel instanceof HandleChannel) return startChannel(channel, origin, firstBytes);
            if (channel !== null) {
              // Something adoptHandle() needs is gone: this worker goes on with onread.
              unavailable(host, 'handle', channel);
              path = probeOnread() === null ? 'onread' : 'stream';
            }
          }
          let socket = accepted;
          let sharedReadBuffer = false;
          if (path !== 'stream' && transport === 'tcp') {
            const adopted = adopt(accepted, onRead);
            if (adopted instanceof Socket) {
              socket = adopted;
              sharedReadBuffer = true;
            } else if (adopted !== null) {
              // Something adopt() needs is gone: this worker stays on the 'data' path.
              path = 'stream';
              unavailable(host, 'onread', adopted);
            }
          }
          const conn = host.open(socket, { ...origin, sharedReadBuffer });
          (socket as OwnedSocket)[kConnection] = conn;
          if (!sharedReadBuffer) socket.on('data', onData);
          socket.on('end', onEnd);
          socket.on('error', onError);
          socket.on('close', onClose);
          if (firstBytes !== null) conn.onData(firstBytes);
        },
      });
    }
  },
};
