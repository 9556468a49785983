// What a command handler returns. One handler serves every protocol; each encoder (line.ts,
// resp.ts) turns these values into its own bytes.
import type { ReplyError } from '../errors.ts';

/** RESP3 map (RESP2: a flat array of keys and values; line: "k=v k=v"). */
export class RespMap {
  readonly entries: readonly (readonly [Reply, Reply])[];
  constructor(entries: readonly (readonly [Reply, Reply])[]) {
    this.entries = entries;
  }
  static from(obj: Record<string, Reply>): RespMap {
    return new RespMap(Object.entries(obj));
  }
}

/** RESP3 set (RESP2 and line: a list). */
export class RespSet {
  readonly items: readonly Reply[];
  constructor(items: readonly Reply[]) {
    this.items = items;
  }
}

/** RESP3 verbatim string, e.g. INFO's text (RESP2: a bulk string). */
export class Verbatim {
  readonly format: string;
  readonly text: string;
  constructor(text: string, format = 'txt') {
    this.format = format;
    this.text = text;
  }
}

/** A floating-point number, even when its value is whole (RESP3 double; RESP2 bulk string). */
export class Double {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/**
 * A simple string even inside an aggregate, where plain strings become bulk strings (COMMAND
 * flags).
 */
export class Status {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/**
 * A constant reply encoded once for each protocol (PONG, OK): returning the same instance costs
 * no encoding and no allocation per request.
 */
export class Preencoded {
  readonly text: string;
  readonly line: string;
  readonly resp: string;
  constructor(text: string) {
    if (/[\r\n]/.test(text)) throw new Error('a preencoded reply is one line of text');
    this.text = text;
    this.line = `${text}\n`;
    this.resp = `+${text}\r\n`;
  }
}

/** RESP3 out-of-band push (RESP2: an array). Reserved: no built-in command sends one yet. */
export class Push {
  readonly items: readonly Reply[];
  constructor(items: readonly Reply[]) {
    this.items = items;
  }
}

/**
 * The replies of several commands as one array (EXEC): each item is written as it would be on its
 * own, so +OK stays a simple string where a plain list would make it a bulk string.
 */
export class Replies {
  readonly items: readonly Reply[];
  constructor(items: readonly Reply[]) {
    this.items = items;
  }
}

/**
 * A reply with two forms, for protocols read by people and by programs: TIME is a local date
 * for the line protocol and Redis's [seconds, microseconds] for RESP and JSON; QUIT is "Goodbye"
 * or OK. The protocol's encoder picks; the handler never asks which protocol it serves.
 */
export class Forms {
  /** For people: the line protocol. */
  readonly text: Reply;
  /** For programs: RESP, JSON. */
  readonly data: Reply;
  constructor(text: Reply, data: Reply) {
    this.text = text;
    this.data = data;
  }
}

/**
 * - string: a status or text (RESP simple string, or bulk if it holds a newline)
 * - Buffer: bytes returned exactly as they are (RESP bulk string)
 * - number: an integer (a non-integer is sent as a double)
 * - boolean, null, ReplyError, lists, and the RESP3 shapes above
 */
export type Reply =
  | string
  | Buffer
  | number
  | boolean
  | null
  | ReplyError
  | RespMap
  | RespSet
  | Verbatim
  | Double
  | Push
  | Status
  | Preencoded
  | Replies
  | Forms
  | readonly Reply[];
