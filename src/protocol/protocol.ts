// What a protocol is to the rest of tcpool: a socket-free decoder that yields requests, and an
// encoder for every Reply type. The connection drives any protocol through these two interfaces
// and never learns which one it holds; a new protocol is a new codec plus one line in index.ts.
import type { CommandSpec } from '../commands/registry.ts';
import type { ReplyError } from '../errors.ts';
import type { ReplySink } from './output.ts';
import type { Reply } from './reply.ts';

/** RequestDecoder.request() results. */
export const NEED_MORE = 0;
export const REQUEST = 1;
/** A framing error: the stream cannot be read further (see RequestDecoder.failure). */
export const FAILED = 2;
export type DecodeResult = typeof NEED_MORE | typeof REQUEST | typeof FAILED;

/** Every limit a decoder checks before it buffers (MAX_LINE_BYTES, MAX_BULK_BYTES …). */
export interface RequestLimits {
  /** Longest line: a line-protocol request, a RESP header or inline request. */
  maxLine: number;
  /** Largest single argument. */
  maxBulk: number;
  /** Most arguments in one request. */
  maxArgs: number;
  /** Largest request, all its arguments together. */
  maxRequest: number;
}

/** One client's request stream. Fields set by request() stay valid until its next call. */
export interface RequestDecoder {
  push(chunk: Buffer): void;
  /** True while bytes of an unfinished or unread request are held. */
  readonly pending: boolean;
  /**
   * A message ended (a WebSocket frame) or the input did (EOF): what was received forms complete
   * requests, as if its terminator had been sent (the original server answered a last line
   * without "\n").
   */
  boundary(): void;
  request(): DecodeResult;
  /** After REQUEST: the command name is nameBuf[nameStart, nameEnd), looked up without a copy. */
  readonly nameBuf: Buffer;
  readonly nameStart: number;
  readonly nameEnd: number;
  /** After REQUEST: the arguments as `spec` takes them (the line protocol's restOfLine). */
  args(spec: CommandSpec): Buffer[];
  /** After REQUEST, for a command the registry does not have (or this protocol does not offer). */
  unknown(): ReplyError;
  /** After FAILED: the reply sent before the connection closes. */
  readonly failure: ReplyError;
  /**
   * The transport reuses its read buffer once a read returns (Node's handle and onread paths, Bun): args()
   * returns copies, so a command may keep its arguments (an async command, a stored value).
   */
  copyArgs: boolean;
  /**
   * The chunks pushed so far may lie in `shared`, a read buffer overwritten once the current read
   * returns: copy whatever is still held in it (unread bytes, a partial request, the arguments of
   * a request not complete yet). Pieces held from earlier reads are copies already, and new ones
   * are always the last held, so this costs what the current read left behind, not more.
   */
  retain(shared: ArrayBufferLike): void;
}

/** What a protocol's encoder needs to know about the client (HELLO 3 switches RESP to RESP3). */
export interface EncodingState {
  readonly respVersion: 2 | 3;
}

export interface Protocol {
  /** As CLIENT LIST, logs and traces show it: "line", "resp". */
  readonly name: string;
  /** Whether a stream whose first byte is this one speaks this protocol (plain TCP and TLS). */
  claims(firstByte: number): boolean;
  decoder(limits: RequestLimits): RequestDecoder;
  /** Encodes one reply; every Reply type has a form in every protocol. */
  write(reply: Reply, state: EncodingState, out: ReplySink): void;
  /** One reply on its own (refusals written before a connection exists). */
  encode(reply: Reply): string | Buffer;
  /**
   * Whether this protocol offers a command. Every protocol offers the "core" family (the executor
   * asks only about the others, off the hot path); the line protocol does not offer "redis", the
   * commands that exist only so Redis clients work.
   */
  offers(spec: CommandSpec): boolean;
}
