import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createUpload, randomBytes, sha256, slowBody, TUS } from '../support/server.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { tusUpload } from '../support/tus-client.ts';
import { MemoryStateStore } from '../../src/state/memory.ts';
import { sendPartialThenDrop } from '../support/raw.ts';
import { rawRequest, type RawOutcome } from '../support/raw-http.ts';
import { createHash } from 'node:crypto';
import { maxSegments } from '../../src/storage/s3/segments.ts';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

let server: S3TestServer;
let state: MemoryStateStore;
beforeAll(async () => {
  state = new MemoryStateStore();
  server = await startS3Server({ partSize: PART, state });
}, 120_000);
afterAll(() => server?.stop());

const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);

async function expectStored(url: string, bytes: Uint8Array) {
  const stored = await server.object(idOf(url));
  expect(stored?.byteLength).toBe(bytes.byteLength);
  expect(sha256(stored!)).toBe(sha256(bytes));
  // The segments are gone once the upload is complete; the info object stays for recovery.
  expect((await server.keys()).filter((k) => k.startsWith(idOf(url)))).toEqual([idOf(url), `${idOf(url)}.info`]);
}

/** The upload's segment objects as [offset, size], read from the bucket. */
async function segments(id: string): Promise<[number, number][]> {
  const out: [number, number][] = [];
  for await (const o of server.client.listObjects(`${id}.part/`)) out.push([Number(o.key.split('/').pop()), o.size]);
  return out.sort((a, b) => a[0] - b[0]);
}

async function headOffset(url: string): Promise<number> {
  const res = await fetch(url, { method: 'HEAD', headers: TUS });
  expect(res.status).toBe(200);
  return Number(res.headers.get('Upload-Offset'));
}

describe('tus-js-client into radosgw, compared by SHA-256 of the stored object', () => {
  const cases: [number, number][] = [
    [0, Infinity],
    [1, Infinity],
    [PART - 1, MiB],
    [PART - 1, Infinity],
    [PART, MiB],
    [PART, Infinity],
    [PART + 1, MiB],
    [PART + 1, Infinity],
    [3 * PART + 7, 256 * 1024],
    [3 * PART + 7, MiB],
    [3 * PART + 7, 5 * MiB],
    [3 * PART + 7, PART + 3],
    [3 * PART + 7, Infinity],
  ];
  for (const [size, chunkSize] of cases) {
    test(`${size} B in PATCHes of ${chunkSize}`, async () => {
      const bytes = randomBytes(size);
      const { url } = await tusUpload(server.endpoint, bytes, { chunkSize, metadata: { filename: 'a b.txt', filetype: 'text/plain' } });
      await expectStored(url, bytes);
      expect(await headOffset(url)).toBe(size);
      const res = await fetch(url);
      expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(sha256(bytes));
    });
  }

  test('200 MiB in 1 MiB PATCHes and in one PATCH', async () => {
    const bytes = randomBytes(200 * MiB);
    for (const chunkSize of [MiB, Infinity]) {
      const { url } = await tusUpload(server.endpoint, bytes, { chunkSize });
      await expectStored(url, bytes);
      await fetch(url, { method: 'DELETE', headers: TUS });
    }
  }, 180_000);
});

test('buffered parts (runtimes whose fetch cannot stream a fixed-length body) land byte-identical too', async () => {
  const buffered = await startS3Server({ partSize: PART, streamParts: false, bucket: server.bucket });
  try {
    for (const [size, chunkSize] of [
      [3 * PART + 7, MiB],
      [3 * PART + 7, Infinity],
      [PART, PART],
    ] as const) {
      const bytes = randomBytes(size);
      const { url } = await tusUpload(buffered.endpoint, bytes, { chunkSize });
      expect(sha256((await buffered.object(idOf(url)))!)).toBe(sha256(bytes));
    }
  } finally {
    await buffered.stop();
  }
});

