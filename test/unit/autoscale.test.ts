// POOL_AUTOSCALE's decision over a series of utilisation samples: sustained windows, the band
// between the thresholds (hysteresis), the cooldown, and the min..max bounds; and the Autoscaler
// that applies it, against a fake pool.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import {
  type AutoscalePolicy,
  type AutoscaleState,
  Autoscaler,
  decide,
  initialState,
  policyOf,
} from '../../src/supervisor/autoscale.ts';

const policy: AutoscalePolicy = {
  min: 1,
  max: 3,
  high: 0.75,
  low: 0.25,
  windowMs: 1000,
  cooldownMs: 2000,
};

/** Feeds [ms, utilisation] samples from `size` workers; returns the sizes each sample asked for. */
function run(samples: [number, number | null][], size: number, p = policy): number[] {
  let state: AutoscaleState = initialState();
  const sizes: number[] = [];
  for (const [at, elu] of samples) {
    const d = decide(p, state, at, size, elu);
    state = d.state;
    size = d.size;
    sizes.push(size);
  }
  return sizes;
}

/** Samples every 250 ms from `from` to `to` (inclusive) at one utilisation. */
const steady = (from: number, to: number, elu: number | null): [number, number | null][] =>
  Array.from({ length: (to - from) / 250 + 1 }, (_, i) => [from + i * 250, elu]);

describe('decide', () => {
  test('grows by one only once the utilisation has stayed above high for the whole window', () => {
    const sizes = run(steady(0, 1000, 0.9), 1);
    assert.deepEqual(sizes, [1, 1, 1, 1, 2]);
  });

  test('a dip below high starts the window again', () => {
    const samples: [number, number][] = [
      [0, 0.9],
      [500, 0.9],
      [750, 0.7], // within the band: the window is broken
      [1000, 0.9],
      [1750, 0.9],
      [2000, 0.9],
    ];
    assert.deepEqual(run(samples, 1), [1, 1, 1, 1, 1, 2]);
  });

  test('shrinks by one once below low for the window; the band between changes nothing', () => {
    assert.deepEqual(run(steady(0, 1000, 0.1), 3), [3, 3, 3, 3, 2]);
    assert.deepEqual(run(steady(0, 5000, 0.5), 2), Array(21).fill(2), 'hysteresis band');
    assert.deepEqual(run(steady(0, 5000, 0.75), 2), Array(21).fill(2), 'at high is not above');
    assert.deepEqual(run(steady(0, 5000, 0.25), 2), Array(21).fill(2), 'at low is not below');
  });

  test('after a change, the next waits for the cooldown and a fresh window', () => {
    const sizes = run(steady(0, 4000, 0.95), 1);
    // Grows at 1000; the next window is full at 2000 but the cooldown lasts until 3000.
    assert.equal(sizes.indexOf(2), 4);
    assert.equal(sizes.indexOf(3), 12);
    assert.equal(sizes.at(-1), 3, 'and never past max');
  });

  test('a long window, short cooldown: the window is what waits', () => {
    const p = { ...policy, windowMs: 2000, cooldownMs: 0 };
    const sizes = run(steady(0, 5000, 0.95), 1, p);
    assert.equal(sizes.indexOf(2), 8);
    // The next window opens at the first sample after the change (2250) and is full at 4250.
    assert.equal(sizes.indexOf(3), 17);
  });

  test('never below min nor above max, however long the load says so', () => {
    assert.deepEqual(new Set(run(steady(0, 20_000, 0.01), 3)), new Set([3, 2, 1]));
    assert.equal(run(steady(0, 20_000, 0.01), 3).at(-1), 1);
    assert.equal(run(steady(0, 20_000, 1), 1).at(-1), 3);
  });

  test('a size outside min..max is brought within at once, with the reason; windows restart', () => {
    const p = { ...policy, min: 2, max: 4 };
    const below = decide(p, initialState(), 100, 1, 0.5);
    assert.deepEqual(below, {
      state: initialState(100),
      size: 2,
      reason: 'pool size 1 is outside POOL_AUTOSCALE 2..4',
    });
    assert.equal(decide(p, initialState(), 100, 9, null).size, 4);
  });

  test('no sample (no worker sampled yet) changes nothing and keeps the windows', () => {
    const state = { highSince: 10, lowSince: null, lastChange: 0 };
    assert.deepEqual(decide(policy, state, 5000, 2, null), { state, size: 2, reason: null });
  });

  test('the reason names the utilisation, the threshold and how long', () => {
    const state = { highSince: 0, lowSince: null, lastChange: Number.NEGATIVE_INFINITY };
    assert.equal(
      decide(policy, state, 1200, 1, 0.904).reason,
      'mean event-loop utilisation 90%, above 75% for 1200 ms',
    );
    const low = { highSince: null, lowSince: 0, lastChange: Number.NEGATIVE_INFINITY };
    assert.equal(
      decide(policy, low, 1000, 2, 0.02).reason,
      'mean event-loop utilisation 2%, below 25% for 1000 ms',
    );
  });
});

