import { beforeAll, expect, test } from 'bun:test';
import type { Upload } from '../../src/index.ts';
import { newUploadId } from '../../src/model/id.ts';
import type { S3Client } from '../../src/storage/s3/client.ts';
import type { S3DataStore } from '../../src/storage/s3/store.ts';
import { makeS3Store } from '../support/s3-server.ts';
import { randomBytes, sha256 } from '../support/server.ts';

const MiB = 1024 * 1024;

let client: S3Client;
let store: S3DataStore;
beforeAll(async () => {
  ({ client, store } = await makeS3Store({ partSize: 5 * MiB }));
}, 120_000);

const upload = (fields: Partial<Upload> = {}): Upload => ({ id: newUploadId(), offset: 0, metadata: {}, createdAt: Date.now(), ...fields });
const text = async (key: string) => {
  const res = await client.getObject(key);
  return res ? await res.text() : undefined;
};
const objectSha = async (key: string) => sha256(new Uint8Array(await (await client.getObject(key))!.arrayBuffer()));

/** Finished partial uploads whose objects hold `sizes` random bytes each. */
async function partials(sizes: number[]): Promise<{ uploads: Upload[]; bytes: Uint8Array }> {
  const uploads: Upload[] = [];
  const all: Uint8Array[] = [];
  for (const size of sizes) {
    const bytes = randomBytes(size);
    const u = upload({ offset: size, length: size });
    await client.putObject(u.id, bytes);
    uploads.push(u);
    all.push(bytes);
  }
  return { uploads, bytes: Buffer.concat(all) };
}

test('a concatenation never overwrites an object that appeared at its key: 409 KEY_TAKEN, the object kept, no multipart upload left', async () => {
  const { uploads, bytes } = await partials([6 * MiB, 100]);
  const taken = upload({ length: bytes.byteLength });
  await client.putObject(taken.id, 'not yours');
  await expect(store.concat(taken, uploads)).rejects.toMatchObject({ code: 'KEY_TAKEN' });
  expect(await text(taken.id)).toBe('not yours');
  const left: string[] = [];
  for await (const m of client.listMultipartUploads(taken.id)) left.push(m.key);
  expect(left).toEqual([]);
  // At a free key it completes, byte-identical.
  const free = upload({ length: bytes.byteLength });
  await store.concat(free, uploads);
  expect(await objectSha(free.id)).toBe(sha256(bytes));
}, 60_000);

test('an empty concatenation and an empty upload never overwrite an object at their key either', async () => {
  const { uploads } = await partials([0, 0]);
  const final = upload({ length: 0 });
  await client.putObject(final.id, 'not yours');
  await expect(store.concat(final, uploads)).rejects.toMatchObject({ code: 'KEY_TAKEN' });
  expect(await text(final.id)).toBe('not yours');

  const empty = upload({ length: 0 });
  empty.store = await store.create(empty);
  await client.putObject(empty.id, 'not yours');
  await expect(store.finish(empty)).rejects.toMatchObject({ code: 'KEY_TAKEN' });
  expect(await text(empty.id)).toBe('not yours');
  // At a free key both store an empty object.
  const free = upload({ length: 0 });
  await store.concat(free, uploads);
  const fresh = upload({ length: 0 });
  fresh.store = await store.create(fresh);
  await store.finish(fresh);
  expect([await text(free.id), await text(fresh.id)]).toEqual(['', '']);
}, 60_000);
