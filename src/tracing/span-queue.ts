// The batch span processor: finished spans are recorded in batches as they end (SpanBatch), and
// each batch is encoded and leaves as the OpenTelemetry specification's BatchSpanProcessor and its OTEL_BSP_*
// variables say: a request when OTEL_BSP_MAX_EXPORT_BATCH_SIZE spans wait, or every
// OTEL_BSP_SCHEDULE_DELAY ms; spans dropped (and counted) past OTEL_BSP_MAX_QUEUE_SIZE; an export
// given up after OTEL_BSP_EXPORT_TIMEOUT ms. At most MAX_IN_FLIGHT exports run at once; while they
// do, spans wait, so a slow or absent collector costs dropped spans, never memory or a crash.
import { randomFillSync } from 'node:crypto';
import { type EncodedParent, type Envelope, SpanBatch } from './span-batch.ts';

/**
 * Sends one request body of `spans` spans and calls done once (true: the receiver took it). An
 * exporter that took the body's memory to another thread may give it back (`memory`) for reuse.
 */
export type ExportBatch = (
  body: Buffer,
  spans: number,
  done: (ok: boolean, error?: Error, memory?: ArrayBuffer) => void,
) => void;

export interface SpanQueueOptions {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduleDelayMs: number;
  exportTimeoutMs: number;
}

/** What the queue tells the operator: spans exported, dropped, and batches that failed. */
export interface SpanQueueEvents {
  exported(spans: number): void;
  dropped(total: number, maxQueueSize: number): void;
  failed(spans: number, error: Error): void;
}

const MAX_IN_FLIGHT = 2;

export class SpanQueue {
  /** Full batches waiting for an export slot, oldest first. */
  private readonly full: SpanBatch[] = [];
  /** The batch being filled, or null. */
  private current: SpanBatch | null = null;
  /** Batches encoded and cleared, for reuse. */
  private readonly free: SpanBatch[] = [];
  /** Spans in `full` and `current`. */
  private waiting = 0;
  private inFlight = 0;
  /** Spans in the exports under way. */
  private inFlightSpans = 0;
  /**
   * The memory of a body that was sent, for the next one (no allocation in steady state), when
   * the exporter gave it back (a body handed to another thread is not).
   */
  private spare: Buffer | null = null;
  /** The size of the last body, for a new one's first allocation. */
  private lastBodyBytes = 64 * 1024;
  /** Random bytes for a batch's ids (crypto.randomFillSync), reused. */
  private random = new Uint8Array(0);
  private readonly idle: (() => void)[] = [];
  private flushScheduled = false;
  private readonly timer: NodeJS.Timeout;
  private readonly options: SpanQueueOptions;
  private readonly envelope: Envelope;
  private readonly send: ExportBatch;
  private readonly events: SpanQueueEvents;
  exported = 0;
  dropped = 0;
  failed = 0;

  constructor(
    options: SpanQueueOptions,
    envelope: Envelope,
    send: ExportBatch,
    events: SpanQueueEvents,
  ) {
    this.options = options;
    this.envelope = envelope;
    this.send = send;
    this.events = events;
    this.timer = setInterval(() => this.flush(false), options.scheduleDelayMs);
    this.timer.unref();
  }

  /** Queues one span (SpanBatch.add()'s arguments): the only call on the request path. */
  add(parent: EncodedParent | null, start: number, end: number, tail: Buffer): void {
    if (this.waiting >= this.options.maxQueueSize) {
      this.dropped++;
      this.events.dropped(this.dropped, this.options.maxQueueSize);
      return;
    }
    this.current ??= this.free.pop() ?? new SpanBatch(this.options.maxExportBatchSize);
    this.current.add(parent, start, end, tail);
    this.waiting++;
    if (this.current.count < this.options.maxExportBatchSize) return;
    this.full.push(this.current);
    this.current = null;
    if (!this.flushScheduled) {
      // After the current command's reply, not inside it.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush(true);
      });
    }
  }

  /** Spans waiting to leave. */
  get pending(): number {
    return this.waiting;
  }

  /** Sends what waits as far as the in-flight limit allows: full batches, and then (timer,
   *  drain) the one being written. */
  private flush(fullOnly: boolean): void {
    while (this.inFlight < MAX_IN_FLIGHT) {
      let batch = this.full.shift();
      if (batch === undefined) {
        if (fullOnly || this.current === null) return;
        batch = this.current;
        this.current = null;
      }
      this.exportBatch(batch);
    }
  }

  private exportBatch(batch: SpanBatch): void {
    const count = batch.count;
    this.inFlightSpans += count;
    if (this.random.length < 24 * count) this.random = new Uint8Array(24 * count);
    randomFillSync(this.random, 0, 24 * count);
    const body = batch.encode(this.envelope, this.random, this.spare, this.lastBodyBytes);
    batch.clear();
    this.free.push(batch);
    this.spare = null;
    this.lastBodyBytes = body.bytes.length;
    this.waiting -= count;
    this.inFlight++;
    let settled = false;
    const finish = (ok: boolean, error?: Error, givenUp = false, returned?: ArrayBuffer): void => {
      if (settled) {
        // The memory of a body given up on, back after all: reusable now.
        if (returned !== undefined) this.keep(Buffer.from(returned));
        return;
      }
      settled = true;
      clearTimeout(timeout);
      this.inFlightSpans -= count;
      // A body given up on (timed out, or the exporter threw) may still be in the exporter's
      // hands: its memory is not reused; memory handed to another thread (detached) only when
      // it comes back.
      if (returned !== undefined) this.keep(Buffer.from(returned));
      else if (!givenUp && body.buffer.byteLength > 0) this.keep(body.buffer);
      this.inFlight--;
      if (ok) {
        this.exported += count;
        this.events.exported(count);
      } else {
        this.failed += count;
        this.events.failed(count, error ?? new Error('export failed'));
      }
      if (this.inFlight === 0) for (const fn of this.idle.splice(0)) fn();
      // A batch that filled up while this one was out goes now.
      this.flush(true);
    };
    const timeout = setTimeout(
      () =>
        finish(
          false,
          new Error(`no answer in ${this.options.exportTimeoutMs} ms (OTEL_BSP_EXPORT_TIMEOUT)`),
          true,
        ),
      this.options.exportTimeoutMs,
    );
    timeout.unref();
    try {
      this.send(body.bytes, count, (ok, error, memory) => finish(ok, error, false, memory));
    } catch (err) {
      finish(false, err as Error, true);
    }
  }

  /** Keeps the larger of two buffers for the next body. */
  private keep(memory: Buffer): void {
    if (memory.length > (this.spare?.length ?? 0)) this.spare = memory;
  }

  /** Sends everything still queued and waits for every export (shutdown, tests). */
  async drain(): Promise<void> {
    for (;;) {
      this.flush(false);
      if (this.inFlight === 0 && this.waiting === 0) return;
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
  }

  /** Spans waiting or being exported. */
  get unsent(): number {
    return this.waiting + this.inFlightSpans;
  }

  /**
   * Stops the timer and drains, for at most `timeoutMs`: false if spans were still unsent then
   * (a collector that does not answer must not hold a shutdown).
   */
  async shutdown(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    clearInterval(this.timer);
    if (!Number.isFinite(timeoutMs)) {
      await this.drain();
      return true;
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(resolve, timeoutMs, false)));
    const drained = await Promise.race([this.drain().then(() => true), late]);
    clearTimeout(timer);
    return drained;
  }
}
