// Redis's glob patterns for PSUBSCRIBE and PUBSUB CHANNELS (stringmatchlen): * ? [abc] [^a]
// [a-z] and \x, over bytes (channel names are latin1 strings here, one char per byte).

/** A matcher for the pattern, compiled once. */
export function globMatcher(pattern: string): (name: string) => boolean {
  if (pattern === '*') return () => true;
  if (!/[*?[\\]/.test(pattern)) return (name) => name === pattern;
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      re += '[\\s\\S]*';
    } else if (c === '?') {
      re += '[\\s\\S]';
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += escapeChar(pattern[++i]);
    } else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) {
        re += escapeChar(c); // an unclosed "[" is a literal, as in Redis
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negate = body.startsWith('^') && body.length > 1;
      if (negate) body = body.slice(1);
      let set = '';
      for (let j = 0; j < body.length; j++) {
        if (body[j] === '\\' && j + 1 < body.length) set += escapeChar(body[++j]);
        else if (body[j + 1] === '-' && j + 2 < body.length) {
          const [a, b] = [body[j], body[j + 2]].sort();
          set += `${escapeChar(a)}-${escapeChar(b)}`;
          j += 2;
        } else set += escapeChar(body[j]);
      }
      re += `[${negate ? '^' : ''}${set}]`;
      i = close;
    } else {
      re += escapeChar(c);
    }
  }
  const compiled = new RegExp(`${re}$`);
  return (name) => compiled.test(name);
}

function escapeChar(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
}
