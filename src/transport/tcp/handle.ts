// Plain TCP without net.Socket (issue #11, TCP_READ_PATH=handle, the default on Node): an accepted
// connection's libuv handle is driven directly. Reads land in the worker's shared buffer through
// Node's own read callback (onStreamRead, which knows each read's length); writes go to the
// handle with Node's own request objects (WriteWrap, ShutdownWrap), so libuv keeps the order of
// writes and FIN. A write done at once leaves its WriteWrap unbound (getAsyncId() -1), and the
// next write uses it again. No Readable, no Writable: no allocation, closure or tick per write,
// and about 700 B less per connection. After a worker's first connection, accepted ones are taken
// from the listener before net.Server makes a net.Socket of each (acceptHandles): no socket to
// throw away, 0.5–1 KB less RSS per connection when thousands arrive at once. This file and
// onread.ts are the one place tcpool touches Node's private net internals. Everything used is
// found once per thread (discover) and checked on each handle (adoptHandle, acceptHandles); when
// anything is missing the transport falls back to onread.ts (or net.Server's accept) with one log
// line. test/integration/handle.test.ts fails when a Node upgrade breaks any of it.
//
// The handle's read callback is Node's onStreamRead, which reads the length of each read from
// Node's private state and hands it to the owner of the handle (here a HandleChannel) as it would
// to a net.Socket made with the `onread` option: the channel has the few fields it looks at.
import { type Server, Socket } from 'node:net';
import { constants } from 'node:os';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import type { Channel, Connection } from '../../worker/connection.ts';
import { detach, sharedBuffer, unadoptable } from './onread.ts';

/** The parts of a libuv stream handle (TCPWrap) used here. */
interface TcpHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: WriteReq, buf: Uint8Array): number;
  writeUtf8String(req: WriteReq, s: string): number;
  writev(req: WriteReq, chunks: Buffer[], allBuffers: boolean): number;
  shutdown(req: ShutdownReq): number;
  close(callback: () => void): void;
  getsockname(out: { address?: string; port?: number }): number;
  getpeername(out: { address?: string; port?: number }): number;
  setNoDelay(on: boolean): number;
  onread: unknown;
  [key: symbol]: unknown;
}
const HANDLE_METHODS = [
  'readStart',
  'readStop',
  'useUserBuffer',
  'writeBuffer',
  'writeUtf8String',
  'writev',
  'shutdown',
  'close',
  'getsockname',
  'getpeername',
  'setNoDelay',
] as const;

/**
 * Node's WriteWrap. Bound to a C++ write request only when libuv queued the write (it then has an
 * async id, and oncomplete follows); a write done at once leaves it unbound, to be used again.
 */
interface WriteReq {
  oncomplete: (this: WriteReq, status: number) => void;
  getAsyncId(): number;
  /** What a queued write is: kept alive, and counted, until it completes. */
  buffer: unknown;
  bytes: number;
  channel: HandleChannel | null;
  callback: (() => void) | undefined;
}
interface ShutdownReq {
  handle: TcpHandle;
  oncomplete: (this: ShutdownReq, status: number) => void;
  channel: HandleChannel;
}
type WriteWrapClass = new () => WriteReq;
type ShutdownWrapClass = new () => ShutdownReq;

interface PrivateSocket extends Socket {
  _handle: TcpHandle | null;
  _server: (Server & { _connections: number; _emitCloseIfDrained?: () => void }) | null;
  server: Server | null;
}

/** What was found in this Node (once per thread), or what is missing. */
interface Internals {
  WriteWrap: WriteWrapClass;
  ShutdownWrap: ShutdownWrapClass;
  /** Where a handle keeps its owner: found on the first handle adopted. */
  owner: symbol | null;
  /** Node's read callback for stream handles (onStreamRead): found on the first handle adopted. */
  onread: unknown;
}
let internals: Internals | string | null = null;

/** libuv's code for a shutdown of a socket that is not connected: nothing left to do. */
const UV_ENOTCONN =
  [...getSystemErrorMap()].find(([, [name]]) => name === 'ENOTCONN')?.[0] ??
  -constants.errno.ENOTCONN;
