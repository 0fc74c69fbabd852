import { describe, expect, test } from 'bun:test';
import { planConcat, type PlannedPart } from '../../src/storage/s3/concat.ts';
import { MAX_OBJECT_SIZE, MAX_PARTS, MiB, partSizeFor, sendParts } from '../../src/storage/s3/parts.ts';
import { blocks, decodeXml, text } from '../../src/storage/s3/xml.ts';
import { TusError } from '../../src/model/errors.ts';
import { statusOf } from '../../src/protocol/errors.ts';
import { TailCache } from '../../src/storage/s3/tail-cache.ts';
import { maxSegments, planSegments, segmentKey, segmentStart, type WriteEnd } from '../../src/storage/s3/segments.ts';
import { seededRng } from '../support/rng.ts';
import { S3Client, type Fetch } from '../../src/storage/s3/client.ts';
import { PartBuffers } from '../../src/storage/s3/buffers.ts';
import { sha256 } from '../support/server.ts';

test('part size: the preferred size while it fits 10,000 parts, grown in whole MiB beyond', () => {
  expect(partSizeFor(undefined, 5 * MiB)).toBe(5 * MiB);
  expect(partSizeFor(1000 * MiB, 5 * MiB)).toBe(5 * MiB);
  expect(partSizeFor(MAX_PARTS * 5 * MiB, 5 * MiB)).toBe(5 * MiB);
  expect(partSizeFor(MAX_PARTS * 5 * MiB + 1, 5 * MiB)).toBe(6 * MiB);
  const fiveTiB = MAX_OBJECT_SIZE;
  const size = partSizeFor(fiveTiB, 5 * MiB);
  expect(size % MiB).toBe(0);
  expect(Math.ceil(fiveTiB / size)).toBeLessThanOrEqual(MAX_PARTS);
  expect(() => partSizeFor(fiveTiB + 1, 5 * MiB)).toThrow(TusError);
});

/** A part's bytes, sent as views of its carry and slabs, as one list of numbers. */
const flat = (views: Uint8Array[]) => views.flatMap((v) => [...v]);

const streamOf = (sizes: number[]) => {
  let n = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      const size = sizes.shift();
      if (size === undefined) return c.close();
      c.enqueue(Uint8Array.from({ length: size }, () => n++ & 0xff));
    },
  });
};

test('parts: fixed size whatever the chunking, carry first, tail returned, numbering from firstPart', async () => {
  const sent: [number, number[]][] = [];
  const result = await sendParts(streamOf([3, 1, 7, 2]), {
    partSize: 4,
    firstPart: 5,
    carry: new Uint8Array([200, 201]),
    parallel: 2,
    send: async (n, bytes) => void sent.push([n, flat(bytes)]),
  });
  expect(sent).toEqual([
    [5, [200, 201, 0, 1]],
    [6, [2, 3, 4, 5]],
    [7, [6, 7, 8, 9]],
  ]);
  expect(result.received).toBe(13);
  expect(result.nextPart).toBe(8);
  expect([...result.tail]).toEqual([10, 11, 12]);
});

test('parts: never more than `parallel` sends in flight, and the stream waits for them', async () => {
  let inflight = 0;
  let peak = 0;
  await sendParts(streamOf(Array(40).fill(3)), {
    partSize: 5,
    firstPart: 1,
    parallel: 3,
    send: async () => {
      peak = Math.max(peak, ++inflight);
      await Bun.sleep(2);
      inflight--;
    },
  });
  expect(peak).toBe(3);
});

test('parts: a failed send fails the call after every started send settled', async () => {
  let settled = 0;
  const error = await sendParts(streamOf(Array(20).fill(4)), {
    partSize: 4,
    firstPart: 1,
    parallel: 4,
    send: async (n) => {
      await Bun.sleep(n === 2 ? 1 : 5);
      settled++;
      if (n === 2) throw new Error('part 2 failed');
    },
  }).catch((e: Error) => e);
  expect((error as Error).message).toBe('part 2 failed');
  const atFailure = settled;
  await Bun.sleep(20);
  expect(settled).toBe(atFailure); // nothing still running after the call returned
});

