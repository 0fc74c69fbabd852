// `npm run build`: dist/ from src/ with tsconfig.build.json. tsc writes into a fresh directory that
// then replaces dist/ in one rename, so dist/ is never half-built or missing while something runs
// it, and nothing stays in it from a source that was removed.
import { execFileSync } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const next = `dist.${process.pid}.tmp`;
try {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', next], { stdio: 'inherit' });
  rmSync('dist', { recursive: true, force: true });
  renameSync(next, 'dist');
} catch (error) {
  rmSync(next, { recursive: true, force: true });
  process.exitCode = 1;
  if (!error.status) throw error; // tsc has printed its errors already
}
