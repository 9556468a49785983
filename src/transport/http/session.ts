// One HTTP request as a session: commands see the same context as on any stream, and run
// through the same executor. What outlives the request lives on its connection (WebClient): the
// RATE_LIMIT tokens taken from the IP's bucket, and the bearer token that was verified.
import type { ClientInfo } from '../../commands/context.ts';
import type { Protocol } from '../../protocol/protocol.ts';
import { Session } from '../../worker/session.ts';
import type { TransportHost } from '../transport.ts';
import type { WebClient } from '../web/port.ts';

export class HttpSession extends Session {
  readonly codec: Protocol | null = null;
  readonly client: WebClient;

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

  clientInfo(): ClientInfo {
    return { ...this.client.clientInfo(), cmd: this.lastCommand.toLowerCase(), protocol: 'json' };
  }
}
