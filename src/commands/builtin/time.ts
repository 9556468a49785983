import { localTimestamp } from '../../log/time.ts';
import { Forms } from '../../protocol/reply.ts';
import { defineCommand } from '../registry.ts';

export default defineCommand({
  name: 'TIME',
  usage: 'TIME',
  summary:
    "The server's local time as YYYY-MM-DD HH:MM:SS; over RESP, Redis's [unix seconds, microseconds].",
  group: 'server',
  flags: ['random', 'loading', 'stale', 'fast'],
  run: () => {
    const micros = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
    return new Forms(localTimestamp(), [
      Buffer.from(String(micros / 1_000_000n)),
      Buffer.from(String(micros % 1_000_000n)),
    ]);
  },
});
