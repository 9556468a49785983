import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { SharedStats } from '../../src/stats/counters.ts';

test('MAX_CONNECTIONS is enforced across workers, rejections are counted', () => {
  const s = SharedStats.create(3);
  assert.equal(s.acquireConnection(0, 2), 1);
  assert.equal(s.acquireConnection(2, 2), 2);
  assert.equal(s.acquireConnection(1, 2), 0);
  assert.equal(s.activeClients(), 2);
  assert.equal(s.releaseConnection(0), 1);
  assert.equal(s.acquireConnection(1, 2), 2);
  const snap = s.snapshot();
  assert.deepEqual(
    snap.workers.map((w) => [w.active, w.connections, w.rejected]),
    [
      [0, 1, 0],
      [1, 1, 1],
      [1, 1, 0],
    ],
  );
  assert.equal(snap.rejected, 1);
  assert.equal(snap.connections, 3);
});

test('a lost worker gives back its slots and counts a restart; its totals stay', () => {
  const s = SharedStats.create(2);
  s.acquireConnection(0, 10);
  s.acquireConnection(0, 10);
  s.acquireConnection(1, 10);
  s.addCommands(0, 7);
  assert.equal(s.workerLost(0), 2);
  const snap = s.snapshot();
  assert.equal(snap.active, 1);
  assert.equal(snap.restarts, 1);
  assert.equal(snap.workers[0].active, 0);
  assert.equal(snap.workers[0].connections, 2);
  assert.equal(snap.commands, 7);
});

test('counters are exact under concurrent updates from several threads', async () => {
  const workers = 4;
  const rounds = 20000;
  const s = SharedStats.create(workers);
  const file = new URL('../fixtures/stats-hammer.ts', import.meta.url);
  await Promise.all(
    Array.from(
      { length: workers },
      (_, w) =>
        new Promise((resolve, reject) => {
          const worker = new Worker(file, { workerData: { buffer: s.buffer, workers, w, rounds } });
          worker.on('exit', resolve);
          worker.on('error', reject);
        }),
    ),
  );
  const snap = s.snapshot();
  assert.equal(snap.active, workers * rounds);
  assert.deepEqual(
    snap.workers.map((w) => [w.active, w.connections, w.commands]),
    Array.from({ length: workers }, () => [rounds, 2 * rounds, 3 * rounds]),
  );
});
