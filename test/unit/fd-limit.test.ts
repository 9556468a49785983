import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionCap, openFilesLimit, reservedFds } from '../../src/net/fd-limit.ts';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            300                  524288               files
Max locked memory         8388608              8388608              bytes
`;

test('the soft open files limit is read from /proc/self/limits', () => {
  assert.equal(openFilesLimit(LIMITS), 300);
  assert.equal(openFilesLimit(LIMITS.replace('300   ', 'unlimited')), null);
  assert.equal(openFilesLimit('nothing here'), null);
  const own = openFilesLimit();
  assert.ok(own === null || own > 0);
});

test('MAX_CONNECTIONS is lowered, with a warning naming both numbers, only when descriptors are short', () => {
  assert.equal(reservedFds(2), 80);
  assert.deepEqual(connectionCap(10000, 2, null), { max: 10000, warning: null });
  assert.deepEqual(connectionCap(100, 2, 300), { max: 100, warning: null });
  const cap = connectionCap(10000, 2, 300);
  assert.equal(cap.max, 220);
  assert.match(cap.warning!, /MAX_CONNECTIONS 10000 needs 10080 file descriptors/);
  assert.match(cap.warning!, /limit \(ulimit -n\) is 300: serving at most 220 connections/);
  assert.equal(connectionCap(10000, 8, 50).max, 1, 'never below one');
});