test('a buffer budget of two parts: eight uploads at once wait their turn and all land byte-identical', async () => {
  const tight = await startS3Server({ partSize: PART, bufferMemory: 2 * PART, bucket: server.bucket });
  try {
    const files = Array.from({ length: 8 }, (_, i) => randomBytes(2 * PART + i * 333_333 + 1));
    const urls = await Promise.all(files.map((bytes, i) => tusUpload(tight.endpoint, bytes, { chunkSize: i % 2 ? 3 * MiB : Infinity })));
    for (const [i, { url }] of urls.entries()) expect(sha256((await tight.object(idOf(url)))!)).toBe(sha256(files[i]!));
    // The waits show in /metrics; the buffers never passed the budget.
    const metrics = await (await fetch(`${tight.origin}/metrics`)).text();
    expect(Number(metrics.match(/^tusflow_part_buffer_wait_seconds_count (\d+)$/m)?.[1])).toBeGreaterThan(0);
    expect(Number(metrics.match(/^tusflow_part_buffer_bytes (\d+)$/m)?.[1])).toBeLessThanOrEqual(2 * PART);
  } finally {
    await tight.stop();
  }
}, 60_000);

test('a PATCH that waits too long for memory (a client holds the whole budget with a part it trickles) gets a 503, and its retry succeeds', async () => {
  const tight = await startS3Server({ partSize: PART, bufferMemory: PART, bufferWaitMs: 300, bucket: server.bucket });
  try {
    // All but one byte of a part at once, the rest 400 ms later: meanwhile the part holds the whole budget.
    const slow = randomBytes(PART + MiB);
    const slowUrl = await createUpload(tight.endpoint, { 'Upload-Length': String(slow.length) });
    const holding = fetch(slowUrl, {
      method: 'PATCH',
      headers: { ...PATCH, 'Upload-Offset': '0', 'Content-Length': String(slow.length) },
      body: slowBody(slow, 400, PART - 1),
      duplex: 'half',
    } as RequestInit);
    await Bun.sleep(100);
    const bytes = randomBytes(MiB);
    const url = await createUpload(tight.endpoint, { 'Upload-Length': String(bytes.length) });
    const started = performance.now();
    const busy = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes });
    expect({ status: busy.status, reason: (await busy.text()).trim(), fast: performance.now() - started < 5_000 }).toEqual({
      status: 503,
      reason: 'the server has no memory free for more uploads right now; try again shortly',
      fast: true,
    });
    expect((await holding).status).toBe(204);
    expect((await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes })).status).toBe(204);
    expect(sha256((await tight.object(idOf(url)))!)).toBe(sha256(bytes));
    expect(sha256((await tight.object(idOf(slowUrl)))!)).toBe(sha256(slow));
  } finally {
    await tight.stop();
  }
}, 30_000);

