// The client's failures, from the one catalogue (src/errors.ts).
import { codes } from '../errors.ts';

export { ClientError } from '../errors.ts';

export const clientErrors = {
  timeout: codes.ERR_CLIENT_TIMEOUT,
  connectionLost: codes.ERR_CLIENT_CONNECTION_LOST,
  queueFull: codes.ERR_CLIENT_QUEUE_FULL,
  closed: codes.ERR_CLIENT_CLOSED,
  connect: codes.ERR_CLIENT_CONNECT,
  protocol: codes.ERR_CLIENT_PROTOCOL,
} as const;
