// Object keys chosen by a pre-create hook (here from the client's metadata, as a hook naming
// objects after file names does): one upload per key, and never a name of another upload's objects.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { HookHandler } from '../../src/hooks/types.ts';
import { MemoryStateStore } from '../../src/state/memory.ts';
import { randomBytes, sha256, TUS } from '../support/server.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';

const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
const keyFromMetadata: HookHandler = ({ upload }) => (upload.metadata.key ? { key: upload.metadata.key } : undefined);
const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);
const uniqueKey = () => `users/42/${crypto.randomUUID()}.bin`;

let server: S3TestServer;
beforeAll(async () => {
  server = await startS3Server({ hooks: { 'pre-create': keyFromMetadata } });
}, 120_000);
afterAll(() => server?.stop());

/** POST with the hook key `key`; when created, sends `bytes` (all, or the first `send`). */
async function attempt(endpoint: string, key: string | undefined, bytes: Uint8Array<ArrayBuffer>, send = bytes.length) {
  const headers: Record<string, string> = { ...TUS, 'Upload-Length': String(bytes.length) };
  if (key !== undefined) headers['Upload-Metadata'] = `key ${btoa(key)}`;
  const created = await fetch(endpoint, { method: 'POST', headers });
  const url = created.headers.get('Location');
  if (url && send > 0) {
    const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes.subarray(0, send) });
    expect(res.status).toBe(204);
  }
  return { status: created.status, reason: await created.text(), url };
}

/** What a second upload given a taken key could do to the first: write its bytes, then DELETE itself. */
async function intrude(endpoint: string, key: string) {
  const second = await attempt(endpoint, key, randomBytes(3000));
  if (second.url) await fetch(second.url, { method: 'DELETE', headers: TUS });
  return second;
}

const stored = async (key: string) => {
  const bytes = await server.object(key);
  return bytes && sha256(bytes);
};

