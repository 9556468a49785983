// The clock for durations: timeouts, idle times, connection ages, rate-limit refills, AUTH failure
// windows. It is monotonic (CLOCK_MONOTONIC, through performance.now()), so a step of the wall
// clock (an NTP step, a resumed VM, `date -s`) neither closes every client as idle nor turns the
// timeouts and refills off until the wall clock catches up. Adding the thread's time origin (the
// wall clock when the thread started) makes readings comparable across the process's threads, as
// the shared IP table needs: they differ by the wall clock's drift between the threads' starts.
import { performance } from 'node:perf_hooks';

const origin = performance.timeOrigin;

/** Milliseconds on a monotonic clock shared by this process's threads (near Date.now() at start). */
export function monotonicMs(): number {
  return origin + performance.now();
}
