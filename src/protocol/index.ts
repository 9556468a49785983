// The protocols a plain or TLS stream may speak, in the order their first bytes are tried: the
// last one takes whatever the others do not claim. Adding a protocol: one line here.
import { line } from './line.ts';
import type { Protocol } from './protocol.ts';
import { resp } from './resp.ts';

export const protocols: readonly Protocol[] = [resp, line];

/** The protocol of a stream whose first byte is `firstByte`. */
export function detectProtocol(firstByte: number): Protocol {
  for (let i = 0; i < protocols.length - 1; i++)
    if (protocols[i].claims(firstByte)) return protocols[i];
  return protocols[protocols.length - 1];
}

/** A protocol by name (WebSocket subprotocols, tests). */
export function protocolNamed(name: string): Protocol | undefined {
  return protocols.find((p) => p.name === name);
}
