/**
 * Tus-Extension comes from what the data store can do (its optional methods), and a request for an
 * extension the store lacks is refused up front with 400, before anything is created.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { capabilitiesOf } from '../../src/engine/capabilities.ts';
import { MemoryStateStore } from '../../src/state/memory.ts';
import { FileDataStore } from '../../src/storage/file/store.ts';
import { MemoryDataStore } from '../../src/storage/memory.ts';
import { S3Client } from '../../src/storage/s3/client.ts';
import { S3DataStore } from '../../src/storage/s3/store.ts';
import type { DataStore } from '../../src/storage/types.ts';
import { randomBytes, startServer, TUS, type TestServer } from '../support/server.ts';

const ALL = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration', 'checksum', 'concatenation', 'concatenation-unfinished'];
const OPTIONAL = ['concat', 'declareLength', 'stale', 'check', 'recover', 'keyInUse'] as const;

/** The store's methods bound to it, less the optional ones named: a store that cannot do those. */
function lacking(store: DataStore, ...missing: (typeof OPTIONAL)[number][]): DataStore {
  const methods = store as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const name of ['create', 'write', 'finish', 'read', 'remove', ...OPTIONAL]) {
    const method = methods[name];
    if (typeof method === 'function' && !(missing as string[]).includes(name)) out[name] = method.bind(store);
  }
  return out as unknown as DataStore;
}

const extensions = async (s: TestServer) => (await fetch(s.endpoint, { method: 'OPTIONS' })).headers.get('Tus-Extension')?.split(',');
const post = (s: TestServer, headers: Record<string, string>, body?: Uint8Array) =>
  fetch(s.endpoint, { method: 'POST', headers: { ...TUS, ...headers }, body: body as BodyInit | undefined });

test('what each store of the project can do: all of it', () => {
  const s3 = new S3DataStore({
    client: new S3Client({ endpoint: 'http://127.0.0.1:9', bucket: 'b', region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's', forcePathStyle: true }),
    prefix: '',
    partSize: 5 * 1024 * 1024,
    parallelParts: 1,
  });
  for (const store of [new MemoryDataStore(), new FileDataStore('/tmp/tusflow-unused'), s3]) {
    expect(capabilitiesOf(store)).toEqual({ concatenation: true, deferredLength: true });
  }
});

test('deferred lengths: any store that does not rebuild records; one that does must be told the length', () => {
  const memory = new MemoryDataStore();
  expect(capabilitiesOf(lacking(memory, 'declareLength')).deferredLength).toBe(true);
  const recovering = { ...lacking(memory), recover: async () => undefined }; // the memory store has no declareLength
  expect(capabilitiesOf(recovering).deferredLength).toBe(false);
  expect(capabilitiesOf({ ...recovering, declareLength: async () => {} }).deferredLength).toBe(true);
});

describe('a store without concat', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ store: lacking(new MemoryDataStore(), 'concat'), state: new MemoryStateStore() });
  });
  afterAll(() => server.stop());

  test('OPTIONS offers no concatenation', async () => {
    expect(await extensions(server)).toEqual(ALL.filter((e) => !e.startsWith('concatenation')));
  });

  test('Upload-Concat: partial → 400, nothing created', async () => {
    const res = await post(server, { 'Upload-Concat': 'partial', 'Upload-Length': '3' });
    expect(res.status).toBe(400);
    expect(res.headers.get('Location')).toBeNull();
    expect(await res.text()).toContain('concatenation');
  });

  test('Upload-Concat: final → 400, even over uploads it does not know', async () => {
    const res = await post(server, { 'Upload-Concat': `final;${server.endpoint}${'a'.repeat(32)}` });
    expect(res.status).toBe(400);
    expect(res.headers.get('Location')).toBeNull();
    expect(await res.text()).toContain('concatenation');
  });

  test('everything else works: an upload with a body, a deferred length, a download', async () => {
    const bytes = randomBytes(10);
    const created = await post(server, { 'Upload-Length': '10', 'Content-Type': 'application/offset+octet-stream' }, bytes);
    expect(created.status).toBe(201);
    expect(new Uint8Array(await (await fetch(created.headers.get('Location')!)).arrayBuffer())).toEqual(bytes);
    expect((await post(server, { 'Upload-Defer-Length': '1' })).status).toBe(201);
  });
});

describe('a store that rebuilds records but cannot be told a declared length', () => {
  let server: TestServer;
  beforeAll(async () => {
    const store = { ...lacking(new MemoryDataStore(), 'declareLength'), recover: async () => undefined };
    server = await startServer({ store, state: new MemoryStateStore() });
  });
  afterAll(() => server.stop());

  test('OPTIONS offers no creation-defer-length', async () => {
    expect(await extensions(server)).toEqual(ALL.filter((e) => e !== 'creation-defer-length'));
  });

  test('Upload-Defer-Length: 1 → 400, nothing created', async () => {
    const res = await post(server, { 'Upload-Defer-Length': '1' });
    expect(res.status).toBe(400);
    expect(res.headers.get('Location')).toBeNull();
  });

  test('an IETF creation without a length → 400; with one → 201', async () => {
    const ietf = { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?0' };
    const refused = await fetch(server.endpoint, { method: 'POST', headers: ietf });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('Location')).toBeNull();
    const created = await fetch(server.endpoint, { method: 'POST', headers: { ...ietf, 'Upload-Length': '5' } });
    expect(created.status).toBe(201);
  });

  test('uploads of a known length, and concatenation, work', async () => {
    const partial = await post(server, { 'Upload-Concat': 'partial', 'Upload-Length': '0' });
    expect(partial.status).toBe(201);
    const final = await post(server, { 'Upload-Concat': `final;${partial.headers.get('Location')}` });
    expect(final.status).toBe(201);
  });
});