describe('clients that send a few bytes and stall', () => {
  /** A PATCH over a raw socket that announces `length` bytes, sends `bytes` and then nothing more. */
  const stall = (url: string, headers: Record<string, string>, bytes: Uint8Array, length: number, timeoutMs: number) => {
    const { hostname, port, pathname } = new URL(url);
    return rawRequest(hostname, Number(port), { method: 'PATCH', target: pathname, headers: Object.entries(headers), body: bytes, contentLength: length }, timeoutMs);
  };
  const answer = (o: RawOutcome) => (o.kind === 'answered' ? { status: o.status, offset: o.headers['upload-offset'] } : { kind: o.kind });

  test('30 PATCHes that send 10 bytes and stall hold no part buffers: a 1 MiB and a 12 MiB upload go through at once', async () => {
    const own = await startS3Server({ partSize: PART, bucket: server.bucket }); // the default budget, 128 MiB: 25 parts
    try {
      const stalled: Promise<RawOutcome>[] = [];
      for (let i = 0; i < 30; i++) {
        const url = await createUpload(own.endpoint, { 'Upload-Length': String(12 * MiB) });
        stalled.push(stall(url, { ...PATCH, 'Upload-Offset': '0' }, randomBytes(10), 12 * MiB, 30_000));
      }
      await Bun.sleep(300); // each of them is reading its body by now
      for (const size of [MiB, 12 * MiB]) {
        const bytes = randomBytes(size);
        const started = performance.now();
        const { url } = await tusUpload(own.endpoint, bytes);
        expect({ size, fast: performance.now() - started < 5_000 }).toEqual({ size, fast: true });
        expect(sha256((await own.object(idOf(url)))!)).toBe(sha256(bytes));
      }
      // Shutting down cuts them: each keeps its 10 bytes.
      await own.tusflow.shutdown(5_000);
      expect((await Promise.all(stalled)).map(answer)).toEqual(Array(30).fill({ status: 204, offset: '10' }));
    } finally {
      await own.stop();
    }
  }, 60_000);

  test('a body that brings nothing for the idle time is cut and answered: the bytes that arrived are kept, none with a checksum', async () => {
    const own = await startS3Server({ partSize: PART, bucket: server.bucket, bodyIdleTimeoutSeconds: 1 });
    try {
      const bytes = randomBytes(MiB);
      const plain = await createUpload(own.endpoint, { 'Upload-Length': String(bytes.length) });
      const checked = await createUpload(own.endpoint, { 'Upload-Length': String(bytes.length) });
      const checksum = `sha1 ${createHash('sha1').update(bytes).digest('base64')}`;
      const started = performance.now();
      const outcomes = await Promise.all([
        stall(plain, { ...PATCH, 'Upload-Offset': '0' }, bytes.subarray(0, 10), bytes.length, 10_000),
        stall(checked, { ...PATCH, 'Upload-Offset': '0', 'Upload-Checksum': checksum }, bytes.subarray(0, 10), bytes.length, 10_000),
      ]);
      const ms = performance.now() - started;
      expect(outcomes.map(answer)).toEqual([
        { status: 204, offset: '10' },
        { status: 400, offset: undefined },
      ]);
      expect(ms > 900 && ms < 5_000).toBe(true);
      expect([await headOffset(plain), await headOffset(checked)]).toEqual([10, 0]);
      // Both go on from there.
      const rest = await fetch(plain, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '10' }, body: bytes.subarray(10) });
      const again = await fetch(checked, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0', 'Upload-Checksum': checksum }, body: bytes });
      expect([rest.status, again.status]).toEqual([204, 204]);
      expect(sha256((await own.object(idOf(plain)))!)).toBe(sha256(bytes));
      expect(sha256((await own.object(idOf(checked)))!)).toBe(sha256(bytes));
    } finally {
      await own.stop();
    }
  }, 30_000);

  test('a PATCH waiting for memory leaves the line when its client goes away or its upload is taken over; the retries and later uploads are served', async () => {
    // One part's budget, and a lock timeout shorter than the holder holds it: a wait that went on
    // would keep the retries out with 423.
    const tight = await startS3Server({ partSize: PART, bufferMemory: PART, lockTimeoutMs: 1_000, bucket: server.bucket });
    try {
      // The holder fills the whole budget with a part it does not finish, until told to.
      const held = randomBytes(PART - 1);
      const holderUrl = await createUpload(tight.endpoint, { 'Upload-Length': String(2 * PART) });
      let finish!: () => void;
      const holder = fetch(holderUrl, {
        method: 'PATCH',
        headers: { ...PATCH, 'Upload-Offset': '0' },
        body: new ReadableStream<Uint8Array>({
          async start(c) {
            c.enqueue(held);
            await new Promise<void>((resolve) => (finish = resolve));
            c.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      await Bun.sleep(300);

      const bytes = randomBytes(MiB);
      const create = () => createUpload(tight.endpoint, { 'Upload-Length': String(MiB) });
      const [gone, silent, later] = [await create(), await create(), await create()];
      // A client that goes away while its PATCH waits for memory...
      const leaving = new AbortController();
      const first = fetch(gone, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes, signal: leaving.signal }).catch(() => 'aborted');
      // ...and one whose connection is still open but silent (a dead network), whose retry takes over.
      const stuck = stall(silent, { ...PATCH, 'Upload-Offset': '0' }, bytes.subarray(0, 10), MiB, 15_000);
      await Bun.sleep(300);
      // The one whose client left stops waiting by itself: its PATCH ends (kept nothing) with no retry yet.
      const patchesAnswered = async () => {
        const text = await (await fetch(`${tight.origin}/metrics`)).text();
        return Number(text.match(/^tusflow_requests_total\{method="PATCH",status="204"\} (\d+)$/m)?.[1] ?? 0);
      };
      const before = await patchesAnswered();
      leaving.abort();
      for (let tries = 0; tries < 40 && (await patchesAnswered()) === before; tries++) await Bun.sleep(50);
      expect(await patchesAnswered()).toBe(before + 1);
      expect(await headOffset(gone)).toBe(0);

      const patch = (url: string) => fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes });
      const retries = [patch(gone), patch(silent), patch(later)];
      // The silent one was stopped by its retry's takeover, and kept nothing (no byte had a slab).
      expect(answer(await stuck)).toEqual({ status: 204, offset: '0' });
      expect(await first).toBe('aborted');
      await Bun.sleep(1_500); // past the lock timeout, the holder still holding
      finish();
      expect((await holder).status).toBe(204);
      expect((await Promise.all(retries)).map((r) => r.status)).toEqual([204, 204, 204]);
      for (const url of [gone, silent, later]) expect(sha256((await tight.object(idOf(url)))!)).toBe(sha256(bytes));
      expect(await headOffset(holderUrl)).toBe(PART - 1);
    } finally {
      await tight.stop();
    }
  }, 30_000);
});

test('the finished object carries Content-Type and Content-Disposition from the metadata', async () => {
  const bytes = randomBytes(1000);
  const { url } = await tusUpload(server.endpoint, bytes, { metadata: { filename: 'photo.png', filetype: 'image/png' } });
  const head = await server.client.headObject(idOf(url));
  expect(head?.headers.get('Content-Type')).toBe('image/png');
  expect(head?.headers.get('Content-Disposition')).toContain('photo.png');
});

test('the object is an attachment as the download is, for a PDF or SVG served from S3 directly', async () => {
  for (const [filetype, filename] of [
    ['application/pdf', 'r.pdf'],
    ['image/svg+xml', 'i.svg'],
  ] as const) {
    const { url } = await tusUpload(server.endpoint, randomBytes(10), { metadata: { filename, filetype } });
    const head = await server.client.headObject(idOf(url));
    const download = await fetch(url);
    await download.arrayBuffer();
    expect(head?.headers.get('Content-Type')).toBe(filetype);
    expect(head?.headers.get('Content-Disposition')).toStartWith(`attachment; filename="${filename}"`);
    expect(head?.headers.get('Content-Disposition')).toBe(download.headers.get('Content-Disposition'));
  }
});

test('abort and resume with a new client', async () => {
  const bytes = randomBytes(4 * PART + 11);
  const first = await tusUpload(server.endpoint, bytes, { chunkSize: 3 * MiB, abortWhen: (n) => n >= 7 * MiB });
  expect(first.aborted).toBe(true);
  const offset = await headOffset(first.url);
  expect(offset % (3 * MiB)).toBe(0);
  await tusUpload(server.endpoint, bytes, { chunkSize: 2 * MiB + 1, uploadUrl: first.url });
  await expectStored(first.url, bytes);
});

test('a tail smaller than a part waits in the incomplete-part object and joins the next PATCH', async () => {
  const bytes = randomBytes(PART + 100);
  const url = await createUpload(server.endpoint, { 'Upload-Length': String(bytes.length) });
  const id = idOf(url);
  let res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes.subarray(0, MiB) });
  expect(res.status).toBe(204);
  expect(await segments(id)).toEqual([[0, MiB]]);
  res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(MiB) }, body: bytes.subarray(MiB, PART + 10) });
  expect(res.headers.get('Upload-Offset')).toBe(String(PART + 10));
  // Part 1 is full now, 10 bytes wait for the next request. The segment part 1 absorbed goes only
  // when a later request shows this offset was saved.
  const parts = await server.client.listParts(id, (await state.get(id))!.store!.uploadId!);
  expect(parts.map((p) => [p.partNumber, p.size])).toEqual([[1, PART]]);
  expect(await segments(id)).toEqual([
    [0, MiB],
    [PART, 10],
  ]);
  res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(PART + 10) }, body: bytes.subarray(PART + 10) });
  expect(res.status).toBe(204);
  await expectStored(url, bytes);
});

