import { describe, expect, test } from 'bun:test';
import { planConcat, type PlannedPart } from '../../src/storage/s3/concat.ts';
import { MAX_OBJECT_SIZE, MAX_PARTS, MiB, partSizeFor, sendParts } from '../../src/storage/s3/parts.ts';
import { blocks, decodeXml, text } from '../../src/storage/s3/xml.ts';
import { TusError } from '../../src/protocol/errors.ts';
import { TailCache } from '../../src/storage/s3/tail-cache.ts';
import { S3Client } from '../../src/storage/s3/client.ts';
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
    send: async (n, bytes) => void sent.push([n, [...bytes]]),
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
      send: async (n, bytes) => void (n === 2 && sent.push([n, [...bytes]])),
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
      send: async (n, bytes) => void sent.push([n, [...bytes]]),
      stream: async (_n, body) => {
        const reader = body.getReader();
        await reader.read();
        await reader.cancel(); // what fetch does with the body of a request that failed
        throw new Error('connection reset');
      },
    });
    expect(sent.sort((a, b) => a[0] - b[0])).toEqual([[1, [0, 1, 2, 3]], [2, [4, 5, 6, 7]]]);
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
    sendParts(
      new ReadableStream({ pull: (c) => void (chunks.length ? c.enqueue(chunks.shift()!) : c.close()) }),
      { partSize: 4, firstPart: 1, parallel: 2, release, send: async (_, bytes) => void sent.push([...bytes]) },
    );
  const owned = [chunks[0]!, chunks[1]!];
  const result = await run(true);
  expect(sent).toEqual([[1, 2, 3, 4], [5, 6, 7, 8], [100, 101, 102, 103], [104, 105, 106, 107]]);
  expect(result.tail.byteLength).toBe(0);
  expect(owned.map((c) => c.buffer.detached)).toEqual([true, true]);
  expect(shared.buffer.detached).toBe(false);

  const kept = Uint8Array.of(9, 9, 9, 9, 9);
  chunks.push(kept);
  const without = await run(false);
  expect([...without.tail]).toEqual([9]);
  expect(kept.buffer.detached).toBe(false);
});

test('client: with streamBodies a part goes out as a stream with its Content-Length, and a retry sends the same bytes again', async () => {
  const part = Uint8Array.from({ length: MiB + 3 }, (_, i) => i & 0xff);
  const attempts: { stream: boolean; length: string | null; sha256: string }[] = [];
  const client = new S3Client({
    endpoint: 'http://127.0.0.1:1',
    bucket: 'b',
    region: 'us-east-1',
    accessKeyId: 'k',
    secretAccessKey: 's',
    forcePathStyle: true,
    streamBodies: true,
    fetch: async (_url, init) => {
      const body = init!.body as ReadableStream<Uint8Array>;
      const bytes = new Uint8Array(await new Response(body).arrayBuffer());
      attempts.push({ stream: body instanceof ReadableStream, length: new Headers(init!.headers).get('Content-Length'), sha256: sha256(bytes) });
      return attempts.length === 1 ? new Response('<Error><Code>SlowDown</Code></Error>', { status: 503 }) : new Response('', { headers: { ETag: '"e"' } });
    },
  });
  expect(await client.uploadPart('k', 'u', 1, part)).toBe('"e"');
  const expected = { stream: true, length: String(part.byteLength), sha256: sha256(part) };
  expect(attempts).toEqual([expected, expected]);
});

