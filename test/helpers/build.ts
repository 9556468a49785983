// Compiles src/ to dist/ (what the published package holds) once per test process, for tests of
// the package as a user installs it: its "exports", its types, tcpool/testing from dist.
import { execFileSync } from 'node:child_process';

const root = new URL('../../', import.meta.url).pathname;
let built = false;

export function buildDist(): string {
  if (!built) {
    execFileSync(
      process.execPath,
      [`${root}node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json'],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    built = true;
  }
  return root;
}
