// Each connection picks its protocol from its first byte: "*" starts a RESP array (what every
// Redis client sends); anything else is the line protocol, byte-compatible with the original.
export type Protocol = 'line' | 'resp';

export function detectProtocol(firstByte: number): Protocol {
  return firstByte === 0x2a ? 'resp' : 'line';
}