describe('parts streamed while they arrive', () => {
  const collect = async (stream: ReadableStream<Uint8Array>) => [...new Uint8Array(await new Response(stream).arrayBuffer())];

  test("the body's last full part is streamed (carry first); earlier parts and the tail are not", async () => {
    const streamed: [number, number[]][] = [];
    const sent: number[] = [];
    const result = await sendParts(streamOf([3, 1, 7, 2]), {
      partSize: 4,
      firstPart: 1,
      carry: new Uint8Array([200, 201]),
      parallel: 2,
      expected: 13,
      send: async (n) => void sent.push(n),
      stream: async (n, body, size) => {
        expect(size).toBe(4);
        streamed.push([n, await collect(body)]);
      },
    });
    expect(streamed).toEqual([[3, [6, 7, 8, 9]]]);
    expect(sent).toEqual([1, 2]);
    expect([...result.tail]).toEqual([10, 11, 12]);
  });

  test('a streamed part that fails is sent again from its buffered copy', async () => {
    const sent: [number, number[]][] = [];
    await sendParts(streamOf([4, 4]), {
      partSize: 4,
      firstPart: 1,
      parallel: 2,
      expected: 8,
      send: async (n, bytes) => void (n === 2 && sent.push([n, flat(bytes)])),
      stream: async (n, body) => {
        await collect(body);
        if (n === 2) throw new Error('connection reset');
      },
    });
    expect(sent).toEqual([[2, [4, 5, 6, 7]]]);
  });

  test('a streamed part whose request dies mid-part (its body cancelled) is sent again whole from the buffer', async () => {
    const sent: [number, number[]][] = [];
    const result = await sendParts(streamOf([2, 1, 1, 1, 3]), {
      partSize: 4,
      firstPart: 1,
      parallel: 2,
      expected: 8,
      send: async (n, bytes) => void sent.push([n, flat(bytes)]),
      stream: async (_n, body) => {
        const reader = body.getReader();
        await reader.read();
        await reader.cancel(); // what fetch does with the body of a request that failed
        throw new Error('connection reset');
      },
    });
    expect(sent.sort((a, b) => a[0] - b[0])).toEqual([
      [1, [0, 1, 2, 3]],
      [2, [4, 5, 6, 7]],
    ]);
    expect(result.nextPart).toBe(3);
  });

  test('a body that ends early: the started part is abandoned, never sent short', async () => {
    const sent: number[] = [];
    let abandoned = false;
    const result = await sendParts(streamOf([4, 2]), {
      partSize: 4,
      firstPart: 1,
      parallel: 2,
      expected: 8, // the client promised 8 bytes and sent 6
      send: async (n) => void sent.push(n),
      stream: async (n, body) => {
        try {
          await collect(body);
        } catch {
          abandoned = n === 2;
          throw new Error('request failed');
        }
      },
    });
    expect(abandoned).toBe(true);
    expect(sent).toEqual([1]); // part 2, the last, was streamed and abandoned; never sent short
    expect([...result.tail]).toEqual([4, 5]);
  });
});

test('parts: with `release`, each chunk that is its whole buffer is freed once copied; views of shared buffers are left alone', async () => {
  const shared = new Uint8Array(8).map((_, i) => 100 + i);
  const chunks = [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5, 6, 7, 8), shared.subarray(0, 4), shared.subarray(4)];
  const sent: number[][] = [];
  const run = (release: boolean) =>
    sendParts(new ReadableStream({ pull: (c) => void (chunks.length ? c.enqueue(chunks.shift()!) : c.close()) }), {
      partSize: 4,
      firstPart: 1,
      parallel: 2,
      release,
      send: async (_, bytes) => void sent.push(flat(bytes)),
    });
  const owned = [chunks[0]!, chunks[1]!];
  const result = await run(true);
  expect(sent).toEqual([
    [1, 2, 3, 4],
    [5, 6, 7, 8],
    [100, 101, 102, 103],
    [104, 105, 106, 107],
  ]);
  expect(result.tail.byteLength).toBe(0);
  expect(owned.map((c) => c.buffer.detached)).toEqual([true, true]);
  expect(shared.buffer.detached).toBe(false);

  const kept = Uint8Array.of(9, 9, 9, 9, 9);
  chunks.push(kept);
  const without = await run(false);
  expect([...without.tail]).toEqual([9]);
  expect(kept.buffer.detached).toBe(false);
});

/** A client whose requests go only to `fetch` (its endpoint is a closed port, never dialled). */
function offlineClient(streamBodies: boolean, fetch: Fetch): S3Client {
  return new S3Client({
    endpoint: 'http://127.0.0.1:1',
    bucket: 'b',
    region: 'us-east-1',
    accessKeyId: 'k',
    secretAccessKey: 's',
    forcePathStyle: true,
    streamBodies,
    fetch,
  });
}

test('client: with streamBodies a part goes out as a stream with its Content-Length, and a retry sends the same bytes again', async () => {
  const part = Uint8Array.from({ length: MiB + 3 }, (_, i) => i & 0xff);
  const attempts: { stream: boolean; length: string | null; sha256: string }[] = [];
  const client = offlineClient(true, async (_url, init) => {
    const body = init!.body as ReadableStream<Uint8Array>;
    const bytes = new Uint8Array(await new Response(body).arrayBuffer());
    attempts.push({ stream: body instanceof ReadableStream, length: new Headers(init!.headers).get('Content-Length'), sha256: sha256(bytes) });
    return attempts.length === 1 ? new Response('<Error><Code>SlowDown</Code></Error>', { status: 503 }) : new Response('', { headers: { ETag: '"e"' } });
  });
  expect(await client.uploadPart('k', 'u', 1, part)).toEqual({ etag: '"e"' });
  const expected = { stream: true, length: String(part.byteLength), sha256: sha256(part) };
  expect(attempts).toEqual([expected, expected]);
});

