// The transports a worker starts, each on its own ports when they are set. Adding a transport:
// one line here.
import { http } from './http/index.ts';
import { bunTcp } from './bun/index.ts';
import { tcp } from './tcp/index.ts';
import { websocket } from './websocket/index.ts';
import type { Transport } from './transport.ts';

export const transports: readonly Transport[] = [tcp, bunTcp, websocket, http];
