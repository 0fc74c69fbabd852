// A record rebuilt from S3 (the state store lost it: a finished upload's record after
// FINISHED_TTL_SECONDS, or a wiped Redis) keeps what decisions about the upload rest on: its owner,
// whether it is a partial or a final upload, and, for a partial, when it expires.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sign } from 'hono/jwt';
import type { StateStore } from '../../src/index.ts';
import { createUpload, TUS } from '../support/server.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { STATE_KINDS } from '../support/state-stores.ts';

const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
const SECRET = 'recovery-jwt-secret';
const bearer = async (sub: string) => ({ Authorization: `Bearer ${await sign({ sub, exp: Math.floor(Date.now() / 1000) + 600 }, SECRET, 'HS256')}` });
const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);

async function serverOnRedis(options: { uploadTtlSeconds?: number } = {}): Promise<{ server: S3TestServer; state: StateStore }> {
  const { state, locker } = await STATE_KINDS.find((k) => k.name === 'redis')!.make();
  const server = await startS3Server({ jwtSecret: SECRET, state, locker, ...options });
  return { server, state };
}

let server: S3TestServer;
let state: StateStore;
let alice: Record<string, string>;
let bob: Record<string, string>;
beforeAll(async () => {
  ({ server, state } = await serverOnRedis());
  [alice, bob] = await Promise.all([bearer('alice'), bearer('bob')]);
}, 120_000);
afterAll(() => server?.stop());

/** An upload of alice's with `bytes` sent (a partial one with `concat`). */
async function upload(bytes: string, headers: Record<string, string> = {}): Promise<string> {
  const url = await createUpload(server.endpoint, { ...alice, 'Upload-Length': String(bytes.length), ...headers });
  if (bytes) {
    const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, ...alice, 'Upload-Offset': '0' }, body: bytes });
    expect(res.status).toBe(204);
  }
  return url;
}

const forget = (url: string) => state.delete(idOf(url));

describe('the owner survives a rebuild from S3', () => {
  for (const finished of [true, false]) {
    test(`alice's ${finished ? 'finished' : 'unfinished'} upload, its record gone: bob gets 403 on every method; alice still uses it`, async () => {
      const url = await upload('abc', finished ? {} : { 'Upload-Length': '10' });
      for (const [method, headers, body] of [
        ['HEAD', {}, undefined],
        ['GET', {}, undefined],
        ['PATCH', { ...PATCH, 'Upload-Offset': '3' }, 'xyz'],
        ['DELETE', {}, undefined],
      ] as const) {
        await forget(url);
        const res = await fetch(url, { method, headers: { ...TUS, ...headers, ...bob }, body });
        expect([method, res.status]).toEqual([method, 403]);
      }
      await forget(url);
      expect((await fetch(`${url}/progress`, { headers: bob })).status).toBe(403);
      await forget(url);
      const head = await fetch(url, { method: 'HEAD', headers: { ...TUS, ...alice } });
      expect([head.status, head.headers.get('Upload-Offset')]).toEqual([200, '3']);
      if (finished) expect(await (await fetch(url, { headers: alice })).text()).toBe('abc');
      await forget(url);
      expect((await fetch(url, { method: 'DELETE', headers: { ...TUS, ...alice } })).status).toBe(204);
    });
  }
});

describe('concatenation survives a rebuild from S3', () => {
  test('partials whose records are gone: still partial, their owner concatenates them, bob may not', async () => {
    const parts = [await upload('hello ', { 'Upload-Concat': 'partial' }), await upload('world', { 'Upload-Concat': 'partial' })];
    await Promise.all(parts.map(forget));
    const head = await fetch(parts[0]!, { method: 'HEAD', headers: { ...TUS, ...alice } });
    expect(head.headers.get('Upload-Concat')).toBe('partial');
    await Promise.all(parts.map(forget));
    const concat = { ...TUS, 'Upload-Concat': `final;${parts.join(' ')}` };
    expect((await fetch(server.endpoint, { method: 'POST', headers: { ...concat, ...bob } })).status).toBe(403);
    await Promise.all(parts.map(forget));
    const res = await fetch(server.endpoint, { method: 'POST', headers: { ...concat, ...alice } });
    expect(res.status).toBe(201);
    expect(await (await fetch(res.headers.get('Location')!, { headers: alice })).text()).toBe('hello world');
  });

  test('a final upload whose record is gone still reports Upload-Concat: final and refuses PATCH', async () => {
    const parts = [await upload('ab', { 'Upload-Concat': 'partial' }), await upload('cd', { 'Upload-Concat': 'partial' })];
    const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, ...alice, 'Upload-Concat': `final;${parts.join(' ')}` } });
    expect(created.status).toBe(201);
    const url = created.headers.get('Location')!;
    await forget(url);
    const head = await fetch(url, { method: 'HEAD', headers: { ...TUS, ...alice } });
    expect([head.status, head.headers.get('Upload-Concat')]).toEqual([200, `final;${parts.join(' ')}`]);
    await forget(url);
    const patch = await fetch(url, { method: 'PATCH', headers: { ...PATCH, ...alice, 'Upload-Offset': '4' }, body: 'x' });
    expect([patch.status, await patch.text()]).toEqual([403, expect.stringContaining('final upload')]);
    await forget(url);
    expect((await fetch(url, { method: 'HEAD', headers: { ...TUS, ...bob } })).status).toBe(403);
    expect(await (await fetch(url, { headers: alice })).text()).toBe('abcd');
  });

  test('a finished partial rebuilt from S3 expires as it would have: from when it finished', async () => {
    const short = await serverOnRedis({ uploadTtlSeconds: 1 });
    try {
      const url = await createUpload(short.server.endpoint, { ...alice, 'Upload-Concat': 'partial', 'Upload-Length': '2' });
      expect((await fetch(url, { method: 'PATCH', headers: { ...PATCH, ...alice, 'Upload-Offset': '0' }, body: 'ab' })).status).toBe(204);
      await Bun.sleep(2100); // S3's Last-Modified has whole seconds
      await short.state.delete(idOf(url));
      expect((await fetch(url, { method: 'HEAD', headers: { ...TUS, ...alice } })).status).toBe(410);
    } finally {
      await short.server.stop();
    }
  });
});
