#!/usr/bin/env node
// The `tusflow` command. Tusflow runs on Bun: under Node (npx) this launcher finds the Bun binary of
// the `bun` npm package and runs src/runtime/cli.ts with it, passing on arguments, stdio, signals
// and the exit code. Under Bun (bunx --bun, bun bin/tusflow.js) it runs the CLI in this process.
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/runtime/cli.ts', import.meta.url));
const args = process.argv.slice(2);

if (process.versions.bun) {
  const { main } = await import(cli);
  await main(args);
} else {
  run(findBun());
}

/** The `bun` package's binary; the platform package's when bun's postinstall did not run. */
function findBun() {
  const require = createRequire(import.meta.url);
  const candidates = [];
  try {
    const manifest = require.resolve('bun/package.json');
    const { bin } = require(manifest);
    candidates.push(join(dirname(manifest), typeof bin === 'string' ? bin : bin.bun));
    // With --ignore-scripts, bin/bun.exe is a small placeholder and the binary is still here.
    const arch = process.arch === 'arm64' ? 'aarch64' : process.arch;
    const exe = process.platform === 'win32' ? 'bin/bun.exe' : 'bin/bun';
    const fromBun = createRequire(manifest);
    for (const suffix of ['', '-musl', '-baseline', '-musl-baseline']) {
      try {
        candidates.push(fromBun.resolve(`@oven/bun-${process.platform}-${arch}${suffix}/${exe}`));
      } catch {}
    }
  } catch {}
  // A binary is tens of MB; the placeholder a few hundred bytes.
  const found = candidates.find((path) => existsSync(path) && statSync(path).size > 1_000_000);
  return found ?? 'bun'; // else a Bun on the PATH, if any
}

function run(bun) {
  const child = spawn(bun, [cli, ...args], { stdio: 'inherit' });
  const forward = (signal) => () => child.kill(signal);
  const handlers = Object.fromEntries(['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => [s, forward(s)]));
  for (const [signal, handler] of Object.entries(handlers)) process.on(signal, handler);
  child.on('error', (error) => {
    console.error(
      error.code === 'ENOENT'
        ? 'tusflow: Bun not found. Install the "bun" npm package (npm install bun, without --ignore-scripts) or Bun itself (https://bun.sh).'
        : `tusflow: cannot start Bun (${bun}): ${error.message}`,
    );
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      // Die of the same signal, so that the caller sees what the server saw.
      for (const [name, handler] of Object.entries(handlers)) process.off(name, handler);
      process.kill(process.pid, signal);
    } else {
      process.exit(code ?? 1);
    }
  });
}