describe('one upload per hook-chosen key', () => {
  test('a second upload given a taken key gets 409; the first keeps its bytes; once it is deleted, the key is free', async () => {
    const key = uniqueKey();
    const bytes = randomBytes(1000);
    const first = await attempt(server.endpoint, key, bytes);
    expect(first.status).toBe(201);
    const second = await intrude(server.endpoint, key);
    expect(await stored(key)).toBe(sha256(bytes));
    expect([second.status, second.reason]).toEqual([409, expect.stringContaining('object key is taken')]);
    // A final upload may not take it either.
    const partial = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Concat': 'partial', 'Upload-Length': '0' } });
    const final = await fetch(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Concat': `final;${partial.headers.get('Location')}`, 'Upload-Metadata': `key ${btoa(key)}` },
    });
    expect(final.status).toBe(409);
    expect(await stored(key)).toBe(sha256(bytes));

    expect((await fetch(first.url!, { method: 'DELETE', headers: TUS })).status).toBe(204);
    const again = randomBytes(500);
    expect((await attempt(server.endpoint, key, again)).status).toBe(201);
    expect(await stored(key)).toBe(sha256(again));
  });

  test('while the first upload is unfinished, the key is taken too; the first then finishes intact', async () => {
    const key = uniqueKey();
    const bytes = randomBytes(2000);
    const first = await attempt(server.endpoint, key, bytes, 700);
    expect((await intrude(server.endpoint, key)).status).toBe(409);
    const rest = await fetch(first.url!, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '700' }, body: bytes.subarray(700) });
    expect(rest.status).toBe(204);
    expect(await stored(key)).toBe(sha256(bytes));
  });

  test('reservations lost with the state store: storage still shows the key in use (a finished object, an unfinished upload)', async () => {
    const finishedKey = uniqueKey();
    const unfinishedKey = uniqueKey();
    const bytes = randomBytes(1000);
    await attempt(server.endpoint, finishedKey, bytes);
    const unfinished = await attempt(server.endpoint, unfinishedKey, bytes, 10);
    // Another instance on the same bucket whose state store knows nothing: a wiped Redis.
    const wiped = await startS3Server({ hooks: { 'pre-create': keyFromMetadata }, bucket: server.bucket, state: new MemoryStateStore() });
    try {
      for (const key of [finishedKey, unfinishedKey]) expect((await intrude(wiped.endpoint, key)).status).toBe(409);
    } finally {
      await wiped.stop();
    }
    expect(await stored(finishedKey)).toBe(sha256(bytes));
    const rest = await fetch(unfinished.url!, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '10' }, body: bytes.subarray(10) });
    expect(rest.status).toBe(204);
    expect(await stored(unfinishedKey)).toBe(sha256(bytes));
  });

  test("a key that names an upload by its id (its object, its info, its segments) is refused; the upload's objects stay as they were", async () => {
    const bytes = randomBytes(1000);
    const victim = await attempt(server.endpoint, undefined, bytes);
    const id = idOf(victim.url!);
    const info = await stored(`${id}.info`);
    for (const key of [id, id.toUpperCase(), `${id}.info`, `${id}.part/0`, `${id}/x`, 'f'.repeat(32)]) {
      const res = await intrude(server.endpoint, key);
      expect([key, res.status, res.reason]).toEqual([key, 500, expect.stringContaining('names an upload by its id')]);
    }
    expect(await stored(id)).toBe(sha256(bytes));
    expect(await stored(`${id}.info`)).toBe(info);
  });

  test('a creation that never saved its record (the server stopped) holds its key only for a term; one that did holds it for good', async () => {
    // The engine's claims are recorded, and its term (10 minutes) made short: 1 s.
    const state = new MemoryStateStore();
    const claimKey = state.claimKey.bind(state);
    const claims: [string, number | undefined][] = [];
    state.claimKey = (key, id, termMs) => {
      claims.push([key, termMs]);
      return claimKey(key, id, termMs === undefined ? undefined : 1000);
    };
    const short = await startS3Server({ hooks: { 'pre-create': keyFromMetadata }, state });
    try {
      // What a server that stopped between reserving the key and saving the record leaves behind.
      const orphaned = uniqueKey();
      expect(await claimKey(orphaned, 'f'.repeat(32), 1000)).toBe(true);
      expect((await attempt(short.endpoint, orphaned, randomBytes(100), 0)).status).toBe(409);
      const kept = uniqueKey();
      const bytes = randomBytes(100);
      expect((await attempt(short.endpoint, kept, bytes)).status).toBe(201);
      // Reserved for the term while the upload is created, then for good before its record is saved.
      expect(claims.filter(([key]) => key === kept)).toEqual([
        [kept, 10 * 60_000],
        [kept, undefined],
      ]);
      await Bun.sleep(1100);
      // Storage would refuse the key too (its object exists): the reservation itself must hold.
      expect(await claimKey(kept, 'e'.repeat(32), 1000)).toBe(false);
      const taken = await attempt(short.endpoint, kept, randomBytes(100), 0);
      expect([taken.status, taken.reason]).toEqual([409, expect.stringContaining('object key is taken')]);
      expect(sha256((await short.object(kept))!)).toBe(sha256(bytes));
      const late = randomBytes(100);
      expect((await attempt(short.endpoint, orphaned, late)).status).toBe(201);
      expect(sha256((await short.object(orphaned))!)).toBe(sha256(late));
    } finally {
      await short.stop();
    }
  });

  test('an expired upload gives its key back once the cleanup removed it', async () => {
    const short = await startS3Server({ hooks: { 'pre-create': keyFromMetadata }, uploadTtlSeconds: 1 });
    try {
      const key = uniqueKey();
      await attempt(short.endpoint, key, randomBytes(100), 10);
      expect((await attempt(short.endpoint, key, randomBytes(100), 0)).status).toBe(409);
      await Bun.sleep(1100);
      expect(await short.tusflow.engine.cleanup()).toBe(1);
      expect((await attempt(short.endpoint, key, randomBytes(100), 0)).status).toBe(201);
    } finally {
      await short.stop();
    }
  });
});
