import { toBase64, toHex } from '../../model/encoding.ts';
import type { S3ClientConfig } from './client.ts';

export interface PostPolicyOptions {
  /** The one key the form may store. */
  key: string;
  /** The headers it stores the object with, each allowed with exactly this value (Content-Type among them). */
  headers: Record<string, string>;
  /** At most this many bytes (S3 refuses more with EntityTooLarge). */
  maxSize?: number;
  expiresSeconds: number;
  now?: Date;
}

const encoder = new TextEncoder();

async function hmac(key: Uint8Array, data: string): Promise<Uint8Array> {
  const imported = await crypto.subtle.importKey('raw', key as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', imported, encoder.encode(data)));
}

/**
 * The form fields of a browser-based upload (S3 POST Object) signed with a SigV4 POST policy that
 * allows exactly one key, its headers each with exactly its value and at most `maxSize` bytes, for
 * `expiresSeconds`: S3 itself refuses anything else. Web Crypto only, so it runs on every runtime.
 */
export async function postPolicyFields(
  config: Pick<S3ClientConfig, 'bucket' | 'region' | 'accessKeyId' | 'secretAccessKey' | 'sessionToken'>,
  o: PostPolicyOptions,
): Promise<Record<string, string>> {
  const now = o.now ?? new Date();
  const date = now.toISOString().replace(/[:-]|\.\d{3}/g, '');
  const day = date.slice(0, 8);
  const credential = `${config.accessKeyId}/${day}/${config.region}/s3/aws4_request`;
  const fields: Record<string, string> = {
    key: o.key,
    ...o.headers,
    'x-amz-algorithm': 'AWS4-HMAC-SHA256',
    'x-amz-credential': credential,
    'x-amz-date': date,
  };
  if (config.sessionToken) fields['x-amz-security-token'] = config.sessionToken;
  const conditions: unknown[] = [{ bucket: config.bucket }, ...Object.entries(fields).map(([name, value]) => ({ [name]: value }))];
  if (o.maxSize !== undefined) conditions.push(['content-length-range', 0, o.maxSize]);
  const policy = toBase64(encoder.encode(JSON.stringify({ expiration: new Date(now.getTime() + o.expiresSeconds * 1000).toISOString(), conditions })));
  let key: Uint8Array = encoder.encode(`AWS4${config.secretAccessKey}`);
  for (const part of [day, config.region, 's3', 'aws4_request']) key = await hmac(key, part);
  return { ...fields, policy, 'x-amz-signature': toHex(await hmac(key, policy)) };
}
