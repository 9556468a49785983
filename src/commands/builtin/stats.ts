import { badArgument } from '../../errors.ts';
import { EVENT_COUNTERS } from '../../stats/counters.ts';
import { defineCommand } from '../registry.ts';

export default defineCommand({
  name: 'STATS',
  usage: 'STATS [FULL]',
  summary: 'Active clients across all workers; FULL adds every counter, per worker too.',
  group: 'server',
  flags: ['loading', 'stale', 'fast'],
  minArgs: 0,
  maxArgs: 1,
  run: (ctx, args) => {
    if (args.length === 0) return `Active clients: ${ctx.stats.activeClients()}`;
    if (args[0].toString('latin1').toUpperCase() !== 'FULL')
      return badArgument('STATS takes no argument or FULL');
    const s = ctx.stats.snapshot();
    const perWorker = s.workers.map(
      (w, i) => `w${i}=${w.active}/${w.connections}/${w.commands}/${w.rejected}`,
    );
    const limits = EVENT_COUNTERS.map((c) => `${c}=${s.totals[c]}`);
    return (
      `active=${s.active} connections=${s.connections} commands=${s.commands} rejected=${s.rejected} ` +
      `restarts=${s.restarts} workers=${s.poolSize} worker=${ctx.workerId} ${perWorker.join(' ')} ${limits.join(' ')}`
    );
  },
});
