/**
 * `tusflow s3-cors`: the bucket CORS rule browsers need to send parts straight to S3 (S3_DIRECT):
 * shows the bucket's rules, whether they let each origin PUT parts, POST small files and read the
 * parts' ETag, and the rule that does; with `--apply`, puts that rule before the bucket's own (when
 * they do not allow every origin already).
 */
import { ConfigError, parseEnv } from './config.ts';
import { allowsDirectUploads, BucketCors, directUploadCorsXml, withDirectUploadRule } from '../storage/s3/bucket-cors.ts';

/** What the command prints, line by line; resolves once done (a failure throws). */
export async function s3Cors(env: Record<string, string | undefined>, origins: string[], apply: boolean, print: (line: string) => void): Promise<void> {
  const e = parseEnv(env);
  const accessKeyId = e.S3_ACCESS_KEY_ID ?? e.AWS_ACCESS_KEY_ID;
  const secretAccessKey = e.S3_SECRET_ACCESS_KEY ?? e.AWS_SECRET_ACCESS_KEY;
  if (!e.S3_BUCKET || !accessKeyId || !secretAccessKey) throw new ConfigError('s3-cors needs S3_BUCKET and its credentials (S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)');
  // The page origins allowed to call the server are the ones to let PUT parts.
  const allowed = origins.length > 0 ? origins : e.CORS_ORIGINS;
  if (allowed.length === 0) throw new ConfigError('s3-cors needs an origin: --origin <origin>, or CORS_ORIGINS');
  const cors = new BucketCors({
    endpoint: e.S3_ENDPOINT,
    bucket: e.S3_BUCKET,
    region: e.S3_REGION,
    accessKeyId,
    secretAccessKey,
    sessionToken: e.S3_SESSION_TOKEN,
    forcePathStyle: e.S3_FORCE_PATH_STYLE,
  });
  const current = await cors.get();
  print(`bucket ${e.S3_BUCKET}: CORS rules ${current ? `now:\n${current.trim()}` : 'now: none'}`);
  const may = (origin: string) => current !== undefined && allowsDirectUploads(current, origin);
  for (const origin of allowed) print(`  ${origin}: ${may(origin) ? 'may' : 'may not'} PUT parts, POST small files and read their ETag`);
  if (allowed.every(may)) {
    print('nothing to change');
    return;
  }
  const rule = directUploadCorsXml(allowed);
  if (!apply) {
    print(`the rule direct uploads need:\n${rule}\nrun again with --apply to add it before the bucket's own rules`);
    return;
  }
  const merged = withDirectUploadRule(current, allowed);
  await cors.put(merged);
  const after = await cors.get();
  if (!after || !allowed.every((origin) => allowsDirectUploads(after, origin))) throw new Error('the bucket did not keep the rule it was given');
  print(`applied:\n${merged}`);
}
