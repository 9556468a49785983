// Log lines for events an attacker controls (rejections, failed AUTH, timeouts) are throttled per
// kind: the first is written at once, the rest are summed once a second, so no flood of bad
// clients can flood the log.
import type { Logger } from './logger.ts';

export class LogThrottle {
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly suppressed = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(logger: Logger, intervalMs = 1000) {
    this.logger = logger;
    this.intervalMs = intervalMs;
  }

  warn(kind: string, message: string): void {
    if (this.timers.has(kind)) {
      this.suppressed.set(kind, (this.suppressed.get(kind) ?? 0) + 1);
      return;
    }
    this.logger.warn(message);
    const timer = setTimeout(() => {
      this.timers.delete(kind);
      const n = this.suppressed.get(kind) ?? 0;
      this.suppressed.delete(kind);
      if (n > 0)
        this.logger.warn(
          `${kind}: ${n} more in the last ${this.intervalMs / 1000} s (not logged one by one)`,
        );
    }, this.intervalMs);
    timer.unref();
    this.timers.set(kind, timer);
  }
}
