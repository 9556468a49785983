// Addresses, written one way everywhere: "host:port" (IPv6 in brackets), the IPv4 behind Node's
// IPv4-mapped IPv6 form, CIDR lists, and what counts as loopback.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** "ip" without the IPv4-mapped prefix Node shows on dual-stack sockets ("::ffff:1.2.3.4"). */
export function plainIp(ip: string | undefined): string {
  if (ip === undefined) return 'unknown';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** "host" as it stands before ":port": an IPv6 address in brackets. */
export function bracketHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * "host:port", IPv6 in brackets. Joined, not concatenated: join() writes one flat string, where
 * `${host}:${port}` keeps a 32-byte ConsString over its parts ("host:" and "port"), 56 B more for
 * each connection, whose peer this is for its whole life.
 */
export function formatHostPort(host: string, port: number | string | undefined): string {
  return [bracketHost(host), String(port)].join(':');
}

/** Addresses seen lately, each as one string (internIp()). */
const interned = new Map<string, string>();
/**
 * Past this many, the table starts again (a scan of the whole IPv4 space cannot grow it): about
 * 70 KiB per thread at most, kept for addresses whose clients may have gone.
 */
const INTERNED_MAX = 1024;

/**
 * The one string this thread keeps for an address: every connection from it shares one, where
 * each accept reads a new one from the kernel (32 bytes for IPv4, kept for the connection's life).
 */
export function internIp(ip: string): string {
  const known = interned.get(ip);
  if (known !== undefined) return known;
  if (interned.size >= INTERNED_MAX) interned.clear();
  interned.set(ip, ip);
  return ip;
}

/** A BlockList of normalised "addr/prefix" blocks (config/schema.ts's cidrList). */
export function blockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, prefix] = cidr.split('/');
    list.addSubnet(addr, Number(prefix), isIPv6(addr) ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** Whether ip is in list; false for anything that is not an IP address. */
export function inList(list: BlockList, ip: string): boolean {
  try {
    return list.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
}

const LOOPBACK = blockList(['127.0.0.0/8', '::1/128']);

/** 127.0.0.0/8, ::1 and the IPv4-mapped forms of 127.x; with names, "localhost" too. */
export function isLoopback(hostOrIp: string): boolean {
  // The usual answers without BlockList.check(), which allocates (it runs on every accept
  // under protected mode).
  if (hostOrIp === 'localhost' || hostOrIp === '::1') return true;
  const ip = plainIp(hostOrIp);
  if (isIPv4(ip)) return ip.startsWith('127.');
  return inList(LOOPBACK, ip);
}
