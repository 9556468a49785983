#!/usr/bin/env node
// Runs the built dist/ when it exists (an installed package), else the TypeScript sources directly.
import { existsSync } from 'node:fs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`tcpool: Node.js >= 22.12 is required (this is ${process.version}); run it through npm (npm start) or npx\n`);
  process.exit(1);
}
const built = new URL('../dist/cli/main.js', import.meta.url);
const { main } = await import(existsSync(built) ? built.href : new URL('../src/cli/main.ts', import.meta.url).href);
const code = await main(process.argv.slice(2));
process.exit(code);
