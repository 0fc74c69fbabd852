/**
 * The DataStore contract: what every data store must do, stated through the DataStore interface
 * (src/storage/types.ts) alone and run over each store (tests/support/data-stores.ts). Bytes are
 * checked, not just return values: what a store acknowledged is read back after `finish`.
 *
 * The calls are made as the engine makes them: one writer per upload, `upload.offset` is the last
 * acknowledged offset, the fields `create` and `concat` return are kept in `upload.store`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { newUploadId } from '../../src/model/id.ts';
import type { ByteRange, Upload } from '../../src/model/upload.ts';
import type { DataStore, WriteOptions, WriteResult } from '../../src/storage/types.ts';
import { DATA_KINDS, type StoreUnderTest } from '../support/data-stores.ts';
import { randomBytes, sha256 } from '../support/server.ts';

const text = (s: string) => new TextEncoder().encode(s);

function join(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/**
 * A body bringing `chunks` one per pull, then ending, or failing with `error`. Each chunk is a copy:
 * a store may take a chunk's memory over (the S3 store frees request chunks once copied).
 */
function body(chunks: Uint8Array[], error?: Error): ReadableStream<Uint8Array> & { readonly ended: boolean } {
  let next = 0;
  let ended = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next < chunks.length) return controller.enqueue(chunks[next++]!.slice());
      ended = true;
      if (error) controller.error(error);
      else controller.close();
    },
  });
  return Object.defineProperty(stream, 'ended', { get: () => ended }) as ReadableStream<Uint8Array> & { readonly ended: boolean };
}

const accept: WriteOptions = { verify() {} };

/** The offset a write resolved with: an upload the store found complete already is at its length. */
function offsetOf(result: WriteResult, upload: Upload): number {
  return 'offset' in result ? result.offset : upload.length!;
}

