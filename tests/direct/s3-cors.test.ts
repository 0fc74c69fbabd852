// `tusflow s3-cors` as users run it (bun bin/tusflow.js), against a fresh radosgw bucket: it shows
// the rules, applies the one direct uploads need, and the bucket then answers browsers with it.
import { beforeAll, expect, test } from 'bun:test';
import { BucketCors } from '../../src/storage/s3/bucket-cors.ts';
import { startS3, type S3Env } from '../support/s3.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const ORIGIN = 'http://app.example:8080';

let s3: S3Env;
let bucket: string;
beforeAll(async () => {
  s3 = await startS3();
  bucket = await s3.newBucket();
}, 120_000);

async function tusflow(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, 'bin/tusflow.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

const s3Vars = () => ({
  S3_BUCKET: bucket,
  S3_ENDPOINT: s3.endpoint,
  S3_ACCESS_KEY_ID: s3.accessKeyId,
  S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
});

const OTHER = 'http://reader.example';

test("shows the rules and the one needed; --apply adds it to the bucket's own, and radosgw answers the preflight of a part PUT", async () => {
  expect((await tusflow(['s3-cors', '--origin', ORIGIN], s3Vars())).stdout).toContain('CORS rules now: none');
  // The bucket's own rules: GET for another site, and PUT without POST for this one (no small files).
  const cors = new BucketCors({ endpoint: s3.endpoint, bucket, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
  await cors.put(
    `<CORSConfiguration><CORSRule><AllowedOrigin>${OTHER}</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>` +
      `<CORSRule><AllowedOrigin>${ORIGIN}</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><ExposeHeader>ETag</ExposeHeader></CORSRule></CORSConfiguration>`,
  );
  const shown = await tusflow(['s3-cors', '--origin', ORIGIN], s3Vars());
  expect(shown.code).toBe(0);
  expect(shown.stdout).toContain(OTHER);
  expect(shown.stdout).toContain(`${ORIGIN}: may not PUT parts`);
  expect(shown.stdout).toContain('<ExposeHeader>ETag</ExposeHeader>');
  expect(shown.stdout).toContain('--apply');
  const preflight = () =>
    fetch(`${s3.endpoint}/${bucket}/k?partNumber=1&uploadId=u`, { method: 'OPTIONS', headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'PUT' } });
  const postPreflight = () => fetch(`${s3.endpoint}/${bucket}`, { method: 'OPTIONS', headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST' } });
  expect((await postPreflight()).headers.get('Access-Control-Allow-Origin')).toBeNull();

  const applied = await tusflow(['s3-cors', `--origin=${ORIGIN}`, '--apply'], s3Vars());
  expect(applied.code).toBe(0);
  expect(applied.stdout).toContain('applied:');
  expect((await preflight()).headers.get('Access-Control-Allow-Origin')).toBe(ORIGIN);
  expect((await postPreflight()).headers.get('Access-Control-Allow-Origin')).toBe(ORIGIN);
  // The bucket's own rule is still there.
  const read = await fetch(`${s3.endpoint}/${bucket}/k`, { method: 'OPTIONS', headers: { Origin: OTHER, 'Access-Control-Request-Method': 'GET' } });
  expect(read.headers.get('Access-Control-Allow-Origin')).toBe(OTHER);
  expect((await tusflow(['s3-cors', `--origin=${ORIGIN}`, '--apply'], s3Vars())).stdout).toContain('nothing to change');
  expect((await cors.get())!.match(/<CORSRule>/g)?.length).toBe(3);

  // The origins default to CORS_ORIGINS.
  const again = await tusflow(['s3-cors'], { ...s3Vars(), CORS_ORIGINS: `${ORIGIN},http://other.example` });
  expect(again.stdout).toContain(`${ORIGIN}: may PUT parts`);
  expect(again.stdout).toContain('http://other.example: may not PUT parts');
});

test('refusals: no bucket → exit 1 with a reason; --origin elsewhere or malformed → exit 2', async () => {
  const noBucket = await tusflow(['s3-cors', '--origin', ORIGIN]);
  expect([noBucket.code, noBucket.stderr]).toEqual([1, expect.stringContaining('S3_BUCKET')]);
  const misplaced = await tusflow(['cleanup', '--origin', ORIGIN]);
  expect([misplaced.code, misplaced.stderr]).toEqual([2, expect.stringContaining('s3-cors')]);
  const none = await tusflow(['s3-cors'], { ...s3Vars(), CORS_ORIGINS: ',' });
  expect([none.code, none.stderr]).toEqual([1, expect.stringContaining('s3-cors needs an origin')]);
  const malformed = await tusflow(['s3-cors', '--origin', 'app.example/path']);
  expect([malformed.code, malformed.stderr]).toEqual([2, expect.stringContaining('--origin needs an origin')]);
});
