// Idle clients for the memory benchmarks (idle-heap.ts, accept-alloc.ts): `n` connections to
// 127.0.0.1:`port` that send nothing, opened 500 at a time with a pause between.
import { createConnection, type Socket } from 'node:net';

export async function connectIdle(port: number, n: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    sockets.push(socket);
    if (i % 500 === 499) await new Promise((r) => setTimeout(r, 50));
  }
  return sockets;
}
