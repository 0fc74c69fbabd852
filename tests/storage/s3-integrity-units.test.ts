import { expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { crc32c, crc64nvme, multipartEtag, payloadHeaders } from '../../src/storage/s3/integrity.ts';
import { parseMetadataSetting } from '../../src/storage/s3/object-settings.ts';
import { parseEnv } from '../../src/wiring/config.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const CHECK = new TextEncoder().encode('123456789');

test('CRC-32C and CRC-64/NVME give the catalogued check values, whatever the views', () => {
  // The "check" values of the CRC catalogue (the CRC of "123456789").
  expect(hex(crc32c([CHECK]))).toBe('e3069283');
  expect(hex(crc64nvme([CHECK]))).toBe('ae8b14860a799888');
  const split = [CHECK.subarray(0, 2), CHECK.subarray(2, 2), CHECK.subarray(2)];
  expect(hex(crc32c(split))).toBe('e3069283');
  expect(hex(crc64nvme(split))).toBe('ae8b14860a799888');
  expect(hex(crc32c([]))).toBe('00000000');
});

test('each check declares the digest of the bytes of all views, as S3 expects it', async () => {
  const views = [new Uint8Array([1, 2, 3]), new Uint8Array(300_000).fill(7), new Uint8Array([9])];
  const joined = Buffer.concat(views);
  expect(await payloadHeaders('sha256', views)).toEqual({ 'X-Amz-Content-Sha256': createHash('sha256').update(joined).digest('hex') });
  expect(await payloadHeaders('md5', views)).toEqual({ 'Content-MD5': createHash('md5').update(joined).digest('base64') });
  expect(await payloadHeaders('crc32c', [CHECK])).toEqual({ 'x-amz-checksum-crc32c': Buffer.from('e3069283', 'hex').toString('base64') });
  expect(await payloadHeaders('crc64nvme', [CHECK])).toEqual({ 'x-amz-checksum-crc64nvme': Buffer.from('ae8b14860a799888', 'hex').toString('base64') });
  expect(await payloadHeaders('off', views)).toEqual({});
  expect(await payloadHeaders('md5', 'é')).toEqual({ 'Content-MD5': createHash('md5').update('é').digest('base64') });
});

test("a multipart object's ETag: the MD5 of the parts' MD5s, and their count", () => {
  const a = createHash('md5').update('a').digest();
  const b = createHash('md5').update('b').digest();
  const expected = `"${createHash('md5')
    .update(Buffer.concat([a, b]))
    .digest('hex')}-2"`;
  expect(multipartEtag([`"${a.toString('hex')}"`, `"${b.toString('hex')}"`])).toBe(expected);
});

test('S3_CHECKSUM, S3_METADATA, S3_STORAGE_CLASS and S3_CACHE_CONTROL are parsed, and bad values refused with a reason', () => {
  expect(parseEnv({}).S3_CHECKSUM).toBe('sha256');
  expect(parseEnv({ S3_CHECKSUM: 'crc64nvme' }).S3_CHECKSUM).toBe('crc64nvme');
  expect(() => parseEnv({ S3_CHECKSUM: 'crc32' })).toThrow(/S3_CHECKSUM="crc32"/);
  expect(parseMetadataSetting('team=media, owner = a=b')).toEqual({ team: 'media', owner: 'a=b' });
  expect(parseMetadataSetting('{"note":"x, y"}')).toEqual({ note: 'x, y' });
  expect(parseEnv({ S3_METADATA: 'a=1,b=2' }).S3_METADATA).toEqual({ a: '1', b: '2' });
  expect(() => parseEnv({ S3_METADATA: 'Team=x' })).toThrow(/S3_METADATA=.*"Team" is not a lower-case token/);
  expect(() => parseEnv({ S3_METADATA: '{"a":1}' })).toThrow(/S3_METADATA=.*not a string/);
  expect(() => parseEnv({ S3_METADATA: 'novalue' })).toThrow(/S3_METADATA=.*"novalue" is not name=value/);
  expect(() => parseEnv({ S3_STORAGE_CLASS: 'glacier' })).toThrow(/S3_STORAGE_CLASS/);
  expect(() => parseEnv({ S3_CACHE_CONTROL: 'max-age=1\n' })).toThrow(/S3_CACHE_CONTROL/);
});