test('small PATCHes on one instance: each byte is written once as a segment, never read back', async () => {
  const bytes = randomBytes(2 * PART + 3);
  const before = new Map(server.client.requests);
  const count = (op: string) => (server.client.requests.get(op) ?? 0) - (before.get(op) ?? 0);
  const { url } = await tusUpload(server.endpoint, bytes, { chunkSize: MiB });
  await expectStored(url, bytes);
  expect(count('GetObject')).toBe(0);
  expect(count('UploadPart')).toBe(3);
  // The info object, and a segment per PATCH but the two that end on a part boundary and the last.
  expect(count('PutObject')).toBe(1 + 8);
});

test('a second instance (no cached tail) continues from the segments in S3', async () => {
  const other = await startS3Server({ partSize: PART, state, bucket: server.bucket });
  try {
    const bytes = randomBytes(2 * PART + MiB);
    const first = await tusUpload(server.endpoint, bytes, { chunkSize: 3 * MiB, abortWhen: (n) => n >= 9 * MiB });
    expect(await headOffset(first.url)).toBe(9 * MiB);
    // Part 1 is in; 4 MiB wait as segments. The other instance reads them back and consolidates.
    const otherUrl = first.url.replace(server.endpoint, other.endpoint);
    const res = await fetch(otherUrl, {
      method: 'PATCH',
      headers: { ...PATCH, 'Upload-Offset': String(9 * MiB) },
      body: bytes.subarray(9 * MiB, 9 * MiB + MiB / 2),
    });
    expect(res.headers.get('Upload-Offset')).toBe(String(9 * MiB + MiB / 2));
    expect(await segments(idOf(first.url))).toContainEqual([PART, 9 * MiB + MiB / 2 - PART]);
    // And back on the first instance, whose cached tail is stale by now.
    await tusUpload(server.endpoint, bytes, { chunkSize: 3 * MiB, uploadUrl: first.url });
    await expectStored(first.url, bytes);
  } finally {
    await other.stop();
  }
});

