// Redis commands that need state tcpool does not keep. They answer with a clear error at once,
// rather than "unknown command" or, worse, a client waiting for a reply that never comes.
import { notSupported } from '../../errors.ts';
import { type CommandSpec, defineCommand } from '../registry.ts';

const groups: [string, string, string[]][] = [
  [
    'pubsub',
    'sharded publish/subscribe',
    // Sharded pub/sub: tcpool has one node, so plain SUBSCRIBE/PUBLISH do the job.
    ['SSUBSCRIBE', 'SUNSUBSCRIBE', 'SPUBLISH'],
  ],
  ['server', 'replication and monitoring', ['MONITOR', 'SYNC', 'PSYNC', 'WAIT']],
];

export const unsupported: CommandSpec[] = groups.flatMap(([group, what, names]) =>
  names.map((name) => {
    const reply = notSupported(name, `tcpool has no ${what}`);
    return defineCommand({
      name,
      usage: `${name} ...`,
      summary: `Not supported: tcpool has no ${what}.`,
      group,
      family: 'redis',
      minArgs: 0,
      maxArgs: Infinity,
      run: () => reply,
    });
  }),
);
