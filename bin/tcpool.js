#!/usr/bin/env node
// In a checkout, runs the TypeScript sources directly (Node strips the types). Installed as a
// package (under node_modules, where Node does not strip types), runs the compiled dist/.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `tcpool: Node.js >= 22.12 is required (this is ${process.version}); run it through npm (npm start) or npx\n`,
  );
  process.exit(1);
}
const installed = import.meta.url.includes('/node_modules/');
const entry = new URL(installed ? '../dist/cli/main.js' : '../src/cli/main.ts', import.meta.url);
const { main } = await import(entry.href);
process.exit(await main(process.argv.slice(2)));
