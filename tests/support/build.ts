import { readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;
/** Written after a build: its time is the build's. */
const STAMP = join(ROOT, 'dist/.built');

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}

function builtAt(): number {
  try {
    return statSync(STAMP).mtimeMs;
  } catch {
    return 0;
  }
}

let built: Promise<void> | undefined;

/**
 * dist/ as `npm run build` makes it from the current sources, for what runs on Node (the Node entry,
 * `tusflow` under node, the README's Node examples): built once per test run, and only when a source
 * is newer than the last build.
 */
export function ensureBuilt(): Promise<void> {
  built ??= (async () => {
    const sources = Math.max(newest(join(ROOT, 'src')), newest(join(ROOT, 'package.json')), newest(join(ROOT, 'tsconfig.build.json')));
    if (sources < builtAt()) return;
    const started = Date.now() / 1000;
    const proc = Bun.spawn(['npm', 'run', 'build'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`npm run build failed (${code}):\n${out}${err}`);
    // Stamped with the build's start: a source changed meanwhile makes the next run build again.
    writeFileSync(STAMP, '');
    utimesSync(STAMP, started, started);
  })();
  return built;
}
