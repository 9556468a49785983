// Per-client-IP state shared by every worker: connections, failed AUTH attempts and the
// RATE_LIMIT token bucket. The kernel spreads one IP's connections over all workers, so limits
// per IP must be counted in one place: a SharedArrayBuffer hash table. Each slot has a tiny
// spin lock (its critical sections are a few arithmetic operations); Atomics give the ordering
// that makes the plain Float64 fields safe to read under the lock.

const INT_FIELDS = 8;
const LOCK = 0;
const HASH_LO = 1;
const HASH_HI = 2;
const CONNS = 3;
const FAILS = 4;
const FAIL_WINDOW_START = 5; // seconds since epoch, truncated to int32 range by subtraction below
const LAST_SEEN = 6; // seconds since epoch
const FLOAT_FIELDS = 2;
const TOKENS = 0;
const REFILLED_AT = 1; // Date.now() of the last refill
const SLOT_BYTES = INT_FIELDS * 4 + FLOAT_FIELDS * 8;
const PROBES = 16;
/** A slot with no connection, no failures in their window and a full bucket may be reused after this. */
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

const nowS = (): number => Math.floor(Date.now() / 1000) - EPOCH_S;

export class IpTable {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
  private readonly ints: Int32Array;
  private readonly floats: Float64Array;

  /** At least `slots` slots, rounded up to a power of two. */
  static create(slots: number): IpTable {
    const n = 1 << Math.ceil(Math.log2(Math.max(64, slots)));
    return new IpTable(new SharedArrayBuffer(n * SLOT_BYTES));
  }

  constructor(buffer: SharedArrayBuffer) {
    const slots = buffer.byteLength / SLOT_BYTES;
    this.buffer = buffer;
    this.slots = slots;
    this.floats = new Float64Array(buffer, 0, slots * FLOAT_FIELDS);
    this.ints = new Int32Array(buffer, slots * FLOAT_FIELDS * 8, slots * INT_FIELDS);
  }

  private lock(slot: number): void {
    const at = slot * INT_FIELDS + LOCK;
    while (Atomics.compareExchange(this.ints, at, 0, 1) !== 0) {
      // Another thread holds it for a few instructions; spin.
    }
  }

  private unlock(slot: number): void {
    Atomics.store(this.ints, slot * INT_FIELDS + LOCK, 0);
  }

  /**
   * The slot of `ip`, claimed if new, locked on return; -1 if the table is full around its
   * position (the caller then fails open for rate limits and closed for nothing).
   */
  private find(ip: string, limits: IpLimits): number {
    const [lo, hi] = hash(ip);
    const mask = this.slots - 1;
    const now = nowS();
    for (let p = 0; p < PROBES; p++) {
      const slot = (lo + p) & mask;
      const b = slot * INT_FIELDS;
      this.lock(slot);
      const ints = this.ints;
      if (ints[b + HASH_LO] === lo && ints[b + HASH_HI] === hi) return slot;
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
        this.floats[slot * FLOAT_FIELDS + TOKENS] = limits.rateBurst;
        this.floats[slot * FLOAT_FIELDS + REFILLED_AT] = Date.now();
        return slot;
      }
      this.unlock(slot);
    }
    return -1;
  }

  /**
   * Counts a new connection from `ip` unless it already has `max` (0 = no limit). Returns the
   * slot to pass to the other calls, -1 when the table is full (the connection is then not
   * limited per IP), or null when refused.
   */
  connect(ip: string, max: number, limits: IpLimits): number | null {
    const slot = this.find(ip, limits);
    if (slot === -1) return -1;
    const b = slot * INT_FIELDS;
    try {
      if (max > 0 && this.ints[b + CONNS] >= max) return null;
      this.ints[b + CONNS]++;
      this.ints[b + LAST_SEEN] = nowS();
      return slot;
    } finally {
      this.unlock(slot);
    }
  }

  disconnect(slot: number): void {
    if (slot < 0) return;
    this.lock(slot);
    const b = slot * INT_FIELDS;
    if (this.ints[b + CONNS] > 0) this.ints[b + CONNS]--;
    this.ints[b + LAST_SEEN] = nowS();
    this.unlock(slot);
  }

  connections(ip: string, limits: IpLimits): number {
    const slot = this.find(ip, limits);
    if (slot === -1) return 0;
    const n = this.ints[slot * INT_FIELDS + CONNS];
    this.unlock(slot);
    return n;
  }

  /** Takes one token from the slot's bucket; false when the IP is over RATE_LIMIT. */
  takeToken(slot: number, limits: IpLimits, now: number): boolean {
    return this.takeTokens(slot, limits, now, 1) === 1;
  }

  /** Takes up to `want` whole tokens at once (fewer when fewer are left); returns how many. */
  takeTokens(slot: number, limits: IpLimits, now: number, want: number): number {
    if (slot < 0 || limits.rate <= 0) return want;
    this.lock(slot);
    const f = slot * FLOAT_FIELDS;
    const floats = this.floats;
    const elapsed = Math.max(0, now - floats[f + REFILLED_AT]);
    const tokens = Math.min(limits.rateBurst, floats[f + TOKENS] + (elapsed * limits.rate) / 1000);
    floats[f + REFILLED_AT] = now;
    const granted = Math.min(want, Math.floor(tokens));
    floats[f + TOKENS] = tokens - granted;
    this.unlock(slot);
    return granted;
  }

  /** Locks the slot and starts a new AUTH failure window if the last one is over; returns its base. */
  private lockFailures(slot: number, limits: IpLimits): number {
    this.lock(slot);
    const b = slot * INT_FIELDS;
    const now = nowS();
    if (now - this.ints[b + FAIL_WINDOW_START] >= limits.authWindowS) {
      this.ints[b + FAILS] = 0;
      this.ints[b + FAIL_WINDOW_START] = now;
    }
    return b;
  }

  /** True while `ip` has used up AUTH_MAX_FAILURES in the current window. */
  authBlocked(slot: number, limits: IpLimits): boolean {
    if (slot < 0 || limits.authMaxFailures <= 0) return false;
    const b = this.lockFailures(slot, limits);
    const blocked = this.ints[b + FAILS] >= limits.authMaxFailures;
    this.unlock(slot);
    return blocked;
  }

  /** Counts a failed AUTH; returns the failures in the current window. */
  authFailed(slot: number, limits: IpLimits): number {
    if (slot < 0) return 0;
    const b = this.lockFailures(slot, limits);
    const n = ++this.ints[b + FAILS];
    this.unlock(slot);
    return n;
  }
}