test('client: a part given as views goes out as one stream of them with its Content-Length, or joined once where bodies cannot stream', async () => {
  const views = [Uint8Array.of(1, 2, 3), new Uint8Array(300 * 1024).fill(7), Uint8Array.of(9)];
  const whole = new Uint8Array(views.reduce((n, v) => n + v.byteLength, 0));
  views.reduce((at, v) => (whole.set(v, at), at + v.byteLength), 0);
  for (const streamBodies of [true, false]) {
    const seen: { stream: boolean; length: string | null; sha256: string }[] = [];
    const client = offlineClient(streamBodies, async (_url, init) => {
      const body = init!.body as BodyInit;
      const bytes = new Uint8Array(await new Response(body).arrayBuffer());
      const length = body instanceof ReadableStream ? new Headers(init!.headers).get('Content-Length') : String(bytes.byteLength);
      seen.push({ stream: body instanceof ReadableStream, length, sha256: sha256(bytes) });
      return new Response('', { headers: { ETag: '"e"' } });
    });
    await client.uploadPart('k', 'u', 1, views);
    expect(seen).toEqual([{ stream: streamBodies, length: String(whole.byteLength), sha256: sha256(whole) }]);
  }
});

describe('part memory: slabs taken from a shared budget as bytes arrive', () => {
  const settled = async (p: Promise<unknown>) =>
    await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      Bun.sleep(20).then(() => false),
    ]);
  /** A body that sends these bytes and then nothing, ever (a client that stalls); tells when it is cancelled. */
  const stalling = (bytes: number[], onCancel?: (reason: unknown) => void) => {
    let sent = false;
    return new ReadableStream<Uint8Array>({
      pull: (c) => (sent ? new Promise(() => {}) : void ((sent = true), c.enqueue(Uint8Array.from(bytes)))),
      cancel: onCancel,
    });
  };

  test('a part takes one slab at a time; past the budget takes wait for a release, in order, and get the slabs back', async () => {
    const pool = new PartBuffers(4, { slabSize: 2 }); // two slabs of 2 bytes
    const a = pool.part(4);
    const slabs = [a.tryTake()!, a.tryTake()!];
    expect(slabs.map((s) => s.byteLength)).toEqual([2, 2]);
    const order: string[] = [];
    const b = pool
      .part(2)
      .take()
      .then((s) => (order.push('b'), s));
    const c = pool
      .part(2)
      .take()
      .then((s) => (order.push('c'), s));
    expect(pool.part(2).tryTake()).toBeUndefined(); // a new part goes to the back of the line
    expect(await settled(b)).toBe(false);
    a.release();
    expect(slabs).toContain(await b); // reused, not allocated
    expect(slabs).toContain(await c);
    expect(order).toEqual(['b', 'c']);
  });

  test('a wait longer than the limit fails with BUSY (503), and the slab goes to the next taker instead', async () => {
    const pool = new PartBuffers(2, { maxWaitMs: 50, slabSize: 2 });
    const holder = pool.part(2);
    const held = holder.tryTake()!;
    const started = performance.now();
    const error = await pool
      .part(2)
      .take()
      .catch((e) => e);
    expect(error).toBeInstanceOf(TusError);
    expect([error.code, statusOf(error)]).toEqual(['BUSY', 503]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    const next = pool.part(2).take();
    holder.release();
    expect(await next).toBe(held);
  });

  test('a waiter whose request is cut leaves the line at once, and the slab goes to the one behind it', async () => {
    const pool = new PartBuffers(2, { slabSize: 2 });
    const holder = pool.part(2);
    holder.tryTake();
    const cut = new AbortController();
    const gone = pool
      .part(2)
      .take(cut.signal)
      .catch((e) => e);
    const behind = pool.part(2).take();
    cut.abort(new Error('client gone'));
    expect(((await gone) as Error).message).toBe('client gone');
    expect(await settled(behind)).toBe(false);
    holder.release();
    expect((await behind).byteLength).toBe(2);
    expect(
      await pool
        .part(2)
        .take(AbortSignal.abort(new Error('already cut')))
        .catch((e) => e.message),
    ).toBe('already cut');
    expect(pool.inUse).toBe(1);
  });

  test('parts that each hold part of the budget never wait for one another: a slab is refused while it would leave no part able to finish', async () => {
    const pool = new PartBuffers(4, { slabSize: 1, activeMs: 0 }); // four slabs; parts of three; admission left out
    const a = pool.part(3);
    const b = pool.part(3);
    a.tryTake();
    b.tryTake();
    a.tryTake();
    // One more for b would leave both needing one with none free: b waits, a goes on.
    expect(b.tryTake()).toBeUndefined();
    const waiting = b.take();
    expect(a.tryTake()).toBeDefined();
    expect(await settled(waiting)).toBe(false);
    a.release(); // sent
    await waiting;
    expect(b.tryTake()).toBeDefined();
    expect(pool.inUse).toBe(3);
  });

  test('a part larger than the whole budget goes past it while it holds all there is; others wait for it', async () => {
    const pool = new PartBuffers(2, { slabSize: 1 });
    const big = pool.part(5);
    for (let i = 0; i < 5; i++) expect(big.tryTake()).toBeDefined();
    const small = pool.part(1).take();
    expect(pool.part(5).tryTake()).toBeUndefined();
    expect(await settled(small)).toBe(false);
    big.release();
    await small;
    expect(pool.inUse).toBe(1);
  });

  test('sendParts: a part is its carry and then slabs, filled as bytes arrive, sent and streamed as views of them', async () => {
    const sent: [number, number[], number[]][] = [];
    const streamed: number[][] = [];
    const pool = new PartBuffers(1000, { slabSize: 3 });
    const result = await sendParts(streamOf([1, 5, 4, 6, 1]), {
      partSize: 8,
      firstPart: 1,
      carry: new Uint8Array([200, 201]),
      parallel: 2,
      buffers: pool,
      send: async (n, views) => void sent.push([n, views.map((v) => v.byteLength), flat(views)]),
    });
    expect(sent).toEqual([
      [1, [2, 3, 3], [200, 201, 0, 1, 2, 3, 4, 5]],
      [2, [3, 3, 2], [6, 7, 8, 9, 10, 11, 12, 13]],
    ]);
    expect([...result.tail]).toEqual([14, 15, 16]);
    expect(pool.inUse).toBe(0);

    await sendParts(streamOf([3, 4]), {
      partSize: 8,
      firstPart: 1,
      carry: new Uint8Array([9]),
      parallel: 1,
      expected: 7,
      buffers: pool,
      send: async () => {},
      stream: async (_n, body) => void streamed.push(...(await Array.fromAsync(body)).map((v) => [...v])),
    });
    expect(streamed).toEqual([[9], [0, 1, 2], [3, 4, 5], [6]]);
  });

  test('a PATCH waiting for memory has not read its body: the first byte is read once a slab is granted', async () => {
    const pool = new PartBuffers(2, { slabSize: 1 });
    const other = pool.part(2);
    other.tryTake();
    other.tryTake(); // the whole budget
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(c) {
          pulls++;
          c.enqueue(new Uint8Array([7]));
          c.close();
        },
      },
      { highWaterMark: 0 },
    );
    const sent: number[][] = [];
    const sending = sendParts(body, { partSize: 1, firstPart: 1, parallel: 1, buffers: pool, send: async (_n, views) => void sent.push(flat(views)) });
    await Bun.sleep(10);
    expect([body.locked, pulls]).toEqual([false, 0]);
    other.release();
    await sending;
    expect([pulls, sent]).toEqual([1, [[7]]]);
  });

  test('a new part starts only when the memory free, less what active parts still need, holds all of it; parts idle for `activeMs` stop counting', async () => {
    const pool = new PartBuffers(8, { slabSize: 1, activeMs: 50 }); // eight slabs; parts of four
    const [a, b, c] = [pool.part(4), pool.part(4), pool.part(4)];
    a.tryTake();
    b.tryTake(); // 8 - 2 held - 3 that a still needs: room for b
    expect(c.tryTake()).toBeUndefined(); // 8 - 2 - 3 - 3: no room for all of c
    const started = performance.now();
    await c.take(); // a and b send nothing more: after 50 ms they count no more
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(pool.inUse).toBe(3);
  });

  test('sendParts: a part counts no more memory than the body has still to bring (Content-Length)', async () => {
    const pool = new PartBuffers(8, { slabSize: 1, activeMs: 60_000 }); // eight slabs; parts of four
    // Two PATCHes of 2 bytes send one and stall: each part needs one slab more, not three.
    for (let i = 0; i < 2; i++) void sendParts(stalling([1]), { partSize: 4, firstPart: 1, parallel: 1, expected: 2, buffers: pool, send: async () => {} });
    await Bun.sleep(10);
    const sent: number[][] = [];
    const started = performance.now();
    await sendParts(streamOf([4]), { partSize: 4, firstPart: 1, parallel: 1, expected: 4, buffers: pool, send: async (_, views) => void sent.push(flat(views)) });
    expect([sent, performance.now() - started < 1_000]).toEqual([[[0, 1, 2, 3]], true]);
  });

  test('sendParts: bodies that stall after a few bytes hold a slab each, not a part, and others go on', async () => {
    const pool = new PartBuffers(16 * 16, { slabSize: 4, activeMs: 50 }); // room for 16 parts of 16 bytes
    for (let i = 0; i < 20; i++) void sendParts(stalling([1, 2, 3]), { partSize: 16, firstPart: 1, parallel: 4, buffers: pool, send: async () => {} });
    await Bun.sleep(150);
    expect(pool.inUse).toBe(20);
    const sent: number[] = [];
    const started = performance.now();
    const done = await sendParts(streamOf([16, 16, 16, 5]), { partSize: 16, firstPart: 1, parallel: 4, buffers: pool, send: async (n) => void sent.push(n) });
    expect([sent, done.received, performance.now() - started < 1_000]).toEqual([[1, 2, 3], 53, true]);
    expect(pool.inUse).toBe(20);
  });

  test('sendParts: a wait for memory ends when the request is cut; the bytes placed are the result, the body is cancelled', async () => {
    const pool = new PartBuffers(5 * 4, { slabSize: 4, activeMs: 0 }); // five slabs of 4 bytes; parts of 16
    const cut = new AbortController();
    let cancelled = false;
    let more!: () => void;
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(Uint8Array.of(1, 2, 3, 4));
        await new Promise<void>((resolve) => (more = resolve));
        c.enqueue(Uint8Array.of(5, 6));
      },
      cancel: () => void (cancelled = true),
    });
    const waiting = sendParts(body, { partSize: 16, firstPart: 1, parallel: 4, buffers: pool, send: async () => {}, signal: cut.signal });
    await Bun.sleep(10);
    // Meanwhile another upload's part takes the rest of the budget.
    void sendParts(stalling(Array(13).fill(9)), { partSize: 16, firstPart: 1, parallel: 4, buffers: pool, send: async () => {} });
    await Bun.sleep(10);
    more();
    await Bun.sleep(10);
    expect(pool.inUse).toBe(5); // four bytes placed; the fifth waits for a slab
    cut.abort(new Error('client gone'));
    const result = await waiting;
    expect([result.received, result.nextPart, [...result.tail], cancelled]).toEqual([4, 1, [1, 2, 3, 4], true]);
    expect(pool.inUse).toBe(4);
  });

  test('sendParts: uploads sharing a budget never hold more, all finish, and every slab comes back (after failures too)', async () => {
    const pool = new PartBuffers(12, { slabSize: 2 }); // six slabs; parts of two
    let most = 0;
    const sent = new Map<string, number[]>();
    const run = (name: string, fail = false) =>
      sendParts(streamOf(Array(12).fill(3)), {
        partSize: 4,
        firstPart: 1,
        parallel: 4,
        buffers: pool,
        send: async (n, views) => {
          most = Math.max(most, pool.inUse);
          await Bun.sleep(1);
          if (fail && n === 3) throw new Error('S3 failed');
          sent.set(`${name}${n}`, flat(views));
        },
      });
    const results = await Promise.allSettled([run('a'), run('b'), run('c'), run('d', true)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect(results.slice(0, 3).map((r) => (r as PromiseFulfilledResult<{ nextPart: number }>).value.nextPart)).toEqual([10, 10, 10]);
    expect(sent.get('c9')).toEqual([32, 33, 34, 35]);
    expect(most).toBe(6); // used to the full, never past it
    expect(pool.inUse).toBe(0);
  });
});

