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

/**
 * Whole milliseconds on the same monotonic clock, counted from this thread's start (from 1, so
 * 0 can mean "never"), for the times every client keeps (last read, created, lingering since)
 * and compares only within its worker. V8 stores a field holding a small integer in the object
 * itself; a fraction, or monotonicMs()'s 13 digits, takes a 16-byte number box per field: up to
 * 96 B an idle connection (`benchmarks/idle-heap.ts`). After 2^31 ms (24.8 days of a worker's
 * life) the values take a box again: the same as before, never wrong.
 */
export function tickMs(): number {
  return Math.floor(performance.now()) + 1;
}
