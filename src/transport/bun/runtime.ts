// Which runtime runs tcpool: Node.js, or Bun (`npm run start:bun`). Bun sets globalThis.Bun; the
// few places that differ ask here (the plain TCP listener, start-up checks).

/** The part of Bun's global API tcpool uses (Bun's own types are not a dependency). */
export interface BunApi {
  listen<Data>(options: BunListenOptions<Data>): BunListener;
}

export interface BunSocket<Data> {
  data: Data;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Bytes the kernel took (Bun keeps none of the rest): the caller queues it for `drain`. */
  write(data: string | Uint8Array): number;
  /** FIN after what was written; the socket stays readable. */
  shutdown(halfClose?: boolean): void;
  /** Flushes and closes. */
  end(): void;
  /** Closes at once (a reset when input is unread). */
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(on?: boolean): boolean;
}

export interface BunSocketHandlers<Data> {
  open(socket: BunSocket<Data>): void;
  data(socket: BunSocket<Data>, data: Buffer): void;
  drain(socket: BunSocket<Data>): void;
  end(socket: BunSocket<Data>): void;
  close(socket: BunSocket<Data>, error?: Error): void;
  error(socket: BunSocket<Data>, error: Error): void;
}

export interface BunListenOptions<Data> {
  hostname: string;
  port: number;
  reusePort?: boolean;
  allowHalfOpen?: boolean;
  socket: BunSocketHandlers<Data>;
}

export interface BunListener {
  readonly port: number;
  /** Stops accepting; with true, also closes every connection. */
  stop(closeActiveConnections?: boolean): void;
}

const bun = (globalThis as { Bun?: BunApi }).Bun;

/** Bun's API when tcpool runs on Bun, else null. */
export const bunApi: BunApi | null = typeof bun === 'object' && bun !== null ? bun : null;

export const runtime: 'node' | 'bun' = bunApi === null ? 'node' : 'bun';