/** getAsyncId() of a request not bound to a C++ one. */
const UNBOUND = -1;
/** handle.shutdown()'s answer when it finished at once. */
const SHUTDOWN_DONE = 1;

const noop = (): void => {};

function symbolNamed(target: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(target).find((s) => s.description === description);
}

/**
 * Finds Node's request classes by running net.Socket's own write and shutdown on a stand-in
 * handle that only notes the request it is given, and the symbols under which a net.Socket keeps
 * its `onread` option (which onStreamRead reads), which the channel's prototype then carries.
 */
function discover(): Internals | string {
  const buffer = sharedBuffer();
  const callback = (): boolean => true;
  let probe: PrivateSocket;
  try {
    probe = new Socket({ onread: { buffer, callback } }) as PrivateSocket;
  } catch (err) {
    return `new net.Socket({ onread }) throws: ${(err as Error).message}`;
  }
  const fields = probe as unknown as Record<symbol, unknown>;
  const own = Object.getOwnPropertySymbols(probe);
  const kBuffer = own.find((s) => fields[s] === buffer);
  const kBufferCb = own.find((s) => fields[s] === callback);
  const kBufferGen = symbolNamed(probe, 'kBufferGen');
  const kHandle = symbolNamed(probe, 'kHandle');
  const proto = Socket.prototype as unknown as Record<string | symbol, unknown>;
  const kUpdateTimer = symbolNamed(Socket.prototype, 'kUpdateTimer');
  probe.destroy();
  if (kBuffer === undefined || kBufferCb === undefined)
    return 'net.Socket ignores its onread option';
  if (kBufferGen === undefined || kHandle === undefined || kUpdateTimer === undefined)
    return 'net.Socket has no kBufferGen, kHandle or kUpdateTimer';
  if (typeof proto._writeGeneric !== 'function' || typeof proto._final !== 'function')
    return 'net.Socket has no _writeGeneric() or _final()';
  let WriteWrap: unknown;
  let ShutdownWrap: unknown;
  const note = (req: object): number => {
    WriteWrap = req.constructor;
    return 0;
  };
  const standIn = { writeUtf8String: note, writeLatin1String: note, writeBuffer: note };
  try {
    const writer = { connecting: false, _handle: standIn, _unrefTimer: noop, [kHandle]: standIn };
    (proto._writeGeneric as (...a: unknown[]) => void).call(writer, false, 'x', 'latin1', noop);
    const shutdown = (req: object): number => {
      ShutdownWrap = req.constructor;
      return SHUTDOWN_DONE;
    };
    const ender = { connecting: false, _handle: { shutdown } };
    (proto._final as (cb: () => void) => void).call(ender, noop);
  } catch (err) {
    return `net.Socket's write or shutdown throws on a stand-in handle: ${(err as Error).message}`;
  }
  if (typeof WriteWrap !== 'function' || (WriteWrap as { name?: string }).name !== 'WriteWrap')
    return "net.Socket's write made no WriteWrap";
  if (new (WriteWrap as WriteWrapClass)().getAsyncId?.() !== UNBOUND)
    return "a new WriteWrap's getAsyncId() is not -1";
  if (
    typeof ShutdownWrap !== 'function' ||
    (ShutdownWrap as { name?: string }).name !== 'ShutdownWrap'
  )
    return "net.Socket's shutdown made no ShutdownWrap";
  // What onStreamRead looks at on the handle's owner, on every channel.
  Object.defineProperties(HandleChannel.prototype, {
    [kBuffer]: { value: buffer, writable: true },
    [kBufferCb]: { value: onRead },
    [kBufferGen]: { value: null },
    [kUpdateTimer]: { value: noop },
  });
  return {
    WriteWrap: WriteWrap as WriteWrapClass,
    ShutdownWrap: ShutdownWrap as ShutdownWrapClass,
    owner: null,
    onread: null,
  };
}

