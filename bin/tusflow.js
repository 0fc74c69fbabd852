#!/usr/bin/env node
// The `tusflow` command, on the runtime that runs this file: under Node (npx tusflow, and plain
// `bunx tusflow` too, which follows the node shebang when Node is installed) the compiled CLI
// (dist/runtime/cli.js, from `npm run build`; the package ships it) serves with the Node entry;
// under Bun (bunx --bun tusflow, bun bin/tusflow.js) the TypeScript sources run as they are, with
// the Bun entry. Nothing else is needed: no Bun under Node.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL(process.versions.bun ? '../src/runtime/cli.ts' : '../dist/runtime/cli.js', import.meta.url);

if (!existsSync(fileURLToPath(cli))) {
  // A checkout of the repository that was not built yet (the published package always has dist/).
  console.error('tusflow: dist/ is missing: run `npm run build` first (or run tusflow with Bun: bun bin/tusflow.js).');
  process.exit(1);
}
const { main } = await import(cli.href);
await main(process.argv.slice(2));
