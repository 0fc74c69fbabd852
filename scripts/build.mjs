// `npm run build`: dist/ from src/ with tsconfig.build.json. tsc writes into a fresh directory that
// then takes dist/'s place by renames only (dist/ aside under a name of this build's own, the new one
// to dist/, then the old one removed), so dist/ is never half-built and is missing only between two
// renames; nothing stays in it from a source that was removed; and two builds at once never delete
// each other's output: each removes only its own directories, and the one that renames last wins.
import { execFileSync } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const next = `dist.${process.pid}.tmp`;
const olds = [];
try {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', next], { stdio: 'inherit' });
  for (let attempt = 0; ; attempt++) {
    const old = `dist.old.${process.pid}.${attempt}.tmp`;
    try {
      renameSync('dist', old);
      olds.push(old);
    } catch (error) {
      if (error.code !== 'ENOENT') throw error; // no dist/ yet, or another build has just moved it aside
    }
    try {
      renameSync(next, 'dist');
      break;
    } catch (error) {
      // Another build put its dist/ in place between the two renames: move that one aside too.
      if ((error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') || attempt === 10) throw error;
    }
  }
} catch (error) {
  rmSync(next, { recursive: true, force: true });
  process.exitCode = 1;
  if (!error.status) throw error; // tsc has printed its errors already
} finally {
  for (const old of olds) rmSync(old, { recursive: true, force: true });
}