test('parts: past 10,000 parts is TOO_LARGE', async () => {
  const error = await sendParts(streamOf([8]), { partSize: 4, firstPart: MAX_PARTS, parallel: 1, send: async () => {} }).catch((e) => e);
  expect((error as TusError).code).toBe('TOO_LARGE');
});

test('xml: text, blocks and entities', () => {
  const xml = `<ListPartsResult><IsTruncated>true</IsTruncated><Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag></Part><Part><PartNumber>2</PartNumber><ETag>&#34;d&amp;e&#x22;</ETag></Part></ListPartsResult>`;
  expect(text(xml, 'IsTruncated')).toBe('true');
  expect(blocks(xml, 'Part').map((p) => text(p, 'ETag'))).toEqual(['"abc"', '"d&e"']);
  expect(text(xml, 'Missing')).toBeUndefined();
  expect(decodeXml('a&lt;b&gt;c&apos;')).toBe("a<b>c'");
  expect(blocks('<Error x="1"><Code>SlowDown</Code></Error>', 'Error')).toEqual(['<Code>SlowDown</Code>']);
});

test('tail cache: used only at the same offset, bounded in bytes, oldest out first; its bytes are budget slabs', () => {
  const pool = new PartBuffers(100, { slabSize: 1 });
  const cache = new TailCache(pool, 10);
  const tail = (offset: number, size: number) => {
    const memory = pool.part(size);
    for (let i = 0; i < size; i++) memory.tryTake();
    return { offset, held: { memory, length: size }, segments: [], obsolete: [] };
  };
  cache.put('a', tail(4, 4));
  expect(cache.take('a', 5)).toBeUndefined();
  expect(pool.inUse).toBe(0); // a miss drops the entry and gives its memory back
  expect(cache.take('a', 4)).toBeUndefined();
  cache.put('a', tail(4, 4));
  cache.put('b', tail(4, 4));
  cache.put('c', tail(4, 4)); // 12 bytes > 10: a goes
  expect(pool.inUse).toBe(8);
  expect(cache.take('a', 4)).toBeUndefined();
  const b = cache.take('b', 4);
  expect(b?.offset).toBe(4);
  b?.held?.memory.release();
  cache.put('d', tail(1, 11)); // larger than the whole cache: not kept
  expect(cache.take('d', 1)).toBeUndefined();
  expect(pool.inUse).toBe(4); // c
});

