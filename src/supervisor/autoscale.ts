// POOL_AUTOSCALE: the pool grows by one worker when the workers' mean event-loop utilisation stays
// above POOL_AUTOSCALE_HIGH_PERCENT for POOL_AUTOSCALE_WINDOW_MS, and shrinks by one when it stays
// below POOL_AUTOSCALE_LOW_PERCENT as long; never outside min..max, and never twice within
// POOL_AUTOSCALE_COOLDOWN_MS. The decision is a pure function of the samples (decide()), tested on
// its own; the Autoscaler only takes the samples and asks the supervisor for the resize, through
// the same path as PUT /api/v1/pool.
import type { Config } from '../config/schema.ts';
import { monotonicMs } from '../stats/clock.ts';

export interface AutoscalePolicy {
  min: number;
  max: number;
  /** Utilisation thresholds, 0..1; low < high, and the band between them changes nothing. */
  high: number;
  low: number;
  windowMs: number;
  cooldownMs: number;
}

export interface AutoscaleState {
  /** When the utilisation went above `high` (null: it is not above now); likewise `low`. */
  highSince: number | null;
  lowSince: number | null;
  /** When the pool last changed, by the autoscaler or by hand. */
  lastChange: number;
}

export interface Decision {
  state: AutoscaleState;
  /** The size wanted: the current size when nothing is to change. */
  size: number;
  /** Why it changes (for the log); null when it does not. */
  reason: string | null;
}

export const initialState = (at = Number.NEGATIVE_INFINITY): AutoscaleState => ({
  highSince: null,
  lowSince: null,
  lastChange: at,
});

/** The policy POOL_AUTOSCALE* describe, or null when autoscaling is off. */
export function policyOf(config: Config): AutoscalePolicy | null {
  const range = config.POOL_AUTOSCALE;
  if (range === null) return null;
  return {
    min: range.min,
    max: range.max,
    high: config.POOL_AUTOSCALE_HIGH_PERCENT / 100,
    low: config.POOL_AUTOSCALE_LOW_PERCENT / 100,
    windowMs: config.POOL_AUTOSCALE_WINDOW_MS,
    cooldownMs: config.POOL_AUTOSCALE_COOLDOWN_MS,
  };
}

/** `size` brought within min..max. */
export const clampSize = (p: AutoscalePolicy, size: number): number =>
  Math.min(p.max, Math.max(p.min, size));

const percent = (x: number): string => `${Math.round(x * 100)}%`;

/**
 * One sample: at `at` (ms), `size` workers serve with a mean utilisation of `elu` (0..1; null when
 * no worker has a fresh sample). A size outside min..max is brought within at once; otherwise the
 * pool changes by one worker when the utilisation has stayed past a threshold for the whole
 * window and the cooldown has passed. After a change both windows start again.
 */
export function decide(
  p: AutoscalePolicy,
  state: AutoscaleState,
  at: number,
  size: number,
  elu: number | null,
): Decision {
  const bounded = clampSize(p, size);
  if (bounded !== size)
    return {
      state: initialState(at),
      size: bounded,
      reason: `pool size ${size} is outside POOL_AUTOSCALE ${p.min}..${p.max}`,
    };
  if (elu === null) return { state, size, reason: null };
  const next: AutoscaleState = {
    highSince: elu > p.high ? (state.highSince ?? at) : null,
    lowSince: elu < p.low ? (state.lowSince ?? at) : null,
    lastChange: state.lastChange,
  };
  const cooled = at - next.lastChange >= p.cooldownMs;
  const sustained = (since: number | null): boolean => since !== null && at - since >= p.windowMs;
  if (cooled && size < p.max && sustained(next.highSince))
    return {
      state: initialState(at),
      size: size + 1,
      reason: `mean event-loop utilisation ${percent(elu)}, above ${percent(p.high)} for ${Math.round(at - next.highSince!)} ms`,
    };
  if (cooled && size > p.min && sustained(next.lowSince))
    return {
      state: initialState(at),
      size: size - 1,
      reason: `mean event-loop utilisation ${percent(elu)}, below ${percent(p.low)} for ${Math.round(at - next.lowSince!)} ms`,
    };
  return { state: next, size, reason: null };
}

/** What the autoscaler needs of the supervisor. */
export interface AutoscaleTarget {
  /**
   * Workers serving, and their mean event-loop utilisation (null: none sampled yet); null while
   * the pool must not change (starting, draining, stopping).
   */
  load(): { size: number; elu: number | null } | null;
  /** Resizes through the supervisor's one resize path; `reason` is logged. */
  resize(size: number, reason: string): Promise<void>;
  /** A resize failed: report it (the autoscaler carries on). */
  failed(err: Error): void;
}

/**
 * Samples the pool's load on a timer and applies decide(). The workers sample their utilisation
 * once a second, so it looks at most once a second (more often only for a shorter window).
 */
export class Autoscaler {
  private policy: AutoscalePolicy | null = null;
  private state = initialState();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private readonly target: AutoscaleTarget;

  constructor(target: AutoscaleTarget) {
    this.target = target;
  }

  get enabled(): AutoscalePolicy | null {
    return this.policy;
  }

  /** Starts, changes or stops it (start-up and every reload); the windows start again. */
  configure(policy: AutoscalePolicy | null): void {
    this.stop();
    this.policy = policy;
    this.state = initialState(this.state.lastChange);
    if (policy === null) return;
    const everyMs = Math.max(100, Math.min(1000, Math.floor(policy.windowMs / 4)));
    this.timer = setInterval(() => void this.tick(), everyMs);
    this.timer.unref();
  }

  /** The pool was resized by hand: the windows and the cooldown start from now. */
  changedByHand(now = monotonicMs()): void {
    this.state = initialState(now);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  async tick(now = monotonicMs()): Promise<void> {
    const policy = this.policy;
    if (policy === null || this.busy) return;
    const load = this.target.load();
    if (load === null) return;
    const d = decide(policy, this.state, now, load.size, load.elu);
    this.state = d.state;
    if (d.reason === null) return;
    this.busy = true;
    try {
      await this.target.resize(d.size, d.reason);
    } catch (err) {
      this.target.failed(err as Error);
    } finally {
      this.busy = false;
    }
  }
}