test('300 one-byte PATCHes leave a few segments: a fresh instance (no cached tail) reads them back for the next PATCH in well under a second', async () => {
  const bytes = randomBytes(400);
  const url = await createUpload(server.endpoint, { 'Upload-Length': String(bytes.length) });
  const id = idOf(url);
  for (let at = 0; at < 300; at++) {
    const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(at) }, body: bytes.subarray(at, at + 1) });
    expect(res.status).toBe(204);
  }
  const left = await segments(id);
  expect(left.length).toBeLessThanOrEqual(maxSegments);
  const other = await startS3Server({ partSize: PART, state, bucket: server.bucket });
  try {
    const otherUrl = url.replace(server.endpoint, other.endpoint);
    const started = performance.now();
    const res = await fetch(otherUrl, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '300' }, body: bytes.subarray(300, 301) });
    const took = performance.now() - started;
    expect(res.headers.get('Upload-Offset')).toBe('301');
    // The part is read back one GET per segment left, not one per PATCH.
    expect(other.client.requests.get('GetObject') ?? 0).toBeLessThanOrEqual(maxSegments);
    console.log(`segments after 300 one-byte PATCHes: ${left.length}; next PATCH on a fresh instance: ${took.toFixed(0)} ms`);
    expect(took).toBeLessThan(1000);
    expect((await segments(id)).length).toBeLessThanOrEqual(maxSegments);
    for (let at = 301; at < bytes.length; at += 37) {
      const r = await fetch(otherUrl, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(at) }, body: bytes.subarray(at, at + 37) });
      expect(r.status).toBe(204);
    }
    await expectStored(url, bytes);
  } finally {
    await other.stop();
  }
});

test('a checksum failure leaves the offset and the incomplete part as they were; the retry wins', async () => {
  const bytes = randomBytes(2 * PART + 5);
  const url = await createUpload(server.endpoint, { 'Upload-Length': String(bytes.length) });
  const first = bytes.subarray(0, MiB);
  await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: first });
  const rest = bytes.subarray(MiB);
  const good = new Bun.CryptoHasher('sha256').update(rest).digest('base64');
  const wrong = new Bun.CryptoHasher('sha256').update(first).digest('base64');
  let res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(MiB), 'Upload-Checksum': `sha256 ${wrong}` }, body: rest });
  expect(res.status).toBe(460);
  expect(await headOffset(url)).toBe(MiB);
  expect(await segments(idOf(url))).toEqual([[0, MiB]]);
  res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(MiB), 'Upload-Checksum': `sha256 ${good}` }, body: rest });
  expect(res.status).toBe(204);
  await expectStored(url, bytes);
});

