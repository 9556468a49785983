// The read path without streams (issue #11): the one place tcpool touches Node's private `net`
// internals. An accepted socket's handle is taken from the net.Socket that net.Server made and
// wrapped in a new one with the documented `onread` option (public since Node 12.10), which
// net.Server does not pass on. Each read then lands in one buffer shared by the whole worker and
// calls a plain function: no Readable push, no 'data' emit, no maybeReadMore tick, no 64 KiB
// allocation and copy per read. Writes stay on the Writable path.
//
// The shared buffer is overwritten by the next read of any connection of this worker, so whatever
// outlives a read is copied (RequestDecoder.retain and copyArgs). What this file relies on is
// probed at start-up (probeOnread) and again on each socket (adopt); when anything is missing the
// transport keeps the 'data' path. test/integration/onread.test.ts fails when a Node upgrade
// breaks it.
import { type Server, Socket } from 'node:net';

/** The parts of a libuv stream handle (TCPWrap) used here. */
interface StreamHandle {
  reading: boolean;
  readStop(): number;
  readStart(): number;
  useUserBuffer(buf: Uint8Array): void;
}
/** net.Socket's private fields used here (net.Server's connection bookkeeping included). */
interface PrivateSocket extends Socket {
  _handle: StreamHandle | null;
  _server: (Server & { _connections: number }) | null;
  server: Server | null;
}

/** Called with `this` = the socket; false stops reading (as socket.pause() does). */
export type ReadCallback = (this: Socket, nread: number, buf: Buffer) => boolean;

/** libuv reads at most 64 KiB at a time into Node's own buffers: the same here. */
const READ_BUFFER_BYTES = 64 * 1024;
let readBuffer: Buffer | null = null;

/**
 * The worker's read buffer (one per thread: reads are delivered one at a time and each is handled
 * to the end before the next). Its own ArrayBuffer, not a pool slice, so that the decoders can
 * tell a view of it from anything else by `.buffer`.
 */
export function sharedBuffer(): Buffer {
  readBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  return readBuffer;
}

/**
 * Whether this Node honours what the adapter needs of net.Socket itself: null when it does, or
 * what is missing. The handle's own methods are checked on each socket (adopt).
 */
export function probeOnread(): string | null {
  const callback = (): boolean => true;
  let socket: Socket;
  try {
    socket = new Socket({ onread: { buffer: sharedBuffer, callback } });
  } catch (err) {
    return `new net.Socket({ onread }) throws: ${(err as Error).message}`;
  }
  const honoured = Object.getOwnPropertySymbols(socket).some(
    (key) => (socket as unknown as Record<symbol, unknown>)[key] === callback,
  );
  const fields = ['_handle', '_server', 'server'].filter((f) => !(f in socket));
  socket.destroy();
  if (!honoured) return 'net.Socket ignores its onread option';
  if (fields.length > 0) return `net.Socket has no ${fields.join(', ')}`;
  return null;
}

/** What is missing on this accepted socket for adopt(), or null; handle.ts adds its methods. */
export function unadoptable(
  socket: { _handle: object | null; _server: { _connections: number } | null },
  methods: readonly string[] = ['readStop', 'readStart', 'useUserBuffer'],
): string | null {
  const handle = socket._handle as Record<string, unknown> | null;
  if (handle === null || typeof handle !== 'object') return 'the socket has no handle';
  for (const m of methods)
    if (typeof handle[m] !== 'function') return `the socket's handle has no ${m}()`;
  if (typeof handle.reading !== 'boolean') return "the socket's handle has no reading flag";
  const server = socket._server;
  if (server === null || typeof server._connections !== 'number')
    return "net.Server's _connections count is not on the socket";
  return null;
}

/**
 * Takes an accepted socket's handle and its net.Server away from it (the socket is garbage after
 * this). net.Server's socket started reading at accept. This is called in the same tick (or,
 * after a PROXY header, from within the old socket's read that finished it): no read may run for
 * the old socket again.
 */
export function detach<H extends { reading: boolean; readStop(): number }, S>(old: {
  _handle: H | null;
  _server: S | null;
  server: unknown;
}): { handle: H; server: S } {
  const handle = old._handle!;
  const server = old._server!;
  if (handle.reading) {
    handle.readStop();
    handle.reading = false;
  }
  old._handle = null;
  old._server = null;
  old.server = null;
  return { handle, server };
}

/**
 * Moves an accepted connection onto the onread path: returns the new socket (the old one is left
 * without a handle, and is garbage), or what this Node lacks for it, leaving the old socket as it
 * was; null when this one socket stays on the 'data' path (it has read bytes not handed out yet).
 */
export function adopt(accepted: Socket, callback: ReadCallback): Socket | string | null {
  const old = accepted as PrivateSocket;
  if (old.destroyed || old.readableLength > 0) return null;
  const missing = unadoptable(old);
  if (missing !== null) return missing;
  const { handle, server } = detach(old);
  const socket = new Socket({
    handle: handle as never,
    allowHalfOpen: true,
    readable: true,
    writable: true,
    onread: { buffer: sharedBuffer, callback },
  }) as PrivateSocket;
  // The connection was counted by net.Server when it was accepted; the new socket gives the
  // count back when it closes, so getConnections() and server.close() see it as before.
  socket._server = server;
  socket.server = server;
  return socket;
}
