import { AwsClient } from 'aws4fetch';
import { md5 } from '@noble/hashes/legacy.js';
import { toBase64 } from '../../model/encoding.ts';
import { S3Client, type S3ClientConfig } from './client.ts';
import { blocks, decodeXml, escapeXml, text } from './xml.ts';

/**
 * The bucket CORS rule direct uploads need: browsers of these origins may PUT parts (and POST,
 * GET, HEAD) with any header, and read the ETag of each part they sent, which completing needs.
 */
export function directUploadCorsXml(origins: string[]): string {
  return `<CORSConfiguration>${directUploadCorsRule(origins)}</CORSConfiguration>`;
}

/** The one `<CORSRule>` of `directUploadCorsXml`. */
function directUploadCorsRule(origins: string[]): string {
  if (origins.length === 0) throw new Error('a CORS rule needs at least one origin');
  const rule = [
    ...origins.map((origin) => `<AllowedOrigin>${escapeXml(origin)}</AllowedOrigin>`),
    ...['PUT', 'POST', 'GET', 'HEAD'].map((method) => `<AllowedMethod>${method}</AllowedMethod>`),
    '<AllowedHeader>*</AllowedHeader>',
    '<ExposeHeader>ETag</ExposeHeader>',
    '<MaxAgeSeconds>3600</MaxAgeSeconds>',
  ].join('');
  return `<CORSRule>${rule}</CORSRule>`;
}

/**
 * The bucket's rules with the one direct uploads need put first: services use the first rule that
 * matches, and radosgw matches by origin alone, so an older rule for the same origin (say, PUT
 * without POST) would otherwise hide it. The bucket's rules for other origins decide as before.
 */
export function withDirectUploadRule(current: string | undefined, origins: string[]): string {
  const kept = current === undefined ? [] : blocks(current, 'CORSRule').map((rule) => `<CORSRule>${rule}</CORSRule>`);
  return `<CORSConfiguration>${directUploadCorsRule(origins)}${kept.join('')}</CORSConfiguration>`;
}

/** One bucket's CORS configuration, read and written with the server's S3 settings. */
export class BucketCors {
  readonly #aws: AwsClient;
  readonly #url: string;

  constructor(config: Pick<S3ClientConfig, 'endpoint' | 'bucket' | 'region' | 'accessKeyId' | 'secretAccessKey' | 'sessionToken' | 'forcePathStyle'>) {
    this.#aws = new AwsClient({ ...config, service: 's3', retries: 2 });
    // The bucket's URL as the server's S3 client addresses it (path or virtual-host style).
    this.#url = `${new S3Client(config).bucketUrl()}?cors`;
  }

  /** The rules as S3 holds them (XML), or undefined when the bucket has none. */
  async get(): Promise<string | undefined> {
    const res = await this.#aws.fetch(this.#url);
    const body = await res.text();
    if (res.status === 404 && text(body, 'Code') === 'NoSuchCORSConfiguration') return undefined;
    if (!res.ok) throw new Error(`S3 GetBucketCors failed: ${res.status} ${text(body, 'Code') ?? ''}`);
    return body;
  }

  /** Replaces the bucket's CORS rules with `xml`. */
  async put(xml: string): Promise<void> {
    const res = await this.#aws.fetch(this.#url, {
      method: 'PUT',
      body: xml,
      headers: { 'Content-Type': 'application/xml', 'Content-MD5': toBase64(md5(new TextEncoder().encode(xml))) },
    });
    const body = await res.text();
    if (!res.ok) throw new Error(`S3 PutBucketCors failed: ${res.status} ${text(body, 'Code') ?? ''}`);
  }
}

/** Whether the rules let `origin` PUT parts, POST small files (`/s3/params`) and read the parts' ETag. */
export function allowsDirectUploads(xml: string, origin: string): boolean {
  return blocks(xml, 'CORSRule').some((rule) => {
    const origins = blocks(rule, 'AllowedOrigin').map(decodeXml);
    const methods = blocks(rule, 'AllowedMethod');
    const exposed = blocks(rule, 'ExposeHeader').map((h) => h.toLowerCase());
    return (origins.includes('*') || origins.includes(origin)) && methods.includes('PUT') && methods.includes('POST') && exposed.includes('etag');
  });
}
