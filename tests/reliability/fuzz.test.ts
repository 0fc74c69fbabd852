/**
 * Protocol fuzzing with fast-check: 1,000 cases, each one to three requests sent at once over raw
 * sockets (so any method, path and header bytes go out as generated), to a server storing into
 * radosgw under the key prefix `fuzz/` and to one on the embedded file store. Properties:
 *
 *  - never a 5xx (S3 is healthy, so not even a 503), and never a connection closed unanswered;
 *  - never a hang: every answer starts and ends within a few seconds;
 *  - never a change to the sentinel uploads, which no generated request names;
 *  - never an S3 key outside the prefix, nor a key of a shape the server does not make.
 *
 * Reproduce with FUZZ_SEED=<seed> (printed, and in fast-check's report with the path); FUZZ_RUNS
 * changes the number of cases.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { AwsClient } from 'aws4fetch';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rawRequest, type RawOutcome, type RawRequest } from '../support/raw-http.ts';
import { seedFromEnv, seededBytes, seededRng } from '../support/rng.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { sha256, startServer, TUS, type TestServer } from '../support/server.ts';

const SEED = seedFromEnv('FUZZ_SEED', 20_260_101);
const RUNS = seedFromEnv('FUZZ_RUNS', 1000);
const PREFIX = 'fuzz/';
const TIMEOUT_MS = 5_000;
const KiB = 1024;

type ServerName = 'S3' | 'files';
interface PoolEntry {
  server: ServerName;
  id: string;
  offset: number;
  partial?: boolean;
}

let s3Server: S3TestServer;
let fileServer: TestServer;
let raw: AwsClient;
const pool: PoolEntry[] = [];
const sentinels: { server: ServerName; id: string; what: string }[] = [];
let before: Record<string, unknown> = {};

const origin = (server: ServerName) => (server === 'S3' ? s3Server.origin : fileServer.origin);
const endpoint = (server: ServerName) => (server === 'S3' ? s3Server.endpoint : fileServer.endpoint);

// ---------------------------------------------------------------------------------------------
// Arbitraries

const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
const noCrLf = (s: string) => s.replace(/[\r\n]/g, '');

const numberish = fc.oneof(
  { weight: 5, arbitrary: fc.nat({ max: 300_000 }).map(String) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '0',
      '-1',
      '-0',
      '1e3',
      '0x10',
      '+5',
      ' 12',
      '12 ',
      '',
      '9007199254740991',
      '9007199254740992',
      '99999999999999999999',
      '5497558138880',
      '5497558138881',
      '1.5',
      'NaN',
      'Infinity',
      '１２',
      '00000000000000001',
    ),
  },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 10n ** 22n }).map(String) },
  { weight: 1, arbitrary: fc.integer({ min: -1_000_000, max: -1 }).map(String) },
  { weight: 1, arbitrary: fc.string({ maxLength: 24, unit: 'binary-ascii' }) },
);

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const metaValue = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => b64(new TextEncoder().encode(s))) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('text/html', 'image/png', 'text/plain', 'application/pdf', '../../etc/passwd', 'a"b\\c;d', '<script>x</script>', 'x\r\ny', 'é.txt', '')
      .map((s) => b64(new TextEncoder().encode(s))),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map(b64) }, // binary: often not UTF-8
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) }, // not base64
  { weight: 1, arbitrary: fc.constant(undefined) }, // a key without a value
);
// (Control bytes in a header make Bun's parser answer 400 before any handler runs: rare here.)
const metaKey = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('filename', 'filetype', 'name', 'type', 'contentType', 'k', 'Filename') },
  { weight: 3, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12, unit: 'binary-ascii' }) },
);
const metadata = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.tuple(metaKey, metaValue), { maxLength: 5 }).map((pairs) => pairs.map(([k, v]) => (v === undefined ? k : `${k} ${v}`)).join(',')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60, unit: 'binary-ascii' }) },
);

const checksum = fc.record({
  algorithm: fc.constantFrom('sha1', 'md5', 'sha256', 'sha512', 'crc32', 'SHA1', 'sha3', '', 'sha1 sha1'),
  digest: fc.oneof(fc.constant('<correct>'), fc.base64String({ maxLength: 90 }), fc.string({ maxLength: 20 })),
});

/** A reference to an upload in Upload-Concat: one of the pool's (absolute or relative URL), or not. */
const concatRef = fc.oneof(
  { weight: 4, arbitrary: fc.record({ pool: fc.nat(), absolute: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      hex(32).map((h) => `http://evil.example/files/${h}`),
      hex(32).map((h) => `/files/${h}`),
      hex(32).map((h) => `/other/${h}`),
      fc.constantFrom('/files/..', '/files/', '..', '%2e%2e', 'http://[::1', '/files/x?y#z'),
      fc.string({ maxLength: 30, unit: 'grapheme-ascii' }).map((s) => s.replace(/\s/g, '') || 'x'),
    ),
  },
);
const concat = fc.oneof(
  { weight: 2, arbitrary: fc.constant('partial') },
  { weight: 3, arbitrary: fc.array(concatRef, { minLength: 0, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom('final;', 'final', 'FINAL;/files/x', 'partial;', 'final; ', 'final;\t/files/') },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
);

/** Where the request goes: the collection, an upload of the pool, or a made-up path. */
const target = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('collection' as const), path: fc.constantFrom('/files/', '/files', '/files//', '/Files/', '/files/?a=b') }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('pool' as const),
      pick: fc.nat(),
      suffix: fc.constantFrom('', '', '', '', '/', '/progress', '/progress/', '/progress/x', '/..', '%2F..', '?x=1', '#frag'),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('path' as const),
      path: fc.oneof(
        fc.constantFrom(
          '/files/..',
          '/files/../',
          '/files/../../etc/passwd',
          '/files/%2e%2e',
          '/files/%2e%2e/%2e%2e/etc/passwd',
          '/files/..%2f..%2fetc%2fpasswd',
          '/files/%2E%2E%2F',
          '/files/.%2e/',
          '/files/%252e%252e',
          '/files/....//....//',
          '/files/./',
          '/files/%00',
          '/files/\\..\\..\\',
          '/../files/',
          '/',
          '/favicon.ico',
          '/files/%',
          '/files/%zz',
          '*',
          'http://evil.example/files/',
          '/files?x',
          '/files/;',
          '/files/%20',
          '/files/%2e%2e/progress',
          '//files/',
        ),
        hex(31).map((h) => `/files/${h}`),
        hex(33).map((h) => `/files/${h}`),
        hex(64).map((h) => `/files/${h}`),
        hex(32).map((h) => `/files/${h.toUpperCase()}`),
        hex(32).map((h) => `/files/${h}`), // a valid id of no upload
        hex(32).map((h) => `/files/${h}/progress`),
        hex(32).map((h) => `/files/../files/${h}`),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).map((s) => `/files/${s}`), // raw UTF-8 in the request line
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).map((s) => `/files/${encodeURIComponent(s)}`),
        fc.integer({ min: 100, max: 7000 }).map((n) => `/files/${'a'.repeat(n)}`),
        fc.integer({ min: 30, max: 1500 }).map((n) => `/files/${'../'.repeat(n)}`),
      ),
    }),
  },
);

const METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'];
// Only methods Bun's HTTP parser accepts: it drops the connection itself, before any handler runs,
// on tokens it does not know ('patch', 'FOO', 'Delete'). Odd spellings go in X-HTTP-Method-Override.
const method = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(...METHODS) },
  { weight: 1, arbitrary: fc.constantFrom('PUT', 'TRACE', 'PROPFIND', 'M-SEARCH', 'CONNECT') },
);

/** Upload-Offset: the upload's offset as last seen (or one off), or anything. */
const offset = fc.oneof({ weight: 4, arbitrary: fc.record({ current: fc.constantFrom(0, 0, 0, -1, 1) }) }, { weight: 1, arbitrary: numberish });

/**
 * A request starts as a sensible one of its kind (so that many reach storage) and then gets 0-3
 * mutations: a header set to something odd or removed, another method, another path.
 */
const mutation = fc.oneof(
  fc.record({ header: fc.constantFrom('Upload-Length', 'Upload-Defer-Length'), value: numberish }),
  fc.record({ header: fc.constant('Upload-Defer-Length'), value: fc.constant('1') }),
  fc.record({ header: fc.constant('Upload-Offset'), value: offset }),
  fc.record({ header: fc.constant('Upload-Metadata'), value: metadata }),
  fc.record({ header: fc.constant('Upload-Checksum'), value: checksum }),
  fc.record({ header: fc.constant('Upload-Concat'), value: concat }),
  fc.record({
    header: fc.constant('Tus-Resumable'),
    value: fc.oneof(fc.constantFrom('0.2.2', '1.0', '', '1.0.0 ', '1.0.0, 0.2.2'), fc.string({ maxLength: 10 })),
  }),
  fc.record({
    header: fc.constant('Content-Type'),
    value: fc.oneof(
      fc.constantFrom(
        'application/offset+octet-stream; charset=x',
        'APPLICATION/OFFSET+OCTET-STREAM',
        'text/plain',
        'application/octet-stream',
        '',
        'multipart/form-data; boundary=x',
      ),
      fc.string({ maxLength: 30 }),
    ),
  }),
  fc.record({ header: fc.constant('X-HTTP-Method-Override'), value: fc.oneof(fc.constantFrom(...METHODS, 'patch', 'PUT'), fc.string({ maxLength: 10 })) }),
  fc.record({
    header: fc.constant('Range'),
    value: fc.oneof(
      fc.constantFrom('bytes=0-', 'bytes=0-0', 'bytes=-10', 'bytes=5-2', 'bytes=99999999-', 'bytes=0-1,3-4', 'items=0-1', 'bytes=-0'),
      fc.string({ maxLength: 20 }),
    ),
  }),
  fc.record({ header: fc.constant('Accept'), value: fc.constantFrom('text/event-stream', 'application/json', '*/*') }),
  fc.record({ remove: fc.constantFrom('Tus-Resumable', 'Upload-Length', 'Upload-Offset', 'Content-Type', 'Upload-Defer-Length') }),
  fc.record({ method }),
  fc.record({ target }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

const request = fc.record({
  server: fc.constantFrom<ServerName>('S3', 'S3', 'S3', 'files'),
  intent: fc.constantFrom('create', 'create', 'create-with-body', 'patch', 'patch', 'patch', 'patch-checksum', 'head', 'get', 'progress', 'delete', 'options', 'concat'),
  pick: fc.nat(),
  length: fc.oneof(fc.nat({ max: 200 * KiB }), fc.constant(0), fc.nat({ max: 12 * 1024 * KiB })),
  partial: fc.boolean(),
  metadata: fc.option(metadata, { freq: 3 }),
  algorithm: fc.constantFrom('sha1', 'md5', 'sha256', 'sha512'),
  refs: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
  bodyLength: fc.oneof({ weight: 3, arbitrary: fc.nat({ max: 4 * KiB }) }, { weight: 2, arbitrary: fc.nat({ max: 64 * KiB }) }, { weight: 1, arbitrary: fc.constant(0) }),
  bodySeed: fc.nat(),
  mutations: fc.oneof({ weight: 3, arbitrary: fc.constant<Mutation[]>([]) }, { weight: 4, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) }),
});
type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;
type Target = typeof target extends fc.Arbitrary<infer T> ? T : never;
type Concat = (typeof concat extends fc.Arbitrary<infer T> ? T : never) | { pool: number; absolute: boolean; partial: boolean }[];

// ---------------------------------------------------------------------------------------------
// Turning a generated request into bytes on the wire

function poolFor(server: ServerName, pick: number, partialOnly = false): PoolEntry | undefined {
  const own = pool.filter((p) => p.server === server && (!partialOnly || p.partial));
  return own.length ? own[pick % own.length] : partialOnly ? poolFor(server, pick) : undefined;
}

function digestOf(algorithm: string, body: Uint8Array): string | undefined {
  if (!['sha1', 'md5', 'sha256', 'sha512'].includes(algorithm)) return undefined;
  return new Bun.CryptoHasher(algorithm as 'sha1').update(body).digest('base64');
}

function build(r: FuzzRequest): { wire: RawRequest; entry?: PoolEntry; target: Target } {
  const body = seededBytes(seededRng(r.bodySeed), r.bodyLength);
  const headers = new Map<string, string>([['Tus-Resumable', '1.0.0']]);
  const STREAM = 'application/offset+octet-stream';
  let method = 'GET';
  let target: Target = { kind: 'pool', pick: r.pick, suffix: '' };
  let sendBody = false;
  let offsetSpec: string | { current: number } = { current: 0 };
  let checksumSpec: { algorithm: string; digest: string } | undefined;
  let concatSpec: Concat | undefined;
  if (r.metadata !== null) headers.set('Upload-Metadata', r.metadata);

  switch (r.intent) {
    case 'create':
    case 'create-with-body':
      method = 'POST';
      target = { kind: 'collection', path: '/files/' };
      if (r.length === 0 && r.partial) headers.set('Upload-Defer-Length', '1');
      else headers.set('Upload-Length', String(r.length));
      if (r.partial) concatSpec = 'partial';
      if (r.intent === 'create-with-body') {
        headers.set('Content-Type', STREAM);
        sendBody = true;
      }
      break;
    case 'patch':
    case 'patch-checksum':
      method = 'PATCH';
      headers.set('Content-Type', STREAM);
      headers.delete('Upload-Metadata');
      sendBody = true;
      if (r.intent === 'patch-checksum') checksumSpec = { algorithm: r.algorithm, digest: r.partial ? '<correct>' : 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' };
      if (r.partial) headers.set('Upload-Length', String(r.length)); // declares a deferred length, or repeats (or contradicts) one
      break;
    case 'head':
    case 'get':
    case 'delete':
    case 'options':
      method = { head: 'HEAD', get: 'GET', delete: 'DELETE', options: 'OPTIONS' }[r.intent];
      if (r.intent === 'options' && r.partial) target = { kind: 'collection', path: '/files/' };
      break;
    case 'progress':
      target = { kind: 'pool', pick: r.pick, suffix: '/progress' };
      if (r.partial) headers.set('Accept', 'text/event-stream');
      break;
    case 'concat':
      method = 'POST';
      target = { kind: 'collection', path: '/files/' };
      concatSpec = r.refs.map((pick) => ({ pool: pick, absolute: pick % 2 === 0, partial: pick % 5 !== 0 }));
      break;
  }

  for (const m of r.mutations) {
    if ('remove' in m) headers.delete(m.remove);
    else if ('method' in m) method = m.method;
    else if ('target' in m) target = m.target;
    else if (m.header === 'Upload-Offset') offsetSpec = m.value as string | { current: number };
    else if (m.header === 'Upload-Checksum') checksumSpec = m.value as { algorithm: string; digest: string };
    else if (m.header === 'Upload-Concat') concatSpec = m.value as Concat;
    else headers.set(m.header, m.value as string);
  }

  let path: string;
  let entry: PoolEntry | undefined;
  if (target.kind === 'pool') {
    entry = poolFor(r.server, target.pick);
    path = `/files/${entry?.id ?? 'none'}${target.suffix}`;
  } else path = target.path;

  if (method.toUpperCase() === 'PATCH' || headers.has('Upload-Offset') || r.mutations.some((m) => 'header' in m && m.header === 'Upload-Offset')) {
    if (!r.mutations.some((m) => 'remove' in m && m.remove === 'Upload-Offset')) {
      headers.set('Upload-Offset', typeof offsetSpec === 'string' ? offsetSpec : String((entry?.offset ?? 0) + offsetSpec.current));
    }
  }
  if (checksumSpec) {
    const digest = checksumSpec.digest === '<correct>' ? (digestOf(checksumSpec.algorithm, sendBody ? body : new Uint8Array()) ?? 'AAAA') : checksumSpec.digest;
    headers.set('Upload-Checksum', `${checksumSpec.algorithm} ${digest}`);
  }
  if (concatSpec !== undefined) {
    if (typeof concatSpec === 'string') headers.set('Upload-Concat', concatSpec);
    else {
      const refs = concatSpec.map((ref) => {
        if (typeof ref === 'string') return ref;
        const p = poolFor(r.server, ref.pool, 'partial' in ref && ref.partial === true);
        const relative = `/files/${p?.id ?? 'none'}`;
        return ref.absolute ? `${origin(r.server)}${relative}` : relative;
      });
      headers.set('Upload-Concat', `final;${refs.join(' ')}`);
    }
  }
  const list: [string, string][] = [...headers].map(([k, v]) => [k, noCrLf(v)]);
  return { wire: { method, target: path, headers: list, body: sendBody || r.mutations.length > 0 ? body : undefined }, entry, target };
}

/** Keeps the pool's offsets current, adds uploads the fuzzer created, and drops those gone. */
function learn(r: FuzzRequest, wire: RawRequest, entry: PoolEntry | undefined, target: Target, outcome: RawOutcome) {
  if (outcome.kind !== 'answered') return;
  const offsetHeader = outcome.headers['upload-offset'];
  if (entry && target.kind === 'pool' && (target.suffix === '' || target.suffix === '?x=1')) {
    if (offsetHeader !== undefined && /^\d+$/.test(offsetHeader)) entry.offset = Number(offsetHeader);
    const at = pool.indexOf(entry);
    if ((outcome.status === 404 || outcome.status === 410) && at >= 0) pool.splice(at, 1);
  }
  const location = outcome.headers.location;
  if (outcome.status === 201 && location) {
    const id = location.split('/').pop()!;
    const partial = wire.headers.some(([k, v]) => k === 'Upload-Concat' && v === 'partial');
    if (/^[0-9a-f]{32}$/.test(id) && pool.length < 80) pool.push({ server: r.server, id, offset: Number(offsetHeader ?? 0), partial });
  }
}

const describeRequest = (r: FuzzRequest, wire: RawRequest) =>
  JSON.stringify({ server: r.server, intent: r.intent, method: wire.method, target: wire.target.slice(0, 200), headers: wire.headers, body: wire.body?.byteLength });

// ---------------------------------------------------------------------------------------------
// Setup: pools of real uploads to aim at, and sentinels never aimed at

async function create(server: ServerName, headers: Record<string, string>, body?: Uint8Array<ArrayBuffer>): Promise<string> {
  const res = await fetch(endpoint(server), {
    method: 'POST',
    headers: { ...TUS, ...headers, ...(body ? { 'Content-Type': 'application/offset+octet-stream' } : {}) },
    body,
  });
  if (res.status !== 201) throw new Error(`setup: POST ${res.status} ${await res.text()}`);
  return res.headers.get('Location')!.split('/').pop()!;
}

async function listAll(query: string, tag: string): Promise<string[]> {
  const found: string[] = [];
  let token = '';
  for (let page = 0; page < 100; page++) {
    const res = await raw.fetch(`${s3Server.s3.endpoint}/${s3Server.bucket}?${query}${token}`);
    const xml = await res.text();
    if (!res.ok) throw new Error(`listing ${query}: ${res.status} ${xml}`);
    found.push(...[...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]!));
    const next = xml.match(/<NextContinuationToken>([^<]*)</)?.[1] ?? xml.match(/<NextKeyMarker>([^<]*)</)?.[1];
    if (!/<IsTruncated>true</.test(xml) || !next) break;
    token = query.startsWith('list-type') ? `&continuation-token=${encodeURIComponent(next)}` : `&key-marker=${encodeURIComponent(next)}`;
  }
  return found;
}

/** Everything a sentinel is: what HEAD says, and its bytes in storage. */
async function snapshot(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const s of sentinels) {
    const res = await fetch(`${endpoint(s.server)}${s.id}`, { method: 'HEAD', headers: TUS });
    const head = Object.fromEntries(['upload-offset', 'upload-length', 'upload-metadata', 'upload-expires'].map((h) => [h, res.headers.get(h)]));
    let stored: Record<string, string> = {};
    if (s.server === 'S3') {
      const keys = (await listAll(`list-type=2&prefix=${encodeURIComponent(PREFIX + s.id)}`, 'Key')).sort();
      for (const key of keys) stored[key] = sha256(await (await raw.fetch(`${s3Server.s3.endpoint}/${s3Server.bucket}/${key}`)).arrayBuffer());
    } else {
      stored = { bytes: sha256(await readFile(join(fileServer.dataDir, s.id))) };
    }
    out[`${s.server} ${s.what}`] = { status: res.status, head, stored };
  }
  return out;
}