/** Whether this Node has what the handle path needs: null when it does, or what is missing. */
export function probeHandle(): string | null {
  internals ??= discover();
  return typeof internals === 'string' ? internals : null;
}

/**
 * What is missing on this accepted socket for adoptHandle(), or null: onread.ts's checks with
 * every method used here, then Node's read callback and the owner it reads.
 */
function missingFor(socket: PrivateSocket, found: Internals): string | null {
  const missing = unadoptable(socket, HANDLE_METHODS);
  if (missing !== null) return missing;
  const handle = socket._handle!;
  if (typeof (handle as { onread?: unknown }).onread !== 'function')
    return "the socket's handle has no read callback";
  found.owner ??= Object.getOwnPropertySymbols(handle).find((s) => handle[s] === socket) ?? null;
  if (found.owner === null || handle[found.owner] !== socket)
    return "the socket's handle does not name its owner";
  found.onread ??= handle.onread;
  return null;
}

/**
 * Takes an accepted connection's handle from the net.Socket that net.Server made: returns the
 * channel (the old socket is left without a handle, and is garbage), or what this Node lacks,
 * leaving the socket as it was; null when this one socket stays where it is (it has read bytes
 * not handed out yet). The channel reads once start() gives it its connection.
 */
export function adoptHandle(accepted: Socket): HandleChannel | string | null {
  const old = accepted as PrivateSocket;
  if (old.destroyed || old.readableLength > 0 || old.writableLength > 0) return null;
  internals ??= discover();
  const found = internals;
  if (typeof found === 'string') return found;
  const missing = missingFor(old, found);
  if (missing !== null) return missing;
  const { handle, server } = detach(old);
  const channel = new HandleChannel(handle, server);
  handle[found.owner!] = channel;
  handle.useUserBuffer(sharedBuffer());
  return channel;
}

/** A connection the listener accepted, before any net.Socket: see acceptHandles(). */
export interface AcceptedHandle {
  /** The client's address and port (getpeername). */
  readonly address: string;
  readonly port: number;
  /** Serves it without a net.Socket: its channel (counted in net.Server's connections). */
  channel(): HandleChannel;
  /** Or a net.Socket over it, made as net.Server makes one (a refusal is written on it). */
  socket(): Socket;
}

/** net.Server's private parts used by acceptHandles(), and the options its accept applies. */
interface ListeningServer {
  _handle: { onconnection?: unknown } | null;
  _connections: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  pauseOnConnect?: boolean;
  maxConnections?: number;
  blockList?: unknown;
}
type OnConnection = (this: unknown, err: number, clientHandle?: TcpHandle) => void;

/** One accepted handle offered to acceptHandles()'s `take` (a class: no closures per accept). */
class TakenHandle implements AcceptedHandle {
  /** What channel() or socket() made of it, to close if `take` throws. */
  made: HandleChannel | Socket | null = null;
  readonly address: string;
  readonly port: number;
  private readonly handle: TcpHandle;
  private readonly server: Server;
  private readonly found: Internals;

  constructor(handle: TcpHandle, server: Server, found: Internals, address: string, port: number) {
    this.handle = handle;
    this.server = server;
    this.found = found;
    this.address = address;
    this.port = port;
  }

  channel(): HandleChannel {
    const handle = this.handle;
    (this.server as unknown as ListeningServer)._connections++;
    const channel = new HandleChannel(handle, this.server as PrivateSocket['_server']);
    handle[this.found.owner!] = channel;
    handle.onread = this.found.onread;
    handle.reading = false;
    handle.useUserBuffer(sharedBuffer());
    this.made = channel;
    return channel;
  }

  socket(): Socket {
    (this.server as unknown as ListeningServer)._connections++;
    const socket = new Socket({
      handle: this.handle as never,
      allowHalfOpen: true,
      readable: true,
      writable: true,
    }) as PrivateSocket;
    socket._server = this.server as PrivateSocket['_server'];
    socket.server = this.server;
    socket.on('error', () => {}); // resets while refused; 'close' does the bookkeeping
    this.made = socket;
    return socket;
  }
}

