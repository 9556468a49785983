// Who may run commands, and how many: AUTH tokens (failures counted per IP across workers, with a
// lock-out) and the RATE_LIMIT token bucket per IP. One per worker, shared by its connections.
import type { TokenVerifier } from '../auth/tokens.ts';
import type { AuthOutcome } from '../commands/context.ts';
import type { Config } from '../config/schema.ts';
import type { LogThrottle } from '../log/throttle.ts';
import { blockList, inList } from '../net/address.ts';
import type { Counter } from '../stats/counters.ts';
import type { IpLimits, IpTable } from '../stats/ip-table.ts';
import { monotonicMs } from '../stats/clock.ts';

const UNLIMITED = 2 ** 30;

export class AccessControl {
  readonly tokenVerifier: TokenVerifier;
  readonly ipTable: IpTable | null;
  readonly ipLimits: IpLimits;
  /** RATE_LIMIT is on (and the per-IP table exists). */
  readonly rateLimited: boolean;
  /** RATE_LIMIT tokens a connection takes from its IP's bucket at once. */
  private readonly rateBatch: number;
  private readonly authExempt;
  private readonly throttle: LogThrottle;
  private readonly count: (counter: Counter) => void;

  constructor(
    config: Config,
    tokenVerifier: TokenVerifier,
    ipTable: IpTable | null,
    throttle: LogThrottle,
    count: (counter: Counter) => void,
  ) {
    this.tokenVerifier = tokenVerifier;
    this.ipTable = ipTable;
    this.throttle = throttle;
    this.count = count;
    this.ipLimits = {
      rate: config.RATE_LIMIT,
      rateBurst: config.RATE_LIMIT_BURST || Math.max(1, config.RATE_LIMIT),
      authMaxFailures: config.AUTH_MAX_FAILURES,
      authWindowS: Math.ceil(config.AUTH_FAILURE_WINDOW_MS / 1000),
    };
    this.rateLimited = config.RATE_LIMIT > 0 && ipTable !== null;
    // Up to 16 at once, but never more than 1/64 of the burst: a low limit stays exact.
    this.rateBatch = Math.max(1, Math.min(16, Math.floor(this.ipLimits.rateBurst / 64)));
    this.authExempt = blockList(config.AUTH_EXEMPT_NETWORKS);
  }

  /** A new client starts authenticated when no AUTH is configured or its network is exempt. */
  startsAuthenticated(ip: string): boolean {
    return !this.tokenVerifier.enabled || inList(this.authExempt, ip);
  }

  /**
   * RATE_LIMIT tokens for a connection that used up its own: taken from its IP's bucket, shared
   * by all workers, a few at a time when the limit is high (one lock per batch), one at a time
   * when it is low (exact). 0 means over the limit (counted and logged).
   */
  takeRateTokens(ipEntry: number, peer: string): number {
    // A connection from before a reload turned RATE_LIMIT on has no entry to take from.
    if (ipEntry < 0) return UNLIMITED;
    const n = this.ipTable!.takeTokens(ipEntry, this.ipLimits, monotonicMs(), this.rateBatch);
    if (n === 0) {
      this.count('rate_limited');
      this.throttle.warn(
        'Rate limit',
        `Rate limit exceeded: ${peer} (RATE_LIMIT ${this.ipLimits.rate}/s per IP)`,
      );
    }
    return n;
  }

  /** Checks a token (AUTH, HELLO … AUTH); failures are counted per IP across workers. */
  async authenticate(
    ipEntry: number,
    peer: string,
    token: Buffer,
    user: string | null,
  ): Promise<AuthOutcome> {
    if (!this.tokenVerifier.enabled) return 'not-configured';
    const table = this.ipTable;
    if (table?.authBlocked(ipEntry, this.ipLimits)) {
      this.throttle.warn('AUTH blocked', `AUTH refused for ${peer}: too many failed attempts`);
      return 'blocked';
    }
    // One user, "default", as Redis without ACLs; the token is checked whatever the user, so
    // a wrong user name takes as long as a wrong token.
    const ok = (await this.tokenVerifier.verify(token)) && (user === null || user === 'default');
    if (ok) return 'ok';
    this.count('auth_failures');
    const failures = table?.authFailed(ipEntry, this.ipLimits) ?? 0;
    this.throttle.warn(
      'AUTH failed',
      `AUTH failed for ${peer} (${failures} in the current window)`,
    );
    return 'invalid';
  }
}