beforeAll(async () => {
  [s3Server, fileServer] = await Promise.all([startS3Server({ prefix: PREFIX }), startServer()]);
  raw = new AwsClient({ accessKeyId: s3Server.s3.accessKeyId, secretAccessKey: s3Server.s3.secretAccessKey, region: s3Server.s3.region, service: 's3', retries: 0 });
  const rng = seededRng(SEED);
  for (const server of ['S3', 'files'] as const) {
    // Sentinels: one unfinished (a segment in S3), one finished.
    const unfinished = await create(server, { 'Upload-Length': String(300 * KiB), 'Upload-Metadata': 'filename c2VudGluZWw=' }, seededBytes(rng, 100 * KiB + 7));
    const finished = await create(server, { 'Upload-Length': String(50 * KiB) }, seededBytes(rng, 50 * KiB));
    sentinels.push({ server, id: unfinished, what: 'unfinished sentinel' }, { server, id: finished, what: 'finished sentinel' });
    // The pool the fuzzer aims at: plain, deferred, partial (finished and not), finished, empty.
    const plan: [Record<string, string>, number][] = [
      [{ 'Upload-Length': String(200 * KiB) }, 0],
      [{ 'Upload-Length': String(200 * KiB) }, 10 * KiB],
      [{ 'Upload-Length': String(6 * 1024 * KiB) }, 0],
      [{ 'Upload-Defer-Length': '1' }, 3 * KiB],
      [{ 'Upload-Length': String(10 * KiB), 'Upload-Concat': 'partial' }, 10 * KiB],
      [{ 'Upload-Length': String(20 * KiB), 'Upload-Concat': 'partial' }, 5 * KiB],
      [{ 'Upload-Length': '0', 'Upload-Concat': 'partial' }, 0],
      [{ 'Upload-Length': String(KiB) }, KiB],
      [{ 'Upload-Length': '0' }, 0],
      // Near the end of the first 5 MiB part: the fuzzer's PATCHes cross into part 2 and finish.
      [{ 'Upload-Length': String(5 * 1024 * KiB + 100) }, 5 * 1024 * KiB - 3 * KiB],
      [{ 'Upload-Length': String(6 * 1024 * KiB) }, 5 * 1024 * KiB - 20 * KiB],
      [{ 'Upload-Length': String(5 * 1024 * KiB + 30 * KiB), 'Upload-Concat': 'partial' }, 5 * 1024 * KiB - 10 * KiB],
    ];
    for (const [headers, first] of plan) {
      const id = await create(server, headers, first > 0 ? seededBytes(rng, first) : undefined);
      pool.push({ server, id, offset: first, partial: headers['Upload-Concat'] === 'partial' });
    }
  }
  before = await snapshot();
}, 60_000);