test('parts of a PATCH that was cut before its checksum could be checked, or whose checksum failed, never count when the record is rebuilt from S3', async () => {
  const bytes = randomBytes(3 * PART + 5);
  const url = await createUpload(server.endpoint, { 'Upload-Length': String(bytes.length) });
  const id = idOf(url);
  const head = bytes.subarray(0, MiB);
  expect((await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: head })).status).toBe(204);
  const uploadId = (await state.get(id))!.store!.uploadId!;
  const partSizes = async () => (await server.client.listParts(id, uploadId)).map((p) => [p.partNumber, p.size]);
  const rest = bytes.subarray(MiB);
  const digest = (b: Uint8Array) => new Bun.CryptoHasher('sha256').update(b).digest('base64');

  // Cut after two whole parts reached S3: the first then holds 1 byte, where a rebuild stops.
  await sendPartialThenDrop(
    url,
    { ...PATCH, 'Upload-Offset': String(MiB), 'Upload-Checksum': `sha256 ${digest(rest)}`, 'Content-Length': String(rest.length) },
    rest.subarray(0, 2 * PART + MiB),
  );
  await Bun.sleep(500);
  expect(await headOffset(url)).toBe(MiB);
  expect(await partSizes()).toEqual([
    [1, 1],
    [2, PART],
  ]);
  await state.delete(id);
  expect(await headOffset(url)).toBe(MiB);

  // A wrong checksum, known once three whole parts are in S3.
  const bad = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(MiB), 'Upload-Checksum': `sha256 ${digest(head)}` }, body: rest });
  expect(bad.status).toBe(460);
  expect(await partSizes()).toEqual([
    [1, 1],
    [2, PART],
    [3, PART],
  ]);
  await state.delete(id);
  expect(await headOffset(url)).toBe(MiB);

  const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(MiB), 'Upload-Checksum': `sha256 ${digest(rest)}` }, body: rest });
  expect(res.status).toBe(204);
  await expectStored(url, bytes);
});

test('a PATCH that fails after some of its parts reached S3 leaves none that a rebuild would count but those it reported durable', async () => {
  // With Upload-Checksum nothing of the PATCH counts before verify; without, part 1 counted as soon
  // as it was stored (the offset may already have been recorded), so the distrust starts at part 2.
  for (const withChecksum of [true, false]) {
    let refuse = true;
    const failing = await startS3Server({
      partSize: PART,
      bucket: server.bucket,
      state: new MemoryStateStore(),
      // S3 refuses the second part of the PATCH below, once, with an error that is not retried.
      fetch: async (input, init) => {
        const url = new URL(String(input));
        if (refuse && url.searchParams.get('partNumber') === '2' && init?.method === 'PUT') {
          refuse = false;
          await new Response(init.body as BodyInit).arrayBuffer().catch(() => {});
          return new Response('<Error><Code>AccessDenied</Code><Message>no</Message></Error>', { status: 403 });
        }
        return fetch(input, init);
      },
    });
    try {
      const bytes = randomBytes(3 * PART + 5);
      const digest = new Bun.CryptoHasher('sha256').update(bytes).digest('base64');
      const checksum: Record<string, string> = withChecksum ? { 'Upload-Checksum': `sha256 ${digest}` } : {};
      const url = await createUpload(failing.endpoint, { 'Upload-Length': String(bytes.length) });
      const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, ...checksum, 'Upload-Offset': '0' }, body: bytes });
      expect(res.status).toBe(503);
      const id = idOf(url);
      const uploadId = (await failing.store.recover(id))!.store!.uploadId!;
      const parts = (await failing.client.listParts(id, uploadId)).map((p) => [p.partNumber, p.size]);
      const kept = withChecksum ? 0 : PART;
      // The first part not counted went in (or was refused), and was then overwritten with 1 byte.
      expect(parts).toContainEqual([kept / PART + 1, 1]);
      expect((await failing.store.recover(id))!.offset).toBe(kept);
      const head = await fetch(url, { method: 'HEAD', headers: TUS });
      const offset = Number(head.headers.get('Upload-Offset'));
      expect(offset).toBeLessThanOrEqual(kept);
      const retry = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(offset) }, body: bytes.subarray(offset) });
      expect(retry.status).toBe(204);
      expect(sha256((await failing.object(id))!)).toBe(sha256(bytes));
    } finally {
      await failing.stop();
    }
  }
});

test('a deferred length declared by a last, empty PATCH completes with the waiting tail', async () => {
  const bytes = randomBytes(PART + 3 * MiB);
  const url = await createUpload(server.endpoint, { 'Upload-Defer-Length': '1' });
  let res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes });
  expect(res.status).toBe(204);
  res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(bytes.length), 'Upload-Length': String(bytes.length) } });
  expect(res.status).toBe(204);
  await expectStored(url, bytes);
});

