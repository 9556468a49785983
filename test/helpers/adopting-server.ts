// A net.Server on loopback whose every accepted socket goes through `adopt` (the TCP adapters'
// tests: onread.ts, handle.ts); connect() opens a half-open-capable client and resolves with it
// and what `adopt` made of the server's side, in accept order.
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export async function adoptingServer<T>(adopt: (accepted: Socket) => T) {
  const ready: T[] = [];
  const waiting: ((peer: T) => void)[] = [];
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (accepted) => {
    const peer = adopt(accepted);
    const waiter = waiting.shift();
    if (waiter !== undefined) waiter(peer);
    else ready.push(peer);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const next = (): Promise<T> =>
    new Promise((resolve) => {
      const peer = ready.shift();
      if (peer !== undefined) resolve(peer);
      else waiting.push(resolve);
    });
  const connections = (): Promise<number> =>
    new Promise((resolve, reject) =>
      server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
    );
  const connect = async (): Promise<{ client: Socket; peer: T }> => {
    const client = createConnection({ port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => {});
    await once(client, 'connect');
    return { client, peer: await next() };
  };
  return { server, connect, connections };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 5 ms; throws after `ms`. */
export async function until(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * server.close() completes only once an adopted connection has closed (net.Server's count is the
 * adapter's to give back): the client half-closes, `endPeer` ends the adapter's side, and only
 * then may the close callback run.
 */
export async function closeWaitsForAdopted<
  T extends { ended: Promise<unknown>; closed: Promise<unknown> },
>(adopting: Awaited<ReturnType<typeof adoptingServer<T>>>, endPeer: (peer: T) => void) {
  const { server, connect } = adopting;
  const { client, peer } = await connect();
  let serverClosed = false;
  server.close(() => {
    serverClosed = true;
  });
  await sleep(100);
  if (serverClosed)
    throw new Error('server.close() completed while an adopted connection was open');
  client.end();
  await peer.ended;
  endPeer(peer);
  await peer.closed;
  await until(() => serverClosed, "the server's close callback");
}