test('tail cache: when the budget is short, the oldest tails give their slabs back', () => {
  const pool = new PartBuffers(8, { slabSize: 1 });
  const cache = new TailCache(pool, Number.POSITIVE_INFINITY);
  for (const id of ['a', 'b']) {
    const memory = pool.part(4);
    for (let i = 0; i < 4; i++) memory.tryTake();
    cache.put(id, { offset: 4, held: { memory, length: 4 }, segments: [], obsolete: [] });
  }
  expect(pool.inUse).toBe(8);
  const part = pool.part(3);
  for (let i = 0; i < 3; i++) expect(part.tryTake()).toBeDefined();
  expect(pool.inUse).toBe(7); // a went (4 back, 3 taken)
  expect(cache.take('a', 4)).toBeUndefined();
  expect(cache.take('b', 4)?.held?.length).toBe(4);
});

describe('segment bookkeeping', () => {
  const base = 'up/x';
  const seg = (start: number) => segmentKey(base, start);
  /** A write's end as the store describes it, for a part size of 8 unless said. */
  const end = (e: Partial<WriteEnd> & Pick<WriteEnd, 'offset' | 'carried' | 'received'>): WriteEnd => ({
    tail: (e.carried + e.received) % 8,
    sentPart: e.carried + e.received >= 8,
    ...e,
  });

  test('keys: by starting offset under the upload, parsed back; other keys are not segments', () => {
    expect(seg(12)).toBe('up/x.part/12');
    expect(segmentStart(base, seg(12))).toBe(12);
    expect(segmentStart(base, 'up/x.part/abc')).toBeUndefined();
    expect(segmentStart(base, 'up/y.part/3')).toBeUndefined();
  });

  test('bytes short of a part, nothing carried: one segment at the write offset', () => {
    expect(planSegments(base, undefined, end({ offset: 3, carried: 0, received: 3 }))).toEqual({
      last: false,
      segment: { key: seg(0), from: 0 },
      segments: [seg(0)],
      obsolete: [],
    });
    // Past a part boundary (part 2 starts at 8) the same.
    expect(planSegments(base, undefined, end({ offset: 11, carried: 0, received: 3 })).segment).toEqual({ key: seg(8), from: 0 });
  });

  test('remembered segments stay: the next write stores only its own bytes, so each byte is written once', () => {
    const plan = planSegments(base, { segments: [seg(0)] }, end({ offset: 5, carried: 3, received: 2 }));
    expect(plan).toEqual({ last: false, segment: { key: seg(3), from: 3 }, segments: [seg(0), seg(3)], obsolete: [] });
  });

  test('segments read back are rewritten as one at the part start; the others become obsolete', () => {
    const listed = { segments: [seg(0), seg(3), seg(9)], consolidate: true }; // seg(9): left by a failed request
    expect(planSegments(base, listed, end({ offset: 7, carried: 5, received: 2 }))).toEqual({
      last: false,
      segment: { key: seg(0), from: 0 }, // replaces the old seg(0) under the same key: not obsolete
      segments: [seg(0)],
      obsolete: [seg(3), seg(9)],
    });
  });

  test('a write that fills a part: the carried segments are obsolete, what is left starts a new one', () => {
    const plan = planSegments(base, { segments: [seg(0), seg(3)] }, end({ offset: 11, carried: 5, received: 6 }));
    expect(plan).toEqual({ last: false, segment: { key: seg(8), from: 0 }, segments: [seg(8)], obsolete: [seg(0), seg(3)] });
  });

  test('a write that ends on a part boundary stores no segment and retires the carried ones', () => {
    const plan = planSegments(base, { segments: [seg(0), seg(3)] }, end({ offset: 16, carried: 5, received: 11 }));
    expect(plan).toEqual({ last: false, segments: [], obsolete: [seg(0), seg(3)] });
  });

  test('the write that reaches the length: no segment (the tail is the last part), every carried one obsolete', () => {
    const plan = planSegments(base, { segments: [seg(8)] }, end({ offset: 13, length: 13, carried: 2, received: 3 }));
    expect(plan).toEqual({ last: true, segments: [], obsolete: [seg(8)] });
  });

  test('an empty write changes nothing, unless it reaches a length just declared', () => {
    const carry = { segments: [seg(0), seg(3)], consolidate: true };
    expect(planSegments(base, carry, end({ offset: 5, carried: 5, received: 0 }))).toEqual({ last: false, segments: [seg(0), seg(3)], obsolete: [] });
    expect(planSegments(base, carry, end({ offset: 5, length: 5, carried: 5, received: 0 }))).toEqual({
      last: true,
      segments: [],
      obsolete: [seg(0), seg(3)],
    });
  });

  test('a remembered write that would leave more than the limit rewrites the carried bytes and its own as one segment at the part start', () => {
    const carry = { segments: [seg(0), seg(1), seg(2)] };
    expect(planSegments(base, carry, end({ offset: 4, carried: 3, received: 1 }), 3)).toEqual({
      last: false,
      segment: { key: seg(0), from: 0 }, // replaces seg(0) under the same key
      segments: [seg(0)],
      obsolete: [seg(1), seg(2)],
    });
    // Below the limit the new bytes are a segment of their own, as before.
    expect(planSegments(base, carry, end({ offset: 4, carried: 3, received: 1 }), 4).segments).toEqual([seg(0), seg(1), seg(2), seg(3)]);
    // The default limit: one-byte writes never leave more than maxSegments.
    let segments: string[] = [];
    for (let offset = 1; offset < 200; offset++) {
      const plan = planSegments(base, offset > 1 ? { segments } : undefined, { offset, carried: offset - 1, received: 1, tail: offset, sentPart: false });
      segments = plan.segments;
      expect(segments.length).toBeLessThanOrEqual(maxSegments);
      expect(segments[0]).toBe(seg(0));
    }
  });

  test('random writes, some on an instance that forgets, some whose offset is not saved: S3 proves the offset and holds the bytes', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rng = seededRng(seed);
      // Parts of 8 or 24 bytes, and at most 1 to 4 segments, so that the limit is reached often.
      const P = seed % 2 === 0 ? 8 : 24;
      const limit = 1 + (seed % 4);
      // A third of the runs on one instance that remembers every write; the others also lose
      // their memory now and then, and some of their writes' offsets (a crash before the save).
      const forgets = seed % 3 !== 0;
      const length = rng.int(1, 60);
      const source = Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
      const bucket = new Map<string, Uint8Array>();
      const parts = new Map<number, Uint8Array>();
      let remembered: { offset: number; bytes: Uint8Array; segments: string[]; obsolete: string[] } | undefined;
      let offset = 0;
      let segmentBytes = 0;
      let rewritten = 0;
      let reached = 0;
      const listed = () => new Map([...bucket].map(([key, bytes]) => [segmentStart(base, key)!, { key, bytes }]));
      // What a rebuild from S3 finds (the store's recover): full parts, then segments without a gap.
      const proven = () => {
        let at = 0;
        while (parts.get(at / P + 1)?.byteLength === P) at += P;
        const last = parts.get(at / P + 1);
        if (last && at + last.byteLength === length) return { at: length, bytes: new Uint8Array() };
        const found = listed();
        const bytes: number[] = [];
        const partEnd = at + P;
        for (let s = found.get(at); s && at + s.bytes.byteLength < partEnd; s = found.get(at)) {
          bytes.push(...s.bytes);
          at += s.bytes.byteLength;
        }
        return { at, bytes: Uint8Array.from(bytes) };
      };

      while (offset < length) {
        const received = Math.min(rng.int(0, 11), length - offset);
        const carried = offset % P;
        const previous = !forgets || rng.chance(0.5) ? (remembered?.offset === offset ? remembered : undefined) : undefined;
        for (const key of previous?.obsolete ?? []) bucket.delete(key);
        let carry: { bytes: Uint8Array; segments: string[]; consolidate?: boolean } | undefined = previous;
        if (carried > 0 && !previous) {
          const found = listed();
          const bytes = new Uint8Array(carried);
          for (let at = offset - carried; at < offset; ) {
            const s = found.get(at)!;
            const chunk = s.bytes.subarray(0, offset - at);
            bytes.set(chunk, at - (offset - carried));
            at += chunk.byteLength;
          }
          carry = { bytes, segments: [...found.values()].map((s) => s.key), consolidate: true };
        }
        const data = Uint8Array.from([...(carried > 0 ? carry!.bytes : []), ...source.subarray(offset, offset + received)]);
        const full = Math.floor(data.byteLength / P);
        const firstPart = Math.floor(offset / P) + 1;
        for (let i = 0; i < full; i++) parts.set(firstPart + i, data.subarray(i * P, (i + 1) * P));
        const tail = data.subarray(full * P);
        const next = offset + received;
        const plan = planSegments(base, carried > 0 ? carry : undefined, { offset: next, length, carried, received, tail: tail.byteLength, sentPart: full > 0 }, limit);
        if (plan.last && tail.byteLength > 0) parts.set(firstPart + full, tail);
        if (plan.segment) {
          bucket.set(plan.segment.key, tail.subarray(plan.segment.from));
          segmentBytes += tail.byteLength - plan.segment.from;
          // Carried bytes stored again: read back, or merged once the limit was reached.
          if (full === 0 && plan.segment.from === 0) rewritten += carried;
        }
        // (An empty write keeps what it carried; read back, that may count segments a failed write left.)
        if (plan.segment || !forgets) expect(plan.segments.length).toBeLessThanOrEqual(limit);
        // The bucket holds at most the limit, and one more when a part took the carried segments.
        if (!forgets) expect(bucket.size).toBeLessThanOrEqual(limit + (full > 0 ? 1 : 0));
        remembered = { offset: next, bytes: tail, segments: plan.segments, obsolete: plan.obsolete };
        const saved = !forgets || rng.chance(0.8);
        if (saved) offset = next;

        // With whatever obsolete segments are still there (deleted by the next write, if this
        // instance remembers it), a rebuild finds at least this write's offset, exactly that when
        // every write was saved, and only the upload's bytes: a write whose offset was not saved
        // may have left more of them, as durable.
        reached = Math.max(reached, next);
        const { at, bytes } = proven();
        expect({ seed, at, within: at >= next && at <= reached }).toEqual({ seed, at, within: true });
        if (!forgets) expect(at).toBe(next);
        expect([...bytes]).toEqual([...source.subarray(at - bytes.byteLength, at)]);
        expect(plan.segments.every((key) => bucket.has(key))).toBe(true);
      }
      expect(remembered?.segments).toEqual([]);
      // Remembered and saved all along: no byte was stored as a segment twice but when segments merged.
      if (!forgets) expect(segmentBytes - rewritten).toBeLessThanOrEqual(length);
    }
  });
});