afterAll(async () => {
  await Promise.all([s3Server?.stop(), fileServer?.stop()]);
});

// ---------------------------------------------------------------------------------------------

test(`fuzz: ${RUNS} cases — no 5xx, no hang, sentinels untouched, no S3 key outside ${PREFIX}`, async () => {
  const started = Date.now();
  const statuses: Record<string, number> = {};
  const byIntent: Record<string, number> = {};
  let requests = 0;
  let slowest = 0;
  const property = fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 3 }), async (batch) => {
    const built = batch.map(build);
    const outcomes = await Promise.all(built.map(({ wire }, i) => rawRequest('127.0.0.1', Number(new URL(origin(batch[i]!.server)).port), wire, TIMEOUT_MS)));
    for (const [i, outcome] of outcomes.entries()) {
      const r = batch[i]!;
      const { wire, entry, target } = built[i]!;
      requests++;
      learn(r, wire, entry, target, outcome);
      const key = outcome.kind === 'answered' ? String(outcome.status) : outcome.kind;
      statuses[key] = (statuses[key] ?? 0) + 1;
      const kind = `${r.intent}${r.mutations.length ? '*' : ''} ${key}`;
      byIntent[kind] = (byIntent[kind] ?? 0) + 1;
      if (outcome.kind === 'answered') slowest = Math.max(slowest, outcome.ms);
      const what = () =>
        `${describeRequest(r, wire)} → ${JSON.stringify(outcome.kind === 'answered' ? { ...outcome, body: new TextDecoder().decode(outcome.body.slice(0, 300)) } : outcome)}`;
      if (outcome.kind === 'timeout') throw new Error(`no ${outcome.stage === 'head' ? 'answer' : 'end of the answer'} within ${TIMEOUT_MS} ms: ${what()}`);
      if (outcome.kind === 'closed') throw new Error(`connection closed without an answer: ${what()}`);
      if (outcome.status >= 500) throw new Error(`a ${outcome.status}: ${what()}`);
    }
  });
  const details = await fc.check(property, { numRuns: RUNS, seed: SEED, endOnFailure: true });
  console.log(
    `fuzz: seed ${SEED}, ${details.numRuns} cases, ${requests} requests in ${Date.now() - started} ms (slowest answer ${slowest} ms), pool ${pool.length}: ${JSON.stringify(statuses)}`,
  );
  if (process.env.FUZZ_VERBOSE)
    console.log(
      Object.entries(byIntent)
        .sort()
        .map(([k, n]) => `${k}: ${n}`)
        .join('\n'),
    );
  if (details.failed) {
    throw new Error(
      `fuzz failed (FUZZ_SEED=${SEED}, path ${details.counterexamplePath}): ${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}`,
    );
  }

  // Every upload of the pool that says it is finished serves exactly Upload-Length bytes (and, in
  // S3, its object has that size).
  const inconsistent: string[] = [];
  for (const p of pool) {
    const head = await fetch(`${endpoint(p.server)}${p.id}`, { method: 'HEAD', headers: TUS });
    const length = head.headers.get('Upload-Length');
    if (head.status !== 200 || length === null || head.headers.get('Upload-Offset') !== length) continue;
    const get = await fetch(`${endpoint(p.server)}${p.id}`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    const served = get.status === 200 ? (await get.arrayBuffer()).byteLength : -get.status;
    const stored = p.server === 'S3' ? (await s3Server.object(`${PREFIX}${p.id}`))?.byteLength : served;
    if (served !== Number(length) || stored !== Number(length)) inconsistent.push(`${p.server} ${p.id}: Upload-Length ${length}, served ${served}, stored ${stored}`);
  }
  expect(inconsistent).toEqual([]);

  // The sentinels: exactly as they were.
  expect(await snapshot()).toEqual(before);

  // Every key and every multipart upload in the bucket is under the prefix, in a shape the server makes.
  const keys = await listAll('list-type=2', 'Key');
  const multipart = await listAll('uploads', 'Key');
  const shape = new RegExp(`^${PREFIX}[0-9a-f]{32}(\\.info|\\.part/\\d+)?$`);
  expect({ outside: keys.filter((k) => !shape.test(k)), multipartOutside: multipart.filter((k) => !shape.test(k)) }).toEqual({ outside: [], multipartOutside: [] });
  expect(keys.length).toBeGreaterThan(10);
}, 120_000);