/**
 * Takes the connections `server` accepts before net.Server wraps each in a net.Socket that the
 * handle path would throw away at once: Node's `onconnection` on the listening handle is wrapped,
 * and each accepted handle is offered to `take`, which returns true when it dealt with it (through
 * channel() or socket()) and false, having called neither, to let net.Server go on as always (a
 * 'connection' event). Without that garbage a burst of 10,000 connections grows a fresh server's
 * RSS by 0.5–1 KB less per connection (docs/PERFORMANCE.md, section 8). A handle goes to `take`
 * only once a first connection adopted through net.Server has shown the owner symbol and read
 * callback it needs, and only with every method used here; anything else goes the usual way.
 * Taken connections emit no 'connection' event and no `net.server.socket` diagnostics message.
 * Returns what this Node (or this server's options) lacks, or null.
 */
export function acceptHandles(
  server: Server,
  take: (accepted: AcceptedHandle) => boolean,
): string | null {
  internals ??= discover();
  if (typeof internals === 'string') return internals;
  const listening = server as unknown as ListeningServer;
  const original = listening._handle?.onconnection as OnConnection | undefined;
  if (typeof original !== 'function') return "net.Server's handle has no onconnection";
  if (typeof listening._connections !== 'number') return 'net.Server has no _connections count';
  // Only noDelay of net.Server's per-connection options is applied here.
  if (
    listening.keepAlive === true ||
    listening.pauseOnConnect === true ||
    listening.maxConnections !== undefined ||
    listening.blockList !== undefined
  )
    return 'the net.Server has options only its own accept applies';
  const noDelay = listening.noDelay === true;
  const onconnection: OnConnection = function (err, clientHandle) {
    const found = internals as Internals;
    if (err || clientHandle === undefined || found.owner === null || !takeable(clientHandle, found))
      return original.call(this, err, clientHandle);
    // getpeername() fills in the object it is given: one, reused (read before anything else runs).
    peer.address = undefined;
    peer.port = undefined;
    if (clientHandle.getpeername(peer) !== 0 || peer.address === undefined)
      return original.call(this, err, clientHandle);
    if (noDelay) clientHandle.setNoDelay(true);
    const accepted = new TakenHandle(clientHandle, server, found, peer.address, peer.port ?? 0);
    let taken: boolean;
    try {
      taken = take(accepted);
    } catch (error) {
      // Nothing may be left open (a descriptor, net.Server's count) by a throw halfway.
      if (accepted.made === null) clientHandle.close(noop);
      else accepted.made.destroy();
      throw error;
    }
    if (!taken) original.call(this, err, clientHandle);
  };
  (listening._handle as { onconnection: OnConnection }).onconnection = onconnection;
  return null;
}

/** An accepted handle has what the channel uses (as adoptHandle() checks on each socket). */
function takeable(handle: TcpHandle, found: Internals): boolean {
  if (typeof found.onread !== 'function') return false;
  // Accepted handles share one prototype (TCPWrap's), where these methods are: it is checked
  // once, not on each accept (whose loop made garbage: docs/PERFORMANCE.md, section 9).
  const proto: unknown = Object.getPrototypeOf(handle);
  if (proto === checkedPrototype) return true;
  for (let i = 0; i < HANDLE_METHODS.length; i++)
    if (typeof handle[HANDLE_METHODS[i]] !== 'function') return false;
  checkedPrototype = proto;
  return true;
}

/** What getpeername() fills in for onconnection. */
const peer: { address?: string; port?: number; family?: string } = {
  address: undefined,
  port: undefined,
  family: undefined,
};

/** The prototype whose handles had every method takeable() needs. */
let checkedPrototype: unknown = null;

/** onStreamRead's call for each read (this = the channel): `buf` is reused once it returns. */
function onRead(this: HandleChannel, nread: number, buf: Buffer): boolean {
  this.conn?.onData(buf.subarray(0, nread));
  return true;
}

/** The thread's next WriteWrap: the last one, when its write was done at once. */
let spare: WriteReq | null = null;

