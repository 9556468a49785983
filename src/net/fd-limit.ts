// How many clients the process's file-descriptor limit can really hold. Every client costs one
// descriptor; past the limit accept() fails with EMFILE and the client is reset without a word.
// Like Redis (adjustOpenFilesLimit), tcpool reads the limit at start-up and, when it cannot hold
// MAX_CONNECTIONS plus a reserve, serves fewer clients so the ones over get a real refusal.
import { readFileSync } from 'node:fs';

/**
 * Descriptors kept for everything that is not a client: Node itself (about 25), each worker thread
 * (about 7: its event loop, listeners, message ports), the log file, and refusals in flight (a
 * refused client holds its descriptor until its refusal is written).
 */
export function reservedFds(workers: number): number {
  return 64 + 8 * workers;
}

/**
 * The soft "Max open files" limit of this process, or null where /proc is not there (not Linux).
 */
export function openFilesLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (m === null || m[1] === 'unlimited') return null;
  return Number(m[1]);
}

export interface ConnectionCap {
  /** The limit applied: MAX_CONNECTIONS, or fewer when descriptors are short. */
  max: number;
  /** Set when it was lowered: the WARN to log once. */
  warning: string | null;
}

/** MAX_CONNECTIONS as the descriptor limit allows. */
export function connectionCap(
  maxConnections: number,
  workers: number,
  fdLimit: number | null,
): ConnectionCap {
  const reserve = reservedFds(workers);
  if (fdLimit === null || maxConnections + reserve <= fdLimit)
    return { max: maxConnections, warning: null };
  const max = Math.max(1, fdLimit - reserve);
  return {
    max,
    warning:
      `MAX_CONNECTIONS ${maxConnections} needs ${maxConnections + reserve} file descriptors ` +
      `(${reserve} reserved), but the open files limit (ulimit -n) is ${fdLimit}: ` +
      `serving at most ${max} connections; raise the limit to serve more`,
  };
}
