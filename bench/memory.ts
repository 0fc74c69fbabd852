/**
 * Peak memory of the server while it streams one upload into S3 (radosgw on loopback), per file
 * size, each in a fresh server process. The bound to hold: part size × parallel parts + 100 MiB,
 * whatever the file size. Run: `bun bench/memory.ts [sizes in MiB…]` (default 64 1024).
 */
import { startS3 } from '../tests/support/s3.ts';
import { spawnServer } from '../tests/support/process.ts';
import { generatedBody, MiB, peakRssMiB, sha256Of, table } from './lib.ts';

const sizes = (process.argv.slice(2).length ? process.argv.slice(2) : ['64', '1024']).map((s) => Number(s) * MiB);
const PART = 5 * MiB;
const PARALLEL = 4;

const s3 = await startS3();
const rows: Record<string, string | number>[] = [];
for (const size of sizes) {
  const bucket = await s3.newBucket();
  const server = await spawnServer({
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: bucket,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    S3_PART_SIZE: String(PART),
    S3_PARALLEL_PARTS: String(PARALLEL),
    DATA_DIR: `/tmp/tusflow-bench-${process.pid}`,
  }, [process.execPath, ...(process.env.BUN_FLAGS?.split(' ').filter(Boolean) ?? []), 'src/runtime/bun.ts']);
  try {
    const idle = peakRssMiB(server.proc.pid);
    const created = await fetch(server.endpoint, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(size) } });
    const url = created.headers.get('Location')!;
    const started = performance.now();
    const res = await fetch(url, {
      method: 'PATCH',
      headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Content-Length': String(size) },
      body: generatedBody(size),
      duplex: 'half',
    } as RequestInit);
    const seconds = (performance.now() - started) / 1000;
    if (res.status !== 204) throw new Error(`PATCH answered ${res.status}: ${await res.text()}`);
    const peak = peakRssMiB(server.proc.pid);
    const [sent, stored] = await Promise.all([sha256Of(generatedBody(size)), fetch(url).then((r) => sha256Of(r.body!))]);
    rows.push({
      'file (MiB)': size / MiB,
      'MiB/s': (size / MiB / seconds).toFixed(1),
      'idle RSS (MiB)': idle.toFixed(0),
      'peak RSS (MiB)': peak.toFixed(0),
      'bound (MiB)': (PART * PARALLEL) / MiB + 100,
      'stored = sent': stored.hash === sent.hash && stored.size === size ? 'yes' : 'NO',
    });
    await fetch(url, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
  } finally {
    await server.kill();
  }
}
console.log(table(rows));
await s3.stop();
process.exit(0);
