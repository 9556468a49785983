// One HTTP request as a session: commands see the same context as on any stream, and run
// through the same executor. What outlives the request lives on its connection (WebClient): the
// RATE_LIMIT tokens taken from the IP's bucket, and the bearer token that was verified.
import type { ClientInfo } from '../../commands/context.ts';
import type { Protocol } from '../../protocol/protocol.ts';
import type { Reply } from '../../protocol/reply.ts';
import { Session } from '../../worker/session.ts';
import type { TransportHost } from '../transport.ts';
import type { WebClient } from '../web/port.ts';

export class HttpSession extends Session {
  readonly codec: Protocol | null = null;
  /** A response is the whole answer: no pub/sub messages can follow it (SUBSCRIBE is refused). */
  readonly pushes = false;
  readonly client: WebClient;
  /** Replies a command sent ahead of its own (ctx.send): the JSON's "sent" list. */
  sent: Reply[] | null = null;

  constructor(host: TransportHost, client: WebClient, authenticated: boolean) {
    super(host, {
      admitted: client.admitted,
      authenticated,
      transport: 'http',
      clientId: client.clientId,
    });
    this.client = client;
    this.respVersion = 3;
  }

  override get protocol(): string {
    return 'json';
  }

  /** QUIT: the response is the last on this connection. */
  closeAfterReply(): void {
    this.client.closing = true;
  }

  send(reply: Reply): void {
    this.sent ??= [];
    this.sent.push(reply);
  }

  /** When the HTTP connection closes (a session is one request; its connection may serve more). */
  whenClosed(fn: () => void): void {
    const socket = this.client.socket;
    if (socket.destroyed) fn();
    else socket.once('close', fn);
  }

  clientInfo(): ClientInfo {
    return { ...this.client.clientInfo(), cmd: this.lastCommand.toLowerCase(), protocol: 'json' };
  }
}
