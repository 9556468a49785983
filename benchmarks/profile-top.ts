// Self time per function of a V8 .cpuprofile (what `node --cpu-prof` writes, one per thread):
//   node benchmarks/profile-top.ts PROFILE.cpuprofile [N]
// prints the N (30) functions with the most samples, with their share of all samples.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

const [file, n = '30'] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node benchmarks/profile-top.ts PROFILE.cpuprofile [N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const nameOf = new Map<number, string>();
for (const node of profile.nodes) {
  const { functionName, url, lineNumber } = node.callFrame;
  const where =
    url === '' ? '' : ` ${url.replace(/^.*\/(src|lib|node_modules)\//, '$1/')}:${lineNumber + 1}`;
  nameOf.set(node.id, `${functionName || '(anonymous)'}${where}`);
}
const counts = new Map<string, number>();
for (const id of profile.samples) {
  const name = nameOf.get(id) ?? '?';
  counts.set(name, (counts.get(name) ?? 0) + 1);
}
const total = profile.samples.length;
const rows = [...counts].sort((a, b) => b[1] - a[1]).slice(0, Number(n));
process.stdout.write(`${total} samples\n`);
for (const [name, count] of rows)
  process.stdout.write(`${((count / total) * 100).toFixed(1).padStart(5)}%  ${name}\n`);
