// The test radosgw cluster never outlives the process that started it: tests/support/s3.ts and
// scripts/radosgw.sh's watchdog (RADOSGW_OWNER_PID), with an owner that gets no chance to clean up.
import { expect, test } from 'bun:test';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dir, '../..');

/** Pids of the processes whose command line names `dir` (the cluster's daemons and watchdog). */
function processesNaming(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const state = /^State:\s*(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      if (cmdline.includes(dir) && state !== 'Z') found.push(pid);
    } catch {} // gone meanwhile
  }
  return found;
}

test.skipIf(!!process.env.TUSFLOW_TEST_S3_ENDPOINT)(
  'an owner killed with SIGKILL, its checkout deleted at once: the cluster is gone within 10 s',
  async () => {
    const work = mkdtempSync(join(tmpdir(), 'tusflow-rgw-owner-'));
    // A throwaway checkout holding what starts the cluster, deleted right after the owner dies,
    // as a script running `npm test` in a fresh clone would.
    const checkout = join(work, 'checkout');
    mkdirSync(join(checkout, 'tests/support'), { recursive: true });
    mkdirSync(join(checkout, 'scripts'));
    copyFileSync(join(ROOT, 'tests/support/s3.ts'), join(checkout, 'tests/support/s3.ts'));
    copyFileSync(join(ROOT, 'scripts/radosgw.sh'), join(checkout, 'scripts/radosgw.sh'));
    symlinkSync(join(ROOT, 'node_modules'), join(checkout, 'node_modules'));
    const ownerCode = `import { startS3 } from './tests/support/s3.ts';
const s3 = await startS3();
console.log('ready', s3.endpoint);
await Bun.sleep(120_000);
`;
    writeFileSync(join(checkout, 'owner.ts'), ownerCode);
    const clusters = join(work, 'tmp'); // the owner's TMPDIR: its cluster directory is made in there
    mkdirSync(clusters);

    const env: Record<string, string | undefined> = { ...process.env, TMPDIR: clusters };
    delete env.TUSFLOW_TEST_S3_ENDPOINT;
    const owner = Bun.spawn([process.execPath, join(checkout, 'owner.ts')], { cwd: checkout, env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
    try {
      let out = '';
      const decoder = new TextDecoder();
      for await (const chunk of owner.stdout) {
        out += decoder.decode(chunk, { stream: true });
        if (out.includes('\n')) break;
      }
      const endpoint = /^ready (\S+)$/m.exec(out)?.[1];
      if (!endpoint) throw new Error(`the owner did not start a cluster (exit ${await owner.exited}):\n${out}${await new Response(owner.stderr).text()}`);
      expect((await fetch(endpoint)).status).toBeLessThan(500);
      const dirs = readdirSync(clusters).filter((d) => d.startsWith('tusflow-rgw-'));
      expect(dirs).toHaveLength(1);
      const dir = join(clusters, dirs[0]!);
      // mon, osd, radosgw and the watchdog
      expect(processesNaming(dir).length).toBeGreaterThanOrEqual(4);

      owner.kill('SIGKILL');
      rmSync(checkout, { recursive: true, force: true });
      await owner.exited;

      const deadline = Date.now() + 10_000;
      while ((processesNaming(dir).length > 0 || existsSync(dir)) && Date.now() < deadline) await Bun.sleep(100);
      expect(processesNaming(dir)).toEqual([]);
      expect(existsSync(dir)).toBe(false);
    } finally {
      owner.kill('SIGKILL');
      // whatever is left (a failed assertion): stop it with the repository's own script
      for (const d of existsSync(clusters) ? readdirSync(clusters) : []) {
        Bun.spawnSync(['bash', join(ROOT, 'scripts/radosgw.sh'), 'stop', join(clusters, d)], { stdout: 'ignore', stderr: 'ignore' });
      }
      rmSync(work, { recursive: true, force: true });
    }
  },
  120_000,
);
