import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  parseProxyHeader,
  proxyV1,
  proxyV2,
  type ProxyVerdict,
  startsWithProxyHeader,
} from '../../src/protocol/proxy.ts';

/** Feeds growing prefixes as a connection would, until a verdict. */
function feed(bytes: Buffer, mode: 'v1' | 'v2' | 'auto'): ProxyVerdict {
  for (let i = 1; i <= bytes.length; i++) {
    const v = parseProxyHeader(bytes.subarray(0, i), mode);
    if (v.kind !== 'more') return v;
  }
  return { kind: 'more' };
}

describe('PROXY protocol parser', () => {
  const after = Buffer.from('PING\r\n');

  test('v1 TCP4 and TCP6, at every prefix, leaves the client bytes after it', () => {
    for (const [header, address, port] of [
      [proxyV1('203.0.113.7', 51234, '10.0.0.1', 8080), '203.0.113.7', 51234],
      [proxyV1('2001:db8::7', 4000, '2001:db8::1', 8080), '2001:db8::7', 4000],
    ] as const) {
      const bytes = Buffer.concat([header, after]);
      for (const mode of ['v1', 'auto'] as const) {
        const v = feed(bytes, mode);
        assert.deepEqual(v, { kind: 'header', consumed: header.length, source: { address, port } });
      }
    }
  });

  test('v2 IPv4 and IPv6, at every prefix', () => {
    for (const [header, address, port] of [
      [proxyV2('198.51.100.2', 40000, '10.0.0.1', 8080), '198.51.100.2', 40000],
      [proxyV2('2001:db8:0:0:1:0:0:9', 1, '::1', 8080), '2001:db8::1:0:0:9', 1],
    ] as const) {
      for (const mode of ['v2', 'auto'] as const) {
        assert.deepEqual(feed(Buffer.concat([header, after]), mode), {
          kind: 'header',
          consumed: header.length,
          source: { address, port },
        });
      }
    }
  });

  test('UNKNOWN (v1) and LOCAL (v2) keep the connection address', () => {
    assert.deepEqual(feed(Buffer.from('PROXY UNKNOWN\r\nPING\r\n'), 'v1'), {
      kind: 'header',
      consumed: 15,
      source: null,
    });
    const local = proxyV2('1.2.3.4', 1, '5.6.7.8', 2);
    local[12] = 0x20; // version 2, command LOCAL
    assert.deepEqual(feed(local, 'v2'), { kind: 'header', consumed: local.length, source: null });
  });

  const broken: [string, Buffer, 'v1' | 'v2' | 'auto', RegExp][] = [
    ['no header at all', Buffer.from('PING\r\n'), 'auto', /^missing PROXY v1\/v2 header$/],
    [
      'v2 sent where v1 is required',
      proxyV2('1.2.3.4', 1, '5.6.7.8', 2),
      'v1',
      /^missing PROXY v1 header$/,
    ],
    [
      'v1 sent where v2 is required',
      proxyV1('1.2.3.4', 1, '5.6.7.8', 2),
      'v2',
      /^missing PROXY v2 header$/,
    ],
    [
      'v1 with a bad address',
      Buffer.from('PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n'),
      'v1',
      /malformed/,
    ],
    [
      'v1 with a bad port',
      Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n'),
      'v1',
      /malformed/,
    ],
    [
      'v1 TCP6 with IPv4 addresses',
      Buffer.from('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'),
      'v1',
      /malformed/,
    ],
    ['v1 without CR', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), 'v1', /CRLF/],
    ['v1 endless', Buffer.from('PROXY TCP4 ' + '1'.repeat(200)), 'v1', /longer than 107/],
    [
      'v2 with version 1',
      Buffer.concat([
        proxyV2('1.2.3.4', 1, '5.6.7.8', 2).subarray(0, 12),
        Buffer.from([0x11, 0x11, 0, 12]),
        Buffer.alloc(12),
      ]),
      'v2',
      /version 1/,
    ],
    [
      'v2 for UDP',
      Buffer.concat([
        proxyV2('1.2.3.4', 1, '5.6.7.8', 2).subarray(0, 12),
        Buffer.from([0x21, 0x12, 0, 12]),
        Buffer.alloc(12),
      ]),
      'v2',
      /other than TCP/,
    ],
    [
      'v2 truncated IPv4 block',
      Buffer.concat([
        proxyV2('1.2.3.4', 1, '5.6.7.8', 2).subarray(0, 12),
        Buffer.from([0x21, 0x11, 0, 4]),
        Buffer.alloc(4),
      ]),
      'v2',
      /truncated/,
    ],
    [
      'v2 too long',
      Buffer.concat([
        proxyV2('1.2.3.4', 1, '5.6.7.8', 2).subarray(0, 12),
        Buffer.from([0x21, 0x11, 0xff, 0xff]),
      ]),
      'v2',
      /too long/,
    ],
  ];
  for (const [what, bytes, mode, reason] of broken) {
    test(`refused: ${what}`, () => {
      const v = feed(bytes, mode);
      assert.equal(v.kind, 'error');
      assert.match((v as { reason: string }).reason, reason);
    });
  }

  test('startsWithProxyHeader spots a header only once its prefix is complete', () => {
    assert.equal(startsWithProxyHeader(Buffer.from('PROXY TCP4 …')), true);
    assert.equal(startsWithProxyHeader(proxyV2('1.2.3.4', 1, '5.6.7.8', 2)), true);
    assert.equal(startsWithProxyHeader(Buffer.from('PING\r\n')), false);
    assert.equal(startsWithProxyHeader(Buffer.from('\r\n\r\n')), false);
    assert.equal(startsWithProxyHeader(Buffer.from('PROX')), false);
  });
});
