// The client side of RESP: finds where one reply ends, without building its value. `tcpool bench`
// counts replies with it; tests use it to check that the encoder's bytes frame exactly.

const CR = 0x0d;
const LF = 0x0a;

/**
 * End offset of the reply starting at buf[pos], or -1 if it is not complete yet; throws on bad
 * bytes.
 */
export function scanReply(buf: Buffer, pos: number): number {
  if (pos >= buf.length) return -1;
  const type = buf[pos];
  const nl = buf.indexOf(LF, pos);
  if (nl === -1) return -1;
  if (nl === pos || buf[nl - 1] !== CR) throw new Error(`RESP: line without CRLF at ${pos}`);
  const lineEnd = nl + 1;
  switch (type) {
    case 0x2b: // + simple string
    case 0x2d: // - error
    case 0x3a: // : integer
    case 0x5f: // _ null
    case 0x2c: // , double
    case 0x23: // # boolean
    case 0x28: // ( big number
      return lineEnd;
    case 0x24: // $ bulk string
    case 0x3d: // = verbatim string
    case 0x21: {
      // ! bulk error
      const len = Number(buf.toString('latin1', pos + 1, nl - 1));
      if (!Number.isInteger(len)) throw new Error(`RESP: bad length at ${pos}`);
      if (len < 0) return lineEnd;
      const end = lineEnd + len + 2;
      return end <= buf.length ? end : -1;
    }
    case 0x2a: // * array
    case 0x7e: // ~ set
    case 0x3e: // > push
    case 0x25: {
      // % map: twice as many elements
      let count = Number(buf.toString('latin1', pos + 1, nl - 1));
      if (!Number.isInteger(count)) throw new Error(`RESP: bad count at ${pos}`);
      if (type === 0x25) count *= 2;
      let at = lineEnd;
      for (let i = 0; i < count; i++) {
        at = scanReply(buf, at);
        if (at === -1) return -1;
      }
      return at;
    }
    default:
      throw new Error(`RESP: unknown type byte 0x${type.toString(16)} at ${pos}`);
  }
}