for (const kind of DATA_KINDS) {
  describe(`data store: ${kind.name}`, () => {
    let t: StoreUnderTest;
    let store: DataStore;
    /** Uploads a test made, removed after it so shared storage (radosgw's RAM) does not fill up. */
    let made: Upload[] = [];

    beforeAll(async () => {
      t = await kind.make();
      store = t.store;
    }, 120_000);
    afterEach(async () => {
      await Promise.all(made.map((u) => store.remove(u).catch(() => {})));
      made = [];
    });
    afterAll(() => t?.dispose());

    /** Creates an upload as the engine does: its store fields kept in the record. */
    async function create(fields: Partial<Upload> = {}, on: DataStore = store): Promise<Upload> {
      const upload: Upload = {
        id: newUploadId(),
        offset: 0,
        length: 10,
        metadata: { filename: 'a.bin' },
        createdAt: Date.now(),
        ...fields,
      };
      const stored = await on.create(upload);
      if (stored) upload.store = stored;
      made.push(upload);
      return upload;
    }

    /** Writes `chunks` at the upload's offset and records the offset it resolves with, as the engine does. */
    async function write(upload: Upload, chunks: Uint8Array[], options: Partial<WriteOptions> = {}, on: DataStore = store): Promise<number> {
      upload.offset = offsetOf(await on.write(upload, body(chunks), { ...accept, ...options }), upload);
      return upload.offset;
    }

    async function read(upload: Upload, range?: ByteRange, on: DataStore = store): Promise<Uint8Array> {
      const res = await on.read(upload, range);
      return new Uint8Array(await new Response(res).arrayBuffer());
    }

    /** Finishes the upload and expects exactly `bytes` back, whole and by a few ranges. */
    async function expectFinished(upload: Upload, bytes: Uint8Array, on: DataStore = store): Promise<void> {
      expect(upload.offset).toBe(bytes.byteLength);
      await on.finish(upload);
      const got = await read(upload, undefined, on);
      expect(got.byteLength).toBe(bytes.byteLength);
      expect(sha256(got)).toBe(sha256(bytes));
    }

    async function expectUnreadable(upload: Upload): Promise<void> {
      // Either the read fails, or the stream it gives does.
      await expect(read(upload)).rejects.toBeDefined();
    }

    test('create, then an empty upload finishes into an empty readable file', async () => {
      const u = await create({ length: 0 });
      await store.finish(u);
      expect((await read(u)).byteLength).toBe(0);
    });

    test('write appends at the offset and resolves with the new durable offset; finish makes the bytes readable', async () => {
      const u = await create({ length: 12 });
      expect(await write(u, [text('hel'), text('lo')])).toBe(5);
      expect(await write(u, [])).toBe(5); // an empty body stores nothing
      expect(await write(u, [text(' '), new Uint8Array(0), text('world!')])).toBe(12);
      await expectFinished(u, text('hello world!'));
    });

    test('read with a range gives exactly those bytes (end inclusive)', async () => {
      const bytes = randomBytes(100);
      const u = await create({ length: 100 });
      await write(u, [bytes]);
      await expectFinished(u, bytes);
      for (const [start, end] of [
        [0, 0],
        [0, 9],
        [10, 99],
        [99, 99],
        [37, 62],
      ] as const) {
        expect(sha256(await read(u, { start, end }))).toBe(sha256(bytes.subarray(start, end + 1)));
      }
    });

    test('acknowledged bytes are durable: another store over the same storage continues and finishes the upload', async () => {
      const u = await create({ length: 9 });
      await write(u, [text('abc')]);
      const other = await t.reopen();
      await write(u, [text('def')], {}, other);
      await write(u, [text('ghi')]); // and back: the first store must not trust what it remembers
      await expectFinished(u, text('abcdefghi'), await t.reopen());
    });

    test('a body that errors discards the whole write and rejects; the upload goes on from where it was', async () => {
      const u = await create({ length: 9 });
      await write(u, [text('abc')]);
      const failure = new Error('client gone');
      await expect(store.write(u, body([text('XX'), text('YY')], failure), accept)).rejects.toThrow();
      expect(u.offset).toBe(3);
      await write(u, [text('defghi')]);
      await expectFinished(u, text('abcdefghi'));
    });

    test('verify runs once the body has ended; when it throws, the write is discarded and its error rethrown', async () => {
      const u = await create({ length: 6 });
      await write(u, [text('ab')]);
      const refused = new Error('checksum mismatch');
      const b = body([text('XY'), text('Z')]);
      let endedAtVerify: boolean | undefined;
      const result = store.write(u, b, {
        verify() {
          endedAtVerify = b.ended;
          throw refused;
        },
      });
      await expect(result).rejects.toBe(refused);
      expect(endedAtVerify).toBe(true);
      // An async verify is awaited the same way.
      await expect(store.write(u, body([text('XY')]), { verify: async () => Promise.reject(refused) })).rejects.toBe(refused);
      await write(u, [text('cdef')]);
      await expectFinished(u, text('abcdef'));
    });

    test('a write whose offset was never recorded is replaced by the next write from the recorded offset', async () => {
      // A server that stored bytes and crashed before recording the offset: the client resumes from
      // the offset it was told, and those bytes must not survive in between. Also when the lost
      // write had reached the length.
      const u = await create({ length: 8 });
      await write(u, [text('abc')]);
      expect(offsetOf(await store.write({ ...u }, body([text('zzz')]), accept), u)).toBe(6);
      await write(u, [text('XY')]);
      expect(offsetOf(await store.write({ ...u }, body([text('LLL')]), accept), u)).toBe(8);
      await write(u, [text('fgh')]);
      await expectFinished(u, text('abcXYfgh'));
    });

    test('a write repeated after the upload was finished in storage (its record lost) ends at the length, bytes intact', async () => {
      // The answer to the last PATCH was lost: the client sends it again, to an upload that storage
      // holds complete already.
      const u = await create({ length: 6 });
      await write(u, [text('abc')]);
      const before = { ...u };
      await write(u, [text('def')]);
      await expectFinished(u, text('abcdef'));
      expect(offsetOf(await store.write(before, body([text('def')]), accept), before)).toBe(6);
      expect(new TextDecoder().decode(await read(u))).toBe('abcdef');
    });

    test('a body cut by the signal ends the write with what it brought (the engine ends the body then)', async () => {
      const u = await create({ length: 10 });
      const controller = new AbortController();
      let sent = false;
      const cut = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (!sent) {
            sent = true;
            c.enqueue(text('abcd'));
            setTimeout(() => controller.abort(new Error('client gone')), 20);
            return;
          }
          // Silent until the cut; the engine's body then ends, as this one does.
          if (!controller.signal.aborted) await new Promise((resolve) => controller.signal.addEventListener('abort', resolve, { once: true }));
          c.close();
        },
      });
      u.offset = offsetOf(await store.write(u, cut, { ...accept, size: 10, signal: controller.signal }), u);
      expect(u.offset).toBe(4);
      await write(u, [text('efghij')]);
      await expectFinished(u, text('abcdefghij'));
    });

    test('onProgress, when told, never goes back and never passes what the body brought', async () => {
      const u = await create({ length: 3000 });
      const told: number[] = [];
      await write(u, [randomBytes(1000), randomBytes(2000)], { onProgress: (n) => told.push(n) });
      for (let i = 0; i < told.length; i++) {
        expect(told[i]!).toBeLessThanOrEqual(3000);
        if (i > 0) expect(told[i]!).toBeGreaterThanOrEqual(told[i - 1]!);
      }
    });

    test('a deferred length: bytes are written before the length is known, then declared, then finished', async () => {
      const u = await create({ length: undefined });
      await write(u, [text('abc')]);
      await write(u, [text('def')]);
      u.length = 8;
      await store.declareLength?.(u);
      await write(u, [text('gh')]);
      await expectFinished(u, text('abcdefgh'));
    });

    test('a deferred length declared by an empty write, from another store over the same storage', async () => {
      const u = await create({ length: undefined });
      await write(u, [text('abc')]);
      const other = await t.reopen();
      u.length = 3;
      await other.declareLength?.(u);
      await write(u, [], {}, other);
      await expectFinished(u, text('abc'), other);
    });

    test('concat: the final upload is the finished partials in order (one twice, one empty); the partials stay readable', async () => {
      if (!store.concat) return;
      const parts = [text('first,'), new Uint8Array(0), text('second')];
      const partials: Upload[] = [];
      for (const bytes of parts) {
        const p = await create({ length: bytes.byteLength, concat: 'partial' });
        if (bytes.byteLength) await write(p, [bytes]);
        await store.finish(p);
        partials.push(p);
      }
      const order = [partials[0]!, partials[1]!, partials[2]!, partials[0]!];
      // The engine creates nothing in storage for a final upload: concat makes it.
      const final: Upload = {
        id: newUploadId(),
        offset: 0,
        metadata: {},
        createdAt: Date.now(),
        concat: { final: order.map((p) => p.id) },
      };
      made.push(final);
      final.length = 6 + 6 + 6;
      const fields = await store.concat(final, order);
      if (fields) final.store = fields;
      final.offset = final.length;
      expect(sha256(await read(final))).toBe(sha256(text('first,secondfirst,')));
      if (store.recover) expect(await (await t.reopen()).recover!(final.id)).toMatchObject({ offset: 18, length: 18, concat: final.concat });
      expect(sha256(await read(final, { start: 3, end: 8 }))).toBe(sha256(text('st,sec')));
      for (const [i, p] of partials.entries()) expect(sha256(await read(p))).toBe(sha256(parts[i]!));
    });

    test('concat of no bytes at all gives an empty final upload', async () => {
      if (!store.concat) return;
      const p = await create({ length: 0, concat: 'partial' });
      await store.finish(p);
      const final: Upload = { id: newUploadId(), offset: 0, length: 0, metadata: {}, createdAt: Date.now(), concat: { final: [p.id] } };
      made.push(final);
      const fields = await store.concat(final, [p]);
      if (fields) final.store = fields;
      expect((await read(final)).byteLength).toBe(0);
    });

    test('remove: nothing readable or held afterwards, of an unfinished, a finished and an empty upload; removing again succeeds', async () => {
      const unfinished = await create({ length: 10 });
      await write(unfinished, [text('abc')]);
      const finished = await create({ length: 3 });
      await write(finished, [text('abc')]);
      await store.finish(finished);
      const empty = await create({ length: 5 });
      for (const u of [unfinished, finished, empty]) {
        if (t.held) expect((await t.held(u.id)).length).toBeGreaterThan(0);
        await store.remove(u);
        await expectUnreadable(u);
        if (t.held) expect(await t.held(u.id)).toEqual([]);
        await store.remove(u); // idempotent: a retry after a failure later in a termination
        await (await t.reopen()).remove(u);
      }
    });

    test('remove of a concatenated final upload leaves its partials as they are', async () => {
      if (!store.concat) return;
      const p = await create({ length: 4, concat: 'partial' });
      await write(p, [text('abcd')]);
      await store.finish(p);
      const final: Upload = {
        id: newUploadId(),
        offset: 8,
        length: 8,
        metadata: {},
        createdAt: Date.now(),
        concat: { final: [p.id, p.id] },
      };
      made.push(final);
      const fields = await store.concat(final, [p, p]);
      if (fields) final.store = fields;
      expect(new TextDecoder().decode(await read(final))).toBe('abcdabcd');
      await store.remove(final);
      await expectUnreadable(final);
      if (t.held) expect(await t.held(final.id)).toEqual([]);
      expect(new TextDecoder().decode(await read(p))).toBe('abcd');
    });

    describe('optional capabilities, where the store has them', () => {
      test('check resolves on a reachable store and rejects on an unreachable one', async () => {
        if (!store.check) return;
        await store.check();
        const broken = await t.unreachable?.();
        if (broken) await expect(broken.check!()).rejects.toThrow();
      });

      test('stale lists unfinished uploads started before the time given, and no others', async () => {
        if (!store.stale) return;
        const unfinished = await create({ length: 10 });
        await write(unfinished, [text('abc')]);
        const finished = await create({ length: 3 });
        await write(finished, [text('abc')]);
        await store.finish(finished);
        const ids = async (before: number) => {
          const found: string[] = [];
          for await (const u of store.stale!(before)) found.push(u.id);
          return found;
        };
        const later = await ids(Date.now() + 60_000);
        expect(later).toContain(unfinished.id);
        expect(later).not.toContain(finished.id);
        expect(await ids(unfinished.createdAt - 60_000)).not.toContain(unfinished.id);
        // What stale yields is enough to remove the upload.
        const found = [];
        for await (const u of store.stale(Date.now() + 60_000)) if (u.id === unfinished.id) found.push(u);
        await store.remove({ ...unfinished, store: found[0]!.store });
        expect(await ids(Date.now() + 60_000)).not.toContain(unfinished.id);
      });

      test('recover rebuilds the record from storage alone: offset, length, metadata, owner, key, concatenation role', async () => {
        if (!store.recover) return;
        expect(await store.recover(newUploadId())).toBeUndefined();
        const u = await create({
          length: 9,
          metadata: { filename: 'ä b.txt', empty: null },
          owner: 'user-7',
          key: `k/${newUploadId()}.bin`,
          concat: 'partial',
        });
        const fresh = await (await t.reopen()).recover!(u.id);
        expect(fresh).toMatchObject({
          id: u.id,
          offset: 0,
          length: 9,
          metadata: u.metadata,
          createdAt: u.createdAt,
          owner: 'user-7',
          key: u.key,
          concat: 'partial',
        });
        await write(u, [text('abc')]);
        await write(u, [text('def')]);
        expect((await (await t.reopen()).recover!(u.id))?.offset).toBe(6);
        // A write that failed does not count.
        await expect(store.write(u, body([text('XYZ')], new Error('cut')), accept)).rejects.toThrow();
        expect((await (await t.reopen()).recover!(u.id))?.offset).toBe(6);
        await write(u, [text('ghi')]);
        await store.finish(u);
        const done = await (await t.reopen()).recover!(u.id);
        expect(done).toMatchObject({ offset: 9, length: 9 });
        expect(done?.finishedAt).toBeNumber();
        await store.remove(u);
        expect(await store.recover(u.id)).toBeUndefined();
      });

      test('recover keeps a length declared after creation', async () => {
        if (!store.recover) return;
        const u = await create({ length: undefined });
        await write(u, [text('abc')]);
        expect((await store.recover(u.id))?.length).toBeUndefined();
        u.length = 5;
        await store.declareLength?.(u);
        const found = await (await t.reopen()).recover!(u.id);
        expect(found).toMatchObject({ offset: 3, length: 5 });
      });

      test('keyInUse: true while an upload is at the key (unfinished or finished), false before and after', async () => {
        if (!store.keyInUse) return;
        const key = `users/7/${newUploadId()} a.bin`;
        expect(await store.keyInUse(key)).toBe(false);
        const u = await create({ length: 3, key });
        expect(await store.keyInUse(key)).toBe(true);
        expect(await store.keyInUse(`${key}x`)).toBe(false);
        expect(await store.keyInUse(key.slice(0, -1))).toBe(false);
        await write(u, [text('abc')]);
        await store.finish(u);
        expect(await (await t.reopen()).keyInUse!(key)).toBe(true);
        expect(new TextDecoder().decode(await read(u))).toBe('abc');
        await store.remove(u);
        expect(await store.keyInUse(key)).toBe(false);
      });
    });

    // Stores that cut uploads into parts: bodies that start, end and fail around a part boundary.
    const part = kind.partSize;
    if (part !== undefined) {
      describe(`around a part boundary (${part} bytes)`, () => {
        test('writes cut anywhere around the boundaries: bytes intact, ranges across a boundary', async () => {
          const bytes = randomBytes(2 * part + 10);
          const u = await create({ length: bytes.byteLength });
          const cuts = [part - 1, part + 1, part + 2, 2 * part + 3, 2 * part + 10];
          let at = 0;
          for (const [i, end] of cuts.entries()) {
            // Every other write says its size (parts may then stream as they arrive).
            const size = i % 2 === 0 ? end - at : undefined;
            expect(await write(u, [bytes.subarray(at, end)], { size }, i === 2 ? await t.reopen() : store)).toBe(end);
            at = end;
          }
          await expectFinished(u, bytes);
          for (const [start, end] of [
            [part - 3, part + 2],
            [part, part],
            [part - 1, 2 * part],
            [2 * part, 2 * part + 9],
          ] as const) {
            expect(sha256(await read(u, { start, end }))).toBe(sha256(bytes.subarray(start, end + 1)));
          }
        });

        test('a body that errors after filling a part discards all of it (a record rebuilt from storage agrees)', async () => {
          const bytes = randomBytes(part + 200);
          const u = await create({ length: bytes.byteLength });
          await write(u, [bytes.subarray(0, 100)]);
          await expect(store.write(u, body([bytes.subarray(100, part + 50)], new Error('cut')), accept)).rejects.toThrow();
          expect(u.offset).toBe(100);
          if (store.recover) expect((await (await t.reopen()).recover!(u.id))?.offset).toBe(100);
          await write(u, [bytes.subarray(100)], { size: bytes.byteLength - 100 });
          await expectFinished(u, bytes);
        });

        test('with onDurable, a body that errors keeps what was reported durable and discards the rest (a rebuild agrees)', async () => {
          const bytes = randomBytes(3 * part + 200);
          const u = await create({ length: bytes.byteLength });
          await write(u, [bytes.subarray(0, 100)]);
          let durable = 0;
          const options: WriteOptions = { verify() {}, onDurable: (n) => void (durable = Math.max(durable, n)) };
          await expect(store.write(u, body([bytes.subarray(100, 2 * part + 50)], new Error('cut')), options)).rejects.toThrow();
          // S3: the two whole parts (the first carries the 100 bytes before); the file store syncs by time and size.
          if (kind.name.startsWith('s3')) expect(durable).toBe(2 * part - 100);
          expect(durable).toBeLessThanOrEqual(2 * part - 50);
          const kept = 100 + durable;
          if (store.recover) expect((await (await t.reopen()).recover!(u.id))?.offset).toBe(kept);
          u.offset = kept;
          await write(u, [bytes.subarray(kept)]);
          await expectFinished(u, bytes);
        });

        test('verify throwing after whole parts were sent discards them', async () => {
          const bytes = randomBytes(2 * part + 1);
          const u = await create({ length: bytes.byteLength });
          const refused = new Error('checksum mismatch');
          await expect(store.write(u, body([bytes.subarray(0, 2 * part)]), { verify: () => Promise.reject(refused) })).rejects.toBe(refused);
          if (store.recover) expect((await (await t.reopen()).recover!(u.id))?.offset).toBe(0);
          await write(u, [bytes]);
          await expectFinished(u, bytes);
        });

        test('concat of partials larger than a part, and small ones between them', async () => {
          if (!store.concat) return;
          const parts = [randomBytes(part + 1), randomBytes(7), randomBytes(part)];
          const partials: Upload[] = [];
          for (const bytes of parts) {
            const p = await create({ length: bytes.byteLength, concat: 'partial' });
            await write(p, [bytes]);
            await store.finish(p);
            partials.push(p);
          }
          const total = parts.reduce((n, p) => n + p.byteLength, 0);
          const final: Upload = {
            id: newUploadId(),
            offset: total,
            length: total,
            metadata: {},
            createdAt: Date.now(),
            concat: { final: partials.map((p) => p.id) },
          };
          made.push(final);
          const fields = await store.concat(final, partials);
          if (fields) final.store = fields;
          const all = join(...parts);
          expect(sha256(await read(final))).toBe(sha256(all));
          expect(sha256(await read(final, { start: part - 2, end: part + 9 }))).toBe(sha256(all.subarray(part - 2, part + 10)));
        });
      });
    }
  });
}