describe('part buffers shared within a budget', () => {
  const settled = async (p: Promise<unknown>) => (await Promise.race([p.then(() => true), Bun.sleep(20).then(() => false)]));

  test('past the budget a take waits for a give, first come first served, and gets the buffer back', async () => {
    const pool = new PartBuffers(8);
    const a = await pool.take(4);
    const b = await pool.take(4);
    const order: string[] = [];
    const c = pool.take(4).then((x) => (order.push('c'), x));
    const d = pool.take(4).then((x) => (order.push('d'), x));
    expect(await settled(c)).toBe(false);
    pool.give(a);
    expect(await c).toBe(a); // reused, not allocated
    expect(await settled(d)).toBe(false);
    pool.give(b);
    expect(await d).toBe(b);
    expect(order).toEqual(['c', 'd']);
  });

  test('a wait longer than the limit fails with BUSY (503), and the buffer goes to the next taker instead', async () => {
    const pool = new PartBuffers(4, 50);
    const held = await pool.take(4);
    const started = performance.now();
    const error = await pool.take(4).catch((e) => e);
    expect(error).toBeInstanceOf(TusError);
    expect([error.code, error.status]).toEqual(['BUSY', 503]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    const next = pool.take(4);
    pool.give(held);
    expect(await next).toBe(held);
  });

  test('free buffers of another size make room; a part larger than the budget is still given when nothing is out', async () => {
    const pool = new PartBuffers(8);
    pool.give(await pool.take(4));
    expect((await pool.take(8)).byteLength).toBe(8); // the free 4 was dropped
    const big = new PartBuffers(3);
    const only = await big.take(5);
    expect(only.byteLength).toBe(5);
    expect(await settled(big.take(5))).toBe(false);
  });

  test('waiters for parts of different sizes are served in order as soon as the budget allows', async () => {
    const pool = new PartBuffers(10, 200);
    const a = await pool.take(5);
    await pool.take(5);
    const big = pool.take(8);
    const small = pool.take(5);
    pool.give(a); // 5 free of 10: not enough for the first waiter (8), so the second waits behind it
    expect(await settled(small)).toBe(false);
    const error = await big.catch((e) => e); // the first one gives up...
    expect(error.code).toBe('BUSY');
    expect((await small).byteLength).toBe(5); // ...and the one behind it is served at once
  });

  test('sendParts: uploads sharing a budget never hold more, all finish, and every buffer comes back (after failures too)', async () => {
    const budget = 3 * 4;
    let out = 0;
    let most = 0;
    const base = new PartBuffers(budget);
    const buffers = {
      take: async (size: number) => {
        const b = await base.take(size);
        most = Math.max(most, ++out);
        return b;
      },
      give: (b: Uint8Array<ArrayBuffer>) => (out--, base.give(b)),
    } as PartBuffers;
    const sent = new Map<string, number[]>();
    const run = (name: string, fail = false) =>
      sendParts(streamOf(Array(12).fill(3)), {
        partSize: 4,
        firstPart: 1,
        parallel: 4,
        buffers,
        send: async (n, bytes) => {
          await Bun.sleep(1);
          if (fail && n === 3) throw new Error('S3 failed');
          sent.set(`${name}${n}`, [...bytes]);
        },
      });
    const results = await Promise.allSettled([run('a'), run('b'), run('c'), run('d', true)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect(results.slice(0, 3).map((r) => (r as PromiseFulfilledResult<{ nextPart: number }>).value.nextPart)).toEqual([10, 10, 10]);
    expect(sent.get('c9')).toEqual([32, 33, 34, 35]);
    expect(most).toBe(3); // used to the full, never past it
    expect(out).toBe(0);
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

test('tail cache: used only at the same offset, bounded in bytes, oldest out first', () => {
  const cache = new TailCache(10);
  const tail = (offset: number, size: number) => ({ offset, bytes: new Uint8Array(size), segments: [], obsolete: [] });
  cache.put('a', tail(4, 4));
  expect(cache.take('a', 5)).toBeUndefined();
  expect(cache.take('a', 4)).toBeUndefined(); // a miss drops the entry
  cache.put('a', tail(4, 4));
  cache.put('b', tail(4, 4));
  cache.put('c', tail(4, 4)); // 12 bytes > 10: a goes
  expect(cache.take('a', 4)).toBeUndefined();
  expect(cache.take('b', 4)?.offset).toBe(4);
  cache.put('d', tail(1, 11)); // larger than the whole cache: not kept
  expect(cache.take('d', 1)).toBeUndefined();
});

describe('concatenation plan', () => {
  const M = 5 * MiB;
  const total = (plan: PlannedPart[]) =>
    plan.flatMap((p) => ('copy' in p ? [p.copy] : p.read)).reduce((n, piece) => n + piece.end - piece.start, 0);
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
      { read: [{ source: 0, start: 0, end: MiB }, { source: 1, start: 0, end: 2 * MiB }, { source: 2, start: 0, end: 2 * MiB }] },
      { copy: { source: 2, start: 2 * MiB, end: 9 * MiB } },
      { read: [{ source: 3, start: 0, end: 100 }] },
    ]);
  });

  test('every part but the last is at least 5 MiB, and every byte is planned once, in order', () => {
    const cases = [[1, 1, 1], [M - 1, 2, M], [3 * MiB, 3 * MiB, 3 * MiB], [0, M, 0, 1], [M + 3, MiB, MiB, MiB, MiB, MiB, 7]];
    for (const sizes of cases) {
      const plan = planConcat(sizes);
      expect(total(plan)).toBe(sizes.reduce((a, b) => a + b, 0));
      plan.slice(0, -1).forEach((p) => expect(sizeOf(p)).toBeGreaterThanOrEqual(M));
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
    plan.forEach((p) => expect(sizeOf(p)).toBeLessThanOrEqual(5 * 1024 * MiB));
    expect(plan.every((p) => 'copy' in p)).toBe(true);
  });

  test('nothing to concatenate: no parts', () => {
    expect(planConcat([0, 0])).toEqual([]);
  });
});
