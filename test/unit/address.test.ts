// src/net/address.ts: what counts as loopback (its fast path against Node's BlockList, which it
// skips for the usual addresses), "host:port", and the per-thread address strings.
import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatHostPort, internIp, isLoopback } from '../../src/net/address.ts';

const reference = new BlockList();
reference.addSubnet('127.0.0.0', 8, 'ipv4');
reference.addAddress('::1', 'ipv6');

/** What isLoopback answered before its fast path: BlockList alone (IPv4-mapped forms unwrapped). */
function referenceLoopback(ip: string): boolean {
  if (ip === 'localhost') return true;
  const plain = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
  try {
    return reference.check(plain, plain.includes(':') ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
}

test('isLoopback: loopback addresses, names and forms, and what is not', () => {
  for (const ip of [
    '127.0.0.1',
    '127.255.255.254',
    '127.1.2.3',
    '::1',
    '0:0:0:0:0:0:0:1',
    '::ffff:127.0.0.1',
    'localhost',
  ])
    assert.equal(isLoopback(ip), true, ip);
  for (const ip of [
    '128.0.0.1',
    '10.0.0.1',
    '0.0.0.0',
    '::',
    '::2',
    '::ffff:10.0.0.1',
    '127.0.0.1.example.com',
    '127.example',
    'example.com',
    '',
  ])
    assert.equal(isLoopback(ip), false, ip);
});

test('isLoopback agrees with a BlockList of 127.0.0.0/8 and ::1 (property)', () => {
  const v4 = fc
    .tuple(
      fc.oneof(fc.constant(127), fc.integer({ min: 0, max: 255 })),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 255 }),
    )
    .map((parts) => parts.join('.'));
  const address = fc.oneof(
    v4,
    v4.map((ip) => `::ffff:${ip}`),
    fc.ipV6(),
    fc.constantFrom('::1', '0::1', '0:0::1', '::0:1'),
    fc.string({ maxLength: 20 }),
  );
  fc.assert(
    fc.property(address, (ip) => isLoopback(ip) === referenceLoopback(ip)),
    { numRuns: 5000 },
  );
});

test('formatHostPort brackets IPv6', () => {
  assert.equal(formatHostPort('127.0.0.1', 6379), '127.0.0.1:6379');
  assert.equal(formatHostPort('::1', 6379), '[::1]:6379');
});

test('internIp gives back the address it was given, before and after its table starts again', () => {
  const seen: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    seen.push(ip);
    assert.equal(internIp(ip), ip);
  }
  // Built anew (a different string of the same text), as each accept reads it from the kernel.
  for (const ip of seen.slice(-100)) assert.equal(internIp(ip.split('.').join('.')), ip);
  assert.equal(internIp('::1'), '::1');
});