describe('concatenation plan', () => {
  const M = 5 * MiB;
  const total = (plan: PlannedPart[]) => plan.flatMap((p) => ('copy' in p ? [p.copy] : p.read)).reduce((n, piece) => n + piece.end - piece.start, 0);
  const sizeOf = (p: PlannedPart) => ('copy' in p ? [p.copy] : p.read).reduce((n, x) => n + x.end - x.start, 0);

  test('partials of 5 MiB and more are copied whole inside S3', () => {
    expect(planConcat([M, 7 * MiB, M + 1])).toEqual([
      { copy: { source: 0, start: 0, end: M } },
      { copy: { source: 1, start: 0, end: 7 * MiB } },
      { copy: { source: 2, start: 0, end: M + 1 } },
    ]);
  });

  test('small partials are gathered until a part is full; the next large one tops them up', () => {
    const plan = planConcat([MiB, 2 * MiB, 9 * MiB, 100]);
    expect(plan).toEqual([
      {
        read: [
          { source: 0, start: 0, end: MiB },
          { source: 1, start: 0, end: 2 * MiB },
          { source: 2, start: 0, end: 2 * MiB },
        ],
      },
      { copy: { source: 2, start: 2 * MiB, end: 9 * MiB } },
      { read: [{ source: 3, start: 0, end: 100 }] },
    ]);
  });

  test('every part but the last is at least 5 MiB, and every byte is planned once, in order', () => {
    const cases = [
      [1, 1, 1],
      [M - 1, 2, M],
      [3 * MiB, 3 * MiB, 3 * MiB],
      [0, M, 0, 1],
      [M + 3, MiB, MiB, MiB, MiB, MiB, 7],
    ];
    for (const sizes of cases) {
      const plan = planConcat(sizes);
      expect(total(plan)).toBe(sizes.reduce((a, b) => a + b, 0));
      for (const p of plan.slice(0, -1)) expect(sizeOf(p)).toBeGreaterThanOrEqual(M);
      const pieces = plan.flatMap((p) => ('copy' in p ? [p.copy] : p.read));
      pieces.reduce((prev, piece) => {
        expect(piece.source > prev.source || (piece.source === prev.source && piece.start === prev.end)).toBe(true);
        return piece;
      });
    }
  });

  test('partials over 5 GiB are copied in ranges S3 accepts', () => {
    const plan = planConcat([9 * 1024 * MiB + 3]);
    expect(plan.length).toBe(3);
    for (const p of plan) expect(sizeOf(p)).toBeLessThanOrEqual(5 * 1024 * MiB);
    expect(plan.every((p) => 'copy' in p)).toBe(true);
  });

  test('nothing to concatenate: no parts', () => {
    expect(planConcat([0, 0])).toEqual([]);
  });
});