/**
 * Takes the spare (or a new request) for one write call; dispatched() gives it back when the
 * write left it unbound. Taken, not shared, during the call: JavaScript that runs inside it (an
 * async_hooks init hook) and writes gets a request of its own.
 */
function writeRequest(): WriteReq {
  const req = spare ?? newWriteRequest();
  spare = null;
  return req;
}

/** Fields are set once bound (dispatched()); a request that is given back was never bound. */
function newWriteRequest(): WriteReq {
  const req = new (internals as Internals).WriteWrap();
  req.oncomplete = onWriteComplete;
  req.buffer = null;
  req.bytes = 0;
  req.channel = null;
  req.callback = undefined;
  return req;
}

/** A write libuv queued has reached the kernel, or failed. */
function onWriteComplete(this: WriteReq, status: number): void {
  const channel = this.channel!;
  if (channel.destroyed) return;
  channel.queued -= this.bytes;
  if (status < 0) return channel.fail(status);
  this.callback?.();
}

function onShutdownComplete(this: ShutdownReq): void {
  if (!this.channel.destroyed) this.channel.writeSideDone();
}

/** What onStreamRead asks of a stream's read side before it pushes EOF (never ended before). */
const READABLE_STATE = Object.freeze({ endEmitted: false });

/** cork()'s writes, waiting for uncork(). */
interface Corked {
  chunks: Buffer[];
  bytes: number;
  callbacks: (() => void)[] | null;
}

// HandleChannel's ends.
const E_PEER = 1;
const E_ENDING = 2;
const E_WRITTEN = 4;

/** A Connection's Channel over a libuv TCP handle. */
export class HandleChannel implements Channel {
  private readonly handle: TcpHandle;
  private readonly server: NonNullable<PrivateSocket['_server']>;
  conn: Connection | null = null;
  /** Closed or closing (onStreamRead reads this name). */
  destroyed = false;
  /** Bytes of the writes libuv has not finished (each counted whole, as a Writable does). */
  queued = 0;
  /** Between cork() and uncork(): the chunks, written in one writev. */
  private corked: Corked | null = null;
  /**
   * FIN received, requested and sent (the E_ bits): one field where three took 24 bytes on every
   * connection.
   */
  private ends = 0;
  /** The client sent FIN. */
  private get peerEnded(): boolean {
    return (this.ends & E_PEER) !== 0;
  }
  /** end() was called (FIN requested). */
  private get ending(): boolean {
    return (this.ends & E_ENDING) !== 0;
  }
  /** FIN was sent. */
  private get writeEnded(): boolean {
    return (this.ends & E_WRITTEN) !== 0;
  }

  constructor(handle: TcpHandle, server: PrivateSocket['_server']) {
    this.handle = handle;
    this.server = server!;
  }

  /** The connection it serves: reading starts. */
  start(conn: Connection): void {
    this.conn = conn;
    this.resume();
  }

  get writableLength(): number {
    return this.corked === null ? this.queued : this.queued + this.corked.bytes;
  }
  /** Every read is handed over at once: nothing waits unread here. */
  get readableLength(): number {
    return 0;
  }
  get localAddress(): string | undefined {
    return this.sockname().address;
  }
  get localPort(): number | undefined {
    return this.sockname().port;
  }
  /** Asked for CLIENT LIST only: not kept. */
  private sockname(): { address?: string; port?: number } {
    const out: { address?: string; port?: number } = {};
    if (!this.destroyed) this.handle.getsockname(out);
    return out;
  }

  /** `onWritten` runs once the bytes are in the kernel (later, never during the call). */
  write(data: string | Buffer, onWritten?: () => void): boolean {
    if (this.destroyed || this.ending) return false;
    const corked = this.corked;
    if (corked !== null) {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      corked.chunks.push(buf);
      corked.bytes += buf.length;
      if (onWritten !== undefined) {
        corked.callbacks ??= [];
        corked.callbacks.push(onWritten);
      }
      return true;
    }
    const req = writeRequest();
    if (typeof data === 'string')
      return this.dispatched(req, this.handle.writeUtf8String(req, data), data, onWritten);
    return this.dispatched(req, this.handle.writeBuffer(req, data), data, onWritten);
  }

