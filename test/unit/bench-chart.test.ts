// tcpool bench --chart: evenly spaced, round latency ticks, and no label outside the picture.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { latencyChart, tickStep } from '../../src/bench/chart.ts';
import { benchOptions } from '../../src/bench/plan.ts';
import type { BenchResult } from '../../src/bench/run.ts';

function result(maxUs: number): BenchResult {
  const share: [number, number][] = [
    [0, 0.02],
    [50, 0.04],
    [90, 0.06],
    [99, 0.13],
    [99.9, 0.38],
    [99.99, 0.81],
    [99.999, 1],
    [100, 1],
  ];
  const curve = share.map(([p, f]): [number, number] => [p, Math.max(1, Math.round(f * maxUs))]);
  return {
    options: benchOptions(),
    elapsedSeconds: 1,
    requests: 100_000,
    errors: 0,
    rps: 100_000,
    latencyUs: { p50: 90, p90: 140, p99: 300, 'p99.9': 900, max: maxUs, min: 40, mean: 100 },
    curve,
    idle: { requested: 0, open: 0, answered: 0 },
    problems: [],
    ok: true,
  };
}

/** "250µs", "1.50ms", "2.00s" back to microseconds. */
function micros(label: string): number {
  const m = /^([\d.]+)(µs|ms|s)$/.exec(label);
  assert.ok(m, label);
  return Number(m[1]) * { µs: 1, ms: 1000, s: 1_000_000 }[m[2] as 'µs' | 'ms' | 's'];
}

const WIDTH = 720;
/** A 12 px sans-serif glyph is at most about 0.6 em wide. */
const textWidth = (s: string): number => s.length * 12 * 0.6;

for (const maxUs of [2345, 3_070, 47_113, 999, 12]) {
  test(`y ticks are round and evenly spaced, up to at least the max (max ${maxUs} µs)`, () => {
    const svg = latencyChart(result(maxUs));
    const labels = [
      ...svg.matchAll(/<text x="[\d.]+" y="[\d.]+" text-anchor="end">([^<]+)<\/text>/g),
    ];
    const values = labels.map((l) => micros(l[1]));
    assert.ok(values.length >= 3 && values.length <= 11, `${values.length} ticks`);
    assert.equal(values[0], 0);
    const step = values[1];
    assert.match(String(step), /^[125]0*$/, `step ${step} µs`);
    for (const [i, v] of values.entries()) assert.ok(Math.abs(v - i * step) < 1e-6, `tick ${i}`);
    assert.ok(values.at(-1)! >= maxUs);
    assert.ok(values.at(-1)! - maxUs < step);
  });
}

test('every percentile label lies inside the picture (99.999% is not clipped)', () => {
  const svg = latencyChart(result(2345));
  const labels = [
    ...svg.matchAll(/<text x="([\d.]+)" y="[\d.]+" text-anchor="middle">([\d.]+%)<\/text>/g),
  ];
  assert.deepEqual(
    labels.map((l) => l[2]),
    ['0%', '90%', '99%', '99.9%', '99.99%', '99.999%'],
  );
  for (const [, x, label] of labels) {
    const half = textWidth(label) / 2;
    assert.ok(Number(x) - half >= 0 && Number(x) + half <= WIDTH, `${label} at x=${x}`);
  }
});

test('tickStep picks 1, 2 or 5 times a power of ten', () => {
  assert.equal(tickStep(1), 1);
  assert.equal(tickStep(9), 2);
  assert.equal(tickStep(2345), 500);
  assert.equal(tickStep(47_113), 10_000);
  assert.equal(tickStep(120_000_000), 50_000_000);
});
