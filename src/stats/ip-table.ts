// Per-client-IP state shared by every worker: connections, failed AUTH attempts and the
// RATE_LIMIT token bucket. The kernel spreads one IP's connections over all workers, so limits
// per IP must be counted in one place: a SharedArrayBuffer hash table (IP_TABLE_SLOTS entries).
// Each entry has a tiny
// spin lock (its critical sections are a few arithmetic operations); Atomics give the ordering
// that makes the plain Float64 fields safe to read under the lock.
import { monotonicMs } from './clock.ts';

const INT_FIELDS = 8;
const LOCK = 0;
const HASH_LO = 1;
const HASH_HI = 2;
const CONNS = 3;
const FAILS = 4;
const FAIL_WINDOW_START = 5; // seconds, as nowS() (monotonicMs() less EPOCH_S: fits an int32)
const LAST_SEEN = 6; // seconds, as nowS()
const FLOAT_FIELDS = 2;
const TOKENS = 0;
const REFILLED_AT = 1; // monotonicMs() of the last refill
const ENTRY_BYTES = INT_FIELDS * 4 + FLOAT_FIELDS * 8;
const PROBES = 16;
/**
 * An entry with no connection, no failures in their window and a full bucket may be reused after
 * this.
 */
const FORGET_AFTER_S = 600;
/** Seconds are stored relative to this, so they fit an Int32 for decades. */
const EPOCH_S = 1_700_000_000;

export interface IpLimits {
  /** Commands per second per IP, 0 = off; the bucket holds `rateBurst`. */
  rate: number;
  rateBurst: number;
  authMaxFailures: number;
  authWindowS: number;
}

/** Two independent 32-bit FNV-1a hashes of the address: a 64-bit key, never all zero. */
function hash(ip: string): [number, number] {
  let lo = 0x811c9dc5 | 0;
  let hi = 0x050c5d1f | 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    lo = Math.imul(lo ^ c, 0x01000193);
    hi = Math.imul(hi ^ (c + 0x9e), 0x01000193) ^ (hi >>> 15);
  }
  if (lo === 0 && hi === 0) lo = 1;
  return [lo, hi];
}

const nowS = (): number => Math.floor(monotonicMs() / 1000) - EPOCH_S;

export class IpTable {
  readonly buffer: SharedArrayBuffer;
  readonly entries: number;
  private readonly ints: Int32Array;
  private readonly floats: Float64Array;

  /** At least `entries` entries, rounded up to a power of two. */
  static create(entries: number): IpTable {
    const n = 1 << Math.ceil(Math.log2(Math.max(64, entries)));
    return new IpTable(new SharedArrayBuffer(n * ENTRY_BYTES));
  }

  constructor(buffer: SharedArrayBuffer) {
    const entries = buffer.byteLength / ENTRY_BYTES;
    this.buffer = buffer;
    this.entries = entries;
    this.floats = new Float64Array(buffer, 0, entries * FLOAT_FIELDS);
    this.ints = new Int32Array(buffer, entries * FLOAT_FIELDS * 8, entries * INT_FIELDS);
  }

  private lock(entry: number): void {
    const at = entry * INT_FIELDS + LOCK;
    while (Atomics.compareExchange(this.ints, at, 0, 1) !== 0) {
      // Another thread holds it for a few instructions; spin.
    }
  }

  private unlock(entry: number): void {
    Atomics.store(this.ints, entry * INT_FIELDS + LOCK, 0);
  }