test('the state store wiped mid-upload: HEAD still reports the right offset from S3, the upload completes', async () => {
  const bytes = randomBytes(2 * PART + 3 * MiB + 9);
  const first = await tusUpload(server.endpoint, bytes, { chunkSize: 3 * MiB, abortWhen: (n) => n >= 9 * MiB });
  const before = await headOffset(first.url);
  expect(before).toBe(9 * MiB);
  await state.delete(idOf(first.url));
  expect(await headOffset(first.url)).toBe(before);
  await tusUpload(server.endpoint, bytes, { chunkSize: 4 * MiB, uploadUrl: first.url });
  await expectStored(first.url, bytes);
  // And after completion: a lost record is rebuilt as finished from the object itself.
  await state.delete(idOf(first.url));
  expect(await headOffset(first.url)).toBe(bytes.length);
  expect(sha256(new Uint8Array(await (await fetch(first.url)).arrayBuffer()))).toBe(sha256(bytes));
});

test('the last PATCH completed the upload but its offset was never saved (a crash in between): the retry is answered as that completion', async () => {
  const bytes = randomBytes(PART + 2 * MiB + 5);
  const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length) } });
  const url = new URL(created.headers.get('Location')!, server.endpoint).href;
  // Part 1, then 2 MiB kept as a segment: the retry below starts inside a part.
  for (const [from, to] of [
    [0, PART],
    [PART, PART + 2 * MiB],
  ]) {
    const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(from) }, body: bytes.subarray(from, to) });
    expect(res.status).toBe(204);
  }
  const update = state.update.bind(state);
  state.update = async (id, changed) => {
    if (changed.finishedAt === undefined) return update(id, changed);
    state.update = update;
    throw new Error('the process died before the offset was saved');
  };
  const rest = { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(PART + 2 * MiB) }, body: bytes.subarray(PART + 2 * MiB) };
  expect((await fetch(url, rest)).status).toBe(503);
  // The object is complete and the segments are gone, while the record still says PART + 2 MiB.
  expect(await headOffset(url)).toBe(PART + 2 * MiB);
  expect(await segments(idOf(url))).toEqual([]);
  const retry = await fetch(url, rest);
  expect({ status: retry.status, offset: retry.headers.get('Upload-Offset') }).toEqual({ status: 204, offset: String(bytes.length) });
  expect(await headOffset(url)).toBe(bytes.length);
  await expectStored(url, bytes);
});

test('DELETE aborts the multipart upload and removes every object the upload made', async () => {
  const bytes = randomBytes(PART + MiB);
  const first = await tusUpload(server.endpoint, bytes, { chunkSize: 3 * MiB, abortWhen: (n) => n >= 3 * MiB });
  const id = idOf(first.url);
  expect((await server.keys()).filter((k) => k.startsWith(id)).sort()).toEqual([`${id}.info`, `${id}.part/0`]);
  const res = await fetch(first.url, { method: 'DELETE', headers: TUS });
  expect(res.status).toBe(204);
  expect((await server.keys()).filter((k) => k.startsWith(id))).toEqual([]);
  const uploads: string[] = [];
  for await (const u of server.client.listMultipartUploads(id)) uploads.push(u.key);
  expect(uploads).toEqual([]);
  expect((await fetch(first.url, { method: 'HEAD', headers: TUS })).status).toBe(404);
});

test('expired uploads are aborted in S3 and their objects removed by the cleanup', async () => {
  const short = await startS3Server({ partSize: PART, uploadTtlSeconds: 1, bucket: server.bucket, prefix: 'expiry/' });
  try {
    const bytes = randomBytes(PART + MiB);
    const first = await tusUpload(short.endpoint, bytes, { chunkSize: 3 * MiB, abortWhen: (n) => n >= 3 * MiB });
    const id = idOf(first.url);
    await Bun.sleep(1100);
    expect((await fetch(first.url, { method: 'HEAD', headers: TUS })).status).toBe(410);
    expect(await short.tusflow.engine.cleanup()).toBe(1);
    expect((await short.keys()).filter((k) => k.includes(id))).toEqual([]);
    expect((await fetch(first.url, { method: 'HEAD', headers: TUS })).status).toBe(404);
  } finally {
    await short.stop();
  }
});

