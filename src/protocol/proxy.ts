// PROXY protocol v1 and v2 (HAProxy's spec): the header a load balancer puts before the client's
// bytes to say who the client really is. Socket-free: feed the first bytes, get a verdict.
import { isIPv4, isIPv6 } from 'node:net';
import type { ProxyMode } from '../config/schema.ts';

const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Buffer.from('PROXY ');
const V1_MAX = 107;
/** Addresses plus TLVs; real proxies send a few hundred bytes at most. */
const V2_MAX_PAYLOAD = 4096;

export type ProxyVerdict =
  | { kind: 'more' }
  /** `source` is null for PROXY UNKNOWN / LOCAL: keep the socket's own address (health checks). */
  | { kind: 'header'; consumed: number; source: { address: string; port: number } | null }
  | { kind: 'error'; reason: string };

const more: ProxyVerdict = { kind: 'more' };

/** True when `buf` starts with a PROXY header of either version (to refuse one from an untrusted peer). */
export function startsWithProxyHeader(buf: Buffer): boolean {
  return (
    (buf.length >= 6 && buf.subarray(0, 6).equals(V1_PREFIX)) ||
    (buf.length >= 12 && buf.subarray(0, 12).equals(V2_SIGNATURE))
  );
}

export function parseProxyHeader(buf: Buffer, mode: Exclude<ProxyMode, 'off'>): ProxyVerdict {
  const isV2 = buf
    .subarray(0, Math.min(buf.length, 12))
    .equals(V2_SIGNATURE.subarray(0, Math.min(buf.length, 12)));
  const isV1 = buf
    .subarray(0, Math.min(buf.length, 6))
    .equals(V1_PREFIX.subarray(0, Math.min(buf.length, 6)));
  if (buf.length === 0) return more;
  if (isV2 && mode !== 'v1') return buf.length < 12 ? more : parseV2(buf);
  if (isV1 && mode !== 'v2') return buf.length < 6 ? more : parseV1(buf);
  return { kind: 'error', reason: `missing PROXY ${mode === 'auto' ? 'v1/v2' : mode} header` };
}

function parseV1(buf: Buffer): ProxyVerdict {
  const nl = buf.indexOf(0x0a);
  if (nl === -1)
    return buf.length >= V1_MAX
      ? { kind: 'error', reason: 'PROXY v1 header longer than 107 bytes' }
      : more;
  if (nl + 1 > V1_MAX) return { kind: 'error', reason: 'PROXY v1 header longer than 107 bytes' };
  if (buf[nl - 1] !== 0x0d)
    return { kind: 'error', reason: 'PROXY v1 header does not end in CRLF' };
  const words = buf.toString('latin1', 0, nl - 1).split(' ');
  if (words[1] === 'UNKNOWN') return { kind: 'header', consumed: nl + 1, source: null };
  if (words.length !== 6 || (words[1] !== 'TCP4' && words[1] !== 'TCP6')) {
    return { kind: 'error', reason: 'malformed PROXY v1 header' };
  }
  const [, proto, src, dst, sport, dport] = words;
  const valid = proto === 'TCP4' ? isIPv4(src) && isIPv4(dst) : isIPv6(src) && isIPv6(dst);
  const port = (p: string) => /^(0|[1-9][0-9]{0,4})$/.test(p) && Number(p) <= 65535;
  if (!valid || !port(sport) || !port(dport))
    return { kind: 'error', reason: 'malformed PROXY v1 header' };
  return { kind: 'header', consumed: nl + 1, source: { address: src, port: Number(sport) } };
}

function parseV2(buf: Buffer): ProxyVerdict {
  if (buf.length < 16) return more;
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2)
    return { kind: 'error', reason: `PROXY v2 header with version ${verCmd >> 4}` };
  const command = verCmd & 0x0f;
  const len = buf.readUInt16BE(14);
  if (len > V2_MAX_PAYLOAD)
    return { kind: 'error', reason: `PROXY v2 header of ${len} bytes is too long` };
  if (buf.length < 16 + len) return more;
  const consumed = 16 + len;
  if (command === 0x0) return { kind: 'header', consumed, source: null }; // LOCAL: the proxy itself
  if (command !== 0x1) return { kind: 'error', reason: `PROXY v2 header with command ${command}` };
  const family = buf[13] >> 4;
  const transport = buf[13] & 0x0f;
  if (family === 0x0) return { kind: 'header', consumed, source: null }; // UNSPEC
  if (transport !== 0x1)
    return { kind: 'error', reason: 'PROXY v2 header for a transport other than TCP' };
  if (family === 0x1) {
    if (len < 12) return { kind: 'error', reason: 'PROXY v2 IPv4 addresses truncated' };
    const address = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
    return { kind: 'header', consumed, source: { address, port: buf.readUInt16BE(24) } };
  }
  if (family === 0x2) {
    if (len < 36) return { kind: 'error', reason: 'PROXY v2 IPv6 addresses truncated' };
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(16 + i * 2).toString(16));
    return {
      kind: 'header',
      consumed,
      source: { address: compressIPv6(groups), port: buf.readUInt16BE(48) },
    };
  }
  return { kind: 'error', reason: `PROXY v2 header with address family ${family}` };
}

/** "0:0:0:0:0:0:0:1" → "::1", as Node prints addresses. */
function compressIPv6(groups: string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

/** Builds a header, for tests and tools. */
export function proxyV1(src: string, sport: number, dst: string, dport: number): Buffer {
  return Buffer.from(`PROXY ${isIPv6(src) ? 'TCP6' : 'TCP4'} ${src} ${dst} ${sport} ${dport}\r\n`);
}

export function proxyV2(src: string, sport: number, dst: string, dport: number): Buffer {
  const v6 = isIPv6(src);
  const addr = (ip: string): Buffer =>
    v6
      ? Buffer.from(expandIPv6(ip).flatMap((g) => [g >> 8, g & 0xff]))
      : Buffer.from(ip.split('.').map(Number));
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sport, 0);
  ports.writeUInt16BE(dport, 2);
  const payload = Buffer.concat([addr(src), addr(dst), ports]);
  const head = Buffer.from([0x21, v6 ? 0x21 : 0x11, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([V2_SIGNATURE, head, payload]);
}

function expandIPv6(ip: string): number[] {
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const fill = tail !== undefined ? Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}
