// WebSocket (WS_PORT; on HTTP_PORT at path /ws when the two are equal), with the `ws` library.
// Subprotocols: "tcpool.line" (a text frame is one line-protocol request, its reply one text
// frame) and "resp3" (binary frames of RESP, RESP3 from the start); no subprotocol means
// tcpool.line. Each client is a Connection like any TCP client (same executor, limits, timeouts,
// back-pressure and shutdown); what is WebSocket's own: the Origin allow-list
// (WS_ALLOWED_ORIGINS), the message size limit (WS_MAX_MESSAGE_BYTES) and ping/pong keep-alive
// (WS_PING_INTERVAL_MS).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Config } from '../../config/schema.ts';
import { line } from '../../protocol/line.ts';
import type { Protocol } from '../../protocol/protocol.ts';
import { resp } from '../../protocol/resp.ts';
import { traceContextFrom } from '../../tracing/tracing.ts';
import type { Channel, Connection } from '../../worker/connection.ts';
import type { Transport, TransportHost } from '../transport.ts';
import { rejectUpgrade, type WebClient, WebPort } from '../web/port.ts';

/** The subprotocols offered, and the protocol and RESP version each starts with. */
const SUBPROTOCOLS: Record<string, { codec: Protocol; respVersion: 2 | 3 }> = {
  'tcpool.line': { codec: line, respVersion: 2 },
  resp3: { codec: resp, respVersion: 3 },
};
const DEFAULT_SUBPROTOCOL = 'tcpool.line';
const SHARED_PATH = '/ws';

/** A WebSocket as a Connection's channel: one reply per message, flow control on its socket. */
class WsChannel implements Channel {
  private readonly ws: WebSocket;
  private readonly socket: Socket;
  private readonly binary: boolean;

  constructor(ws: WebSocket, socket: Socket, binary: boolean) {
    this.ws = ws;
    this.socket = socket;
    this.binary = binary;
  }

  write(data: string | Buffer, onWritten?: () => void): void {
    // A line-protocol reply's "\n" ends the line; in a text frame the frame does.
    if (!this.binary) {
      if (typeof data === 'string') data = data.endsWith('\n') ? data.slice(0, -1) : data;
      else if (data[data.length - 1] === 0x0a) data = data.subarray(0, data.length - 1);
    }
    this.ws.send(data, { binary: this.binary }, onWritten && (() => onWritten()));
  }
  cork(): void {}
  uncork(): void {}
  get writableLength(): number {
    return this.ws.bufferedAmount;
  }
  get readableLength(): number {
    return this.socket.readableLength;
  }
  pause(): void {
    this.ws.pause();
  }
  resume(): void {
    this.ws.resume();
  }
  end(): void {
    this.ws.close(1000);
  }
  destroy(): void {
    this.ws.terminate();
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }
}

/** Whether a browser page from `origin` may connect (non-browsers send no Origin). */
function originAllowed(origin: string | undefined, allowed: readonly string[]): boolean {
  return origin === undefined || allowed.includes('*') || allowed.includes(origin);
}

function acceptUpgrades(host: TransportHost, web: WebPort, shared: boolean): void {
  const config = host.config;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.WS_MAX_MESSAGE_BYTES,
    perMessageDeflate: false,
    handleProtocols: (offered: Set<string>) => {
      for (const name of offered) if (name in SUBPROTOCOLS) return name;
      return false;
    },
  });
  const alive = new Map<WebSocket, boolean>();
  web.upgrade = (req: IncomingMessage, socket: Socket, head: Buffer, client: WebClient) => {
    if (shared && new URL(req.url ?? '/', 'http://x').pathname !== SHARED_PATH)
      return rejectUpgrade(socket, 404, `WebSockets are served at ${SHARED_PATH}`);
    if (!originAllowed(req.headers.origin, config.WS_ALLOWED_ORIGINS)) {
      host.count('ws_origin_rejections');
      host.throttle.warn(
        'WebSocket origin refused',
        `WebSocket refused for ${client.peer}: Origin ${req.headers.origin} is not in WS_ALLOWED_ORIGINS`,
      );
      return rejectUpgrade(socket, 403, 'Origin not allowed');
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const chosen = SUBPROTOCOLS[ws.protocol === '' ? DEFAULT_SUBPROTOCOL : ws.protocol];
      client.handedOver = true;
      host.forget(client);
      const conn = host.open(new WsChannel(ws, socket, chosen.codec !== line), {
        admitted: client.admitted,
        transport: 'websocket',
        refuseProxyHeader: false,
        protocol: chosen,
        messages: true,
        announced: true, // the web port logged it when it connected
      });
      // Browsers cannot set headers on a WebSocket: ?traceparent= in the URL does as well.
      const traceparent = new URL(req.url ?? '/', 'http://x').searchParams.get('traceparent');
      conn.traceContext = traceContextFrom(
        traceparent === null ? req.headers : { ...req.headers, traceparent },
      );
      serve(host, ws, conn, alive);
    });
  };
  if (config.WS_PING_INTERVAL_MS > 0) {
    const timer = setInterval(() => {
      for (const [ws, answered] of alive) {
        if (!answered) {
          host.count('ws_ping_timeouts');
          ws.terminate();
          continue;
        }
        alive.set(ws, false);
        ws.ping();
      }
    }, config.WS_PING_INTERVAL_MS);
    timer.unref();
  }
}

function serve(
  host: TransportHost,
  ws: WebSocket,
  conn: Connection,
  alive: Map<WebSocket, boolean>,
): void {
  alive.set(ws, true);
  ws.on('pong', () => alive.set(ws, true));
  ws.on('message', (data: Buffer) => conn.onMessage(data));
  ws.on('error', (err: Error & { code?: string }) => {
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      host.count('ws_oversized_messages');
      host.throttle.warn(
        'WebSocket message too big',
        `WebSocket client ${conn.peer} closed: a message over WS_MAX_MESSAGE_BYTES (${host.config.WS_MAX_MESSAGE_BYTES})`,
      );
    } else {
      host.logger.debug(`Client error: ${conn.peer}: ${err.code ?? err.message}`);
    }
  });
  ws.on('close', () => {
    alive.delete(ws);
    conn.onClose();
  });
}

export const websocket: Transport = {
  name: 'websocket',
  portKeys: (config: Config) => (config.WS_PORT === 0 ? [] : ['WS_PORT']),
  tlsKeys: (config: Config) => (config.WS_PORT !== 0 && config.WS_TLS ? ['WS_TLS'] : []),
  async start(host, ports, tls) {
    const port = ports.WS_PORT;
    if (port === undefined) return;
    const config = host.config;
    const shared = config.WS_PORT === config.HTTP_PORT;
    const web = WebPort.of(host, port, config.WS_TLS ? tls : null);
    acceptUpgrades(host, web, shared);
    await web.start();
  },
};