  /**
   * After a write call: true when it was done at once (its request stays the spare); false when
   * libuv queued it (onWriteComplete follows) or it failed (the channel closes).
   */
  private dispatched(
    req: WriteReq,
    err: number,
    data: string | Buffer | Buffer[],
    onWritten: (() => void) | undefined,
    bytes = -1,
  ): boolean {
    if (req.getAsyncId() !== UNBOUND) {
      req.buffer = data;
      req.bytes =
        bytes >= 0 ? bytes : typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      req.channel = this;
      req.callback = onWritten;
      this.queued += req.bytes;
      return false;
    }
    spare = req;
    if (err !== 0) {
      this.fail(err);
      return false;
    }
    if (onWritten !== undefined)
      queueMicrotask(() => {
        if (!this.destroyed) onWritten();
      });
    return true;
  }

  cork(): void {
    this.corked ??= { chunks: [], bytes: 0, callbacks: null };
  }

  uncork(): void {
    const corked = this.corked;
    if (corked === null) return;
    const { chunks, bytes, callbacks } = corked;
    this.corked = null;
    const onWritten =
      callbacks === null
        ? undefined
        : callbacks.length === 1
          ? callbacks[0]
          : () => {
              for (const fn of callbacks) if (!this.destroyed) fn();
            };
    if (chunks.length === 0 || this.destroyed) return;
    const req = writeRequest();
    this.dispatched(req, this.handle.writev(req, chunks, true), chunks, onWritten, bytes);
  }

  pause(): this {
    if (!this.destroyed && this.handle.reading) {
      this.handle.reading = false;
      this.handle.readStop();
    }
    return this;
  }

  resume(): this {
    if (!this.destroyed && !this.peerEnded && !this.handle.reading) {
      this.handle.reading = true;
      this.handle.readStart();
    }
    return this;
  }

  /** FIN once what was written is sent (libuv's shutdown waits for the writes before it). */
  end(): this {
    if (this.destroyed || this.ending) return this;
    this.uncork();
    if (this.destroyed) return this; // the corked writes failed
    this.ends |= E_ENDING;
    const req = new (internals as Internals).ShutdownWrap();
    req.handle = this.handle;
    req.oncomplete = onShutdownComplete;
    req.channel = this;
    const err = this.handle.shutdown(req);
    if (err === SHUTDOWN_DONE || err === UV_ENOTCONN) this.writeSideDone();
    else if (err !== 0) this.fail(err);
    return this;
  }

  /** FIN sent: once the client's has come too, the connection closes. */
  writeSideDone(): void {
    this.ends |= E_WRITTEN;
    if (this.peerEnded) this.destroy();
  }

  /** onStreamRead's EOF (the client sent FIN): push(null), then read(0). */
  push(chunk: unknown): boolean {
    if (chunk !== null || this.peerEnded) return false;
    this.ends |= E_PEER;
    this.handle.reading = false;
    this.conn?.onEnd();
    if (this.writeEnded && !this.destroyed) this.destroy();
    return false;
  }
  read(): null {
    return null;
  }
  get _readableState(): { endEmitted: boolean } {
    return READABLE_STATE;
  }

  /** A read, write or shutdown failed (a reset, a broken pipe): logged at DEBUG, then closed. */
  fail(status: number): void {
    this.destroy(Object.assign(new Error('client error'), { code: errorName(status) }));
  }

  /** At once, unsent replies lost. `err`: why (onStreamRead passes read errors here). */
  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    const conn = this.conn;
    if (err !== undefined && conn !== null)
      conn.owner.logger.debug(
        `Client error: ${conn.peer}: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
      );
    this.corked = null;
    this.queued = 0;
    this.handle.reading = false;
    this.handle.close(() => this.conn?.onClose());
    // net.Server's count, at once as net.Socket's destroy() gives it back.
    const server = this.server;
    server._connections--;
    server._emitCloseIfDrained?.();
    return this;
  }
}

function errorName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `error ${status}`;
  }
}