describe('policyOf', () => {
  test('off without POOL_AUTOSCALE; thresholds as fractions otherwise', () => {
    assert.equal(policyOf(loadConfig({ env: {} }).config), null);
    const { config } = loadConfig({
      env: {
        POOL_AUTOSCALE: '2..6',
        POOL_AUTOSCALE_HIGH_PERCENT: '80',
        POOL_AUTOSCALE_LOW_PERCENT: '10',
        POOL_AUTOSCALE_WINDOW_MS: '500',
        POOL_AUTOSCALE_COOLDOWN_MS: '0',
      },
    });
    assert.deepEqual(policyOf(config), {
      min: 2,
      max: 6,
      high: 0.8,
      low: 0.1,
      windowMs: 500,
      cooldownMs: 0,
    });
  });
});

describe('Autoscaler', () => {
  /** A pool of `size` workers at a utilisation the test sets; resizes are recorded. */
  function fakePool(size: number) {
    const pool = {
      size,
      elu: null as number | null,
      resizes: [] as [number, string][],
      failures: [] as string[],
      failed: (err: Error) => pool.failures.push(err.message),
      load: () => ({ size: pool.size, elu: pool.elu }),
      resize: async (to: number, reason: string) => {
        pool.resizes.push([to, reason]);
        pool.size = to;
      },
    };
    return pool;
  }

  test('ticks apply decide() to the pool; off does nothing; a hand resize restarts the windows', async () => {
    const pool = fakePool(1);
    const scaler = new Autoscaler(pool);
    await scaler.tick(0);
    assert.deepEqual(pool.resizes, [], 'off');
    // Not serving (load() says null): nothing is decided, however far past the bounds.
    const idle = new Autoscaler({ ...pool, load: () => null });
    idle.configure({ ...policy, min: 2 });
    await idle.tick(0);
    idle.configure(null);
    assert.deepEqual(pool.resizes, []);
    scaler.configure({ ...policy, cooldownMs: 0 });
    try {
      pool.elu = 0.9;
      await scaler.tick(0);
      await scaler.tick(999);
      assert.deepEqual(pool.resizes, []);
      await scaler.tick(1000);
      assert.equal(pool.size, 2);
      assert.match(pool.resizes[0][1], /above 75% for 1000 ms/);
      // The operator resizes at 1500: the window counts from the first sample after that.
      pool.size = 3;
      scaler.changedByHand(1500);
      pool.elu = 0.1;
      await scaler.tick(1600);
      await scaler.tick(2500);
      assert.equal(pool.size, 3);
      await scaler.tick(2600);
      assert.equal(pool.size, 2);
      assert.equal(scaler.enabled?.max, 3);
    } finally {
      scaler.configure(null);
    }
    assert.equal(scaler.enabled, null);
  });

  test('one resize at a time: a tick while one is under way does nothing', async () => {
    let release!: () => void;
    const calls: number[] = [];
    const scaler = new Autoscaler({
      load: () => ({ size: 1, elu: 1 }),
      resize: (to) => {
        calls.push(to);
        return new Promise<void>((r) => (release = r));
      },
      failed: (err) => assert.fail(err),
    });
    scaler.configure({ ...policy, windowMs: 100, cooldownMs: 0 });
    try {
      await scaler.tick(0);
      const first = scaler.tick(100);
      await scaler.tick(5000);
      assert.deepEqual(calls, [2]);
      release();
      await first;
    } finally {
      scaler.stop();
    }
  });

  test('a failed resize is reported and the autoscaler carries on', async () => {
    const failures: string[] = [];
    let size = 1;
    const scaler = new Autoscaler({
      load: () => ({ size, elu: 1 }),
      resize: async (to) => {
        if (failures.length === 0) throw new Error('no worker could start');
        size = to;
      },
      failed: (err) => failures.push(err.message),
    });
    scaler.configure({ ...policy, windowMs: 100, cooldownMs: 0 });
    try {
      await scaler.tick(0);
      await scaler.tick(100);
      assert.deepEqual(failures, ['no worker could start']);
      await scaler.tick(200);
      await scaler.tick(300);
      assert.equal(size, 2, 'the next window tried again');
    } finally {
      scaler.stop();
    }
  });
});