  /**
   * The entry of `ip`, claimed if new, locked on return; -1 if the table is full around its
   * position (the caller then fails open for rate limits and closed for nothing).
   */
  private find(ip: string, limits: IpLimits): number {
    const [lo, hi] = hash(ip);
    const mask = this.entries - 1;
    const now = nowS();
    for (let p = 0; p < PROBES; p++) {
      const entry = (lo + p) & mask;
      const b = entry * INT_FIELDS;
      this.lock(entry);
      const ints = this.ints;
      if (ints[b + HASH_LO] === lo && ints[b + HASH_HI] === hi) return entry;
      const empty = ints[b + HASH_LO] === 0 && ints[b + HASH_HI] === 0;
      const stale =
        ints[b + CONNS] === 0 &&
        now - ints[b + LAST_SEEN] > FORGET_AFTER_S &&
        (ints[b + FAILS] === 0 || now - ints[b + FAIL_WINDOW_START] > limits.authWindowS);
      if (empty || stale) {
        ints[b + HASH_LO] = lo;
        ints[b + HASH_HI] = hi;
        ints[b + CONNS] = 0;
        ints[b + FAILS] = 0;
        ints[b + FAIL_WINDOW_START] = now;
        ints[b + LAST_SEEN] = now;
        this.floats[entry * FLOAT_FIELDS + TOKENS] = limits.rateBurst;
        this.floats[entry * FLOAT_FIELDS + REFILLED_AT] = monotonicMs();
        return entry;
      }
      this.unlock(entry);
    }
    return -1;
  }

  /**
   * Counts a new connection from `ip` unless it already has `max` (0 = no limit). Returns the
   * entry to pass to the other calls, -1 when the table is full (the connection is then not
   * limited per IP), or null when refused.
   */
  connect(ip: string, max: number, limits: IpLimits): number | null {
    const entry = this.find(ip, limits);
    if (entry === -1) return -1;
    const b = entry * INT_FIELDS;
    try {
      if (max > 0 && this.ints[b + CONNS] >= max) return null;
      this.ints[b + CONNS]++;
      this.ints[b + LAST_SEEN] = nowS();
      return entry;
    } finally {
      this.unlock(entry);
    }
  }

  disconnect(entry: number): void {
    if (entry < 0) return;
    this.lock(entry);
    const b = entry * INT_FIELDS;
    if (this.ints[b + CONNS] > 0) this.ints[b + CONNS]--;
    this.ints[b + LAST_SEEN] = nowS();
    this.unlock(entry);
  }

  /** Takes up to `want` whole tokens at once (fewer when fewer are left); returns how many. */
  takeTokens(entry: number, limits: IpLimits, now: number, want: number): number {
    if (entry < 0 || limits.rate <= 0) return want;
    this.lock(entry);
    const f = entry * FLOAT_FIELDS;
    const floats = this.floats;
    const elapsed = Math.max(0, now - floats[f + REFILLED_AT]);
    const tokens = Math.min(limits.rateBurst, floats[f + TOKENS] + (elapsed * limits.rate) / 1000);
    floats[f + REFILLED_AT] = now;
    const granted = Math.min(want, Math.floor(tokens));
    floats[f + TOKENS] = tokens - granted;
    this.unlock(entry);
    return granted;
  }

  /**
   * Locks the entry and starts a new AUTH failure window if the last one is over; returns its base.
   */
  private lockFailures(entry: number, limits: IpLimits): number {
    this.lock(entry);
    const b = entry * INT_FIELDS;
    const now = nowS();
    if (now - this.ints[b + FAIL_WINDOW_START] >= limits.authWindowS) {
      this.ints[b + FAILS] = 0;
      this.ints[b + FAIL_WINDOW_START] = now;
    }
    return b;
  }

  /** True while `ip` has used up AUTH_MAX_FAILURES in the current window. */
  authBlocked(entry: number, limits: IpLimits): boolean {
    if (entry < 0 || limits.authMaxFailures <= 0) return false;
    const b = this.lockFailures(entry, limits);
    const blocked = this.ints[b + FAILS] >= limits.authMaxFailures;
    this.unlock(entry);
    return blocked;
  }

  /** Counts a failed AUTH; returns the failures in the current window. */
  authFailed(entry: number, limits: IpLimits): number {
    if (entry < 0) return 0;
    const b = this.lockFailures(entry, limits);
    const n = ++this.ints[b + FAILS];
    this.unlock(entry);
    return n;
  }
}
