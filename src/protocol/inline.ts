// Redis's inline request syntax, for a RESP connection that sends a line instead of an array
// ("PING\r\n", what `redis-cli --pipe` files and telnet users send). It follows Redis's
// sdssplitargs(): words split on white space, "double quotes" with \n \r \t \b \a \xHH escapes,
// 'single quotes' where only \' is special, and a closing quote that must end its word. One
// difference: a NUL byte is an ordinary byte here, where Redis's C string parsing stalls on it.

const isSpace = (b: number): boolean => b === 0x20 || (b >= 0x09 && b <= 0x0d); // C isspace()
/** Ends an unquoted word (sdssplitargs's list: no \v or \f). */
const endsWord = (b: number): boolean => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const BACKSLASH = 0x5c;

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return -1;
}

/** \n \r \t \b \a inside double quotes; any other escaped byte stands for itself. */
function escaped(b: number): number {
  switch (b) {
    case 0x6e:
      return 0x0a;
    case 0x72:
      return 0x0d;
    case 0x74:
      return 0x09;
    case 0x62:
      return 0x08;
    case 0x61:
      return 0x07;
    default:
      return b;
  }
}

/**
 * The words of buf[start, end) (a line without its line ending), or null when a quote is not
 * closed or is followed by something other than white space (Redis: "unbalanced quotes").
 * Unquoted words are views of `buf`, not copies.
 */
export function splitInline(buf: Buffer, start: number, end: number): Buffer[] | null {
  const words: Buffer[] = [];
  let i = start;
  for (;;) {
    while (i < end && isSpace(buf[i])) i++;
    if (i >= end) return words;
    const wordStart = i;
    while (i < end && !endsWord(buf[i]) && buf[i] !== DQUOTE && buf[i] !== SQUOTE) i++;
    if (i >= end || (buf[i] !== DQUOTE && buf[i] !== SQUOTE)) {
      words.push(buf.subarray(wordStart, i));
      continue;
    }
    // A quoted part: it ends the word, which may have begun unquoted (a"b c" is `ab c`).
    const quote = buf[i++];
    const bytes: number[] = [];
    for (let j = wordStart; j < i - 1; j++) bytes.push(buf[j]);
    let closed = false;
    while (i < end) {
      const b = buf[i];
      if (b === quote) {
        if (i + 1 < end && !isSpace(buf[i + 1])) return null;
        i++;
        closed = true;
        break;
      }
      if (b === BACKSLASH && i + 1 < end) {
        const next = buf[i + 1];
        if (quote === SQUOTE) {
          if (next === SQUOTE) {
            bytes.push(SQUOTE);
            i += 2;
            continue;
          }
        } else if (next === 0x78 && i + 3 < end) {
          const hi = hexValue(buf[i + 2]);
          const lo = hexValue(buf[i + 3]);
          if (hi >= 0 && lo >= 0) {
            bytes.push(hi * 16 + lo);
            i += 4;
            continue;
          }
          bytes.push(next);
          i += 2;
          continue;
        } else {
          bytes.push(escaped(next));
          i += 2;
          continue;
        }
      }
      bytes.push(b);
      i++;
    }
    if (!closed) return null;
    words.push(Buffer.from(bytes));
  }
}