test('orphans (uploads whose state was lost and that were never touched again) are aborted and removed by the cleanup', async () => {
  const orphans = new MemoryStateStore();
  const short = await startS3Server({ partSize: PART, uploadTtlSeconds: 1, bucket: server.bucket, state: orphans, prefix: 'orphans/' });
  try {
    const bytes = randomBytes(PART + MiB);
    const first = await tusUpload(short.endpoint, bytes, { chunkSize: 3 * MiB, abortWhen: (n) => n >= 3 * MiB });
    const id = idOf(first.url);
    await orphans.delete(id); // the record is gone; S3 still holds a multipart upload and a segment
    await Bun.sleep(1100);
    expect(await short.tusflow.engine.cleanup()).toBe(1);
    expect((await short.keys()).filter((k) => k.includes(id))).toEqual([]);
    const left: string[] = [];
    for await (const u of short.client.listMultipartUploads(`orphans/${id}`)) left.push(u.uploadId);
    expect(left).toEqual([]);
  } finally {
    await short.stop();
  }
});

test('a key prefix is applied to every object', async () => {
  const prefixed = await startS3Server({ partSize: PART, prefix: 'uploads/2026/', bucket: server.bucket });
  try {
    const bytes = randomBytes(PART + 1);
    const { url } = await tusUpload(prefixed.endpoint, bytes, { chunkSize: 2 * MiB });
    expect(sha256((await prefixed.object(`uploads/2026/${idOf(url)}`))!)).toBe(sha256(bytes));
  } finally {
    await prefixed.stop();
  }
});

describe('concatenation in S3', () => {
  const counts = () => {
    const before = new Map(server.client.requests);
    return (op: string) => (server.client.requests.get(op) ?? 0) - (before.get(op) ?? 0);
  };

  test('tus-js-client parallelUploads 2 and 4 of 64 MiB: partials copied inside S3, byte-identical', async () => {
    const bytes = randomBytes(64 * MiB);
    for (const parallelUploads of [2, 4]) {
      const { url } = await tusUpload(server.endpoint, bytes, { parallelUploads, metadata: { filename: 'big.bin', filetype: 'application/zip' } });
      const count = counts();
      // HEAD after the final's creation: the object is complete and readable.
      expect(await headOffset(url)).toBe(bytes.length);
      expect(count('GetObject')).toBe(0);
      await expectStored(url, bytes);
      const res = await fetch(url);
      expect(res.headers.get('Content-Type')).toBe('application/zip');
      expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(sha256(bytes));
    }
  }, 120_000);

  test('no byte passes through the server when every partial is at least 5 MiB', async () => {
    const parts = [randomBytes(PART), randomBytes(PART + 99)];
    const urls = [];
    for (const p of parts) {
      const url = await createUpload(server.endpoint, { 'Upload-Concat': 'partial', 'Upload-Length': String(p.length) });
      await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: p });
      urls.push(url);
    }
    const count = counts();
    const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${urls.join(' ')}` } });
    expect(res.status).toBe(201);
    expect([count('UploadPartCopy'), count('UploadPart'), count('GetObject')]).toEqual([2, 0, 0]);
    await expectStored(res.headers.get('Location')!, new Uint8Array([...parts[0]!, ...parts[1]!]));
  });

  test('partials below 5 MiB are joined through the server into valid parts', async () => {
    const parts = [randomBytes(MiB), randomBytes(3 * MiB), randomBytes(7 * MiB), randomBytes(10), randomBytes(2 * MiB)];
    const urls = [];
    for (const p of parts) {
      const url = await createUpload(server.endpoint, { 'Upload-Concat': 'partial', 'Upload-Length': String(p.length) });
      await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: p });
      urls.push(url);
    }
    const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${urls.join(' ')}` } });
    expect(res.status).toBe(201);
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
    await expectStored(res.headers.get('Location')!, all);
  });

  test('a final whose state record is lost is rebuilt from S3 as finished', async () => {
    const p = randomBytes(MiB);
    const a = await createUpload(server.endpoint, { 'Upload-Concat': 'partial', 'Upload-Length': String(p.length) });
    await fetch(a, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: p });
    const url = (await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${a}` } })).headers.get('Location')!;
    await state.delete(idOf(url));
    expect(await headOffset(url)).toBe(MiB);
  });
});
