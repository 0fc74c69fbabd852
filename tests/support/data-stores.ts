// The data stores that the DataStore contract (tests/storage/contract.test.ts) and the protocol
// conformance suite (tests/protocol/conformance.test.ts) run against, as state-stores.ts has the
// state stores. What a test needs to see past the DataStore interface (what storage holds of an
// upload) is answered here, once per store, so the suites themselves stay store-neutral.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TusflowOptions } from '../../src/index.ts';
import { FileDataStore } from '../../src/storage/file/store.ts';
import { MemoryDataStore } from '../../src/storage/memory.ts';
import type { Fetch, S3Client } from '../../src/storage/s3/client.ts';
import { nodeHttpFetch } from '../../src/wiring/node-http-fetch.ts';
import type { DataStore } from '../../src/storage/types.ts';
import { makeS3Store, startS3Server } from './s3-server.ts';
import { startServer, type TestServer } from './server.ts';

const MiB = 1024 * 1024;

export interface StoreUnderTest {
  store: DataStore;
  /** Another store over the same storage: what a restarted server, or another instance, sees. */
  reopen(): Promise<DataStore>;
  /**
   * The names storage holds for an upload (files, objects, multipart uploads), read past the
   * interface; absent where storage cannot be looked into (memory).
   */
  held?(id: string): Promise<string[]>;
  /** A store of this kind whose storage cannot be reached, for `check`. */
  unreachable?(): Promise<DataStore>;
  /** Frees what the store's storage holds (a temp dir; S3 buckets stay, emptied by the tests). */
  dispose(): Promise<void>;
}

export interface DataKind {
  name: 'memory' | 'file' | 's3' | 's3 over node:http';
  /** Stores that cut uploads into parts of this size: some tests cross a part boundary. */
  partSize?: number;
  make(): Promise<StoreUnderTest>;
}

/** What an S3 bucket holds of an upload: objects under its key, and multipart uploads at it. */
async function heldInBucket(client: S3Client, id: string): Promise<string[]> {
  const names: string[] = [];
  for await (const object of client.listObjects(id)) names.push(object.key);
  for await (const upload of client.listMultipartUploads(id)) names.push(`${upload.key} (multipart upload)`);
  return names.sort();
}

/** Names in a data dir that belong to an upload (its bytes, and the file state store's record). */
async function heldInDir(dir: string, id: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith(id) && !name.endsWith('.tmp')).sort();
}

export const DATA_KINDS: DataKind[] = [
  {
    name: 'memory',
    async make() {
      const store = new MemoryDataStore();
      return { store, reopen: async () => store, dispose: async () => {} };
    },
  },
  {
    name: 'file',
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'tusflow-data-'));
      return {
        store: new FileDataStore(dir),
        reopen: async () => new FileDataStore(dir),
        held: (id) => heldInDir(dir, id),
        async unreachable() {
          // A directory under a regular file can never be made (root may write anywhere else).
          const file = join(dir, 'not-a-dir');
          await writeFile(file, '');
          return new FileDataStore(join(file, 'uploads'));
        },
        dispose: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  s3Kind('s3'),
  // The fetch Deno and Node send S3 requests with (parts from their slabs, streams with their length).
  s3Kind('s3 over node:http', nodeHttpFetch()),
];

/** The S3 store on the test radosgw, its requests sent with `fetch` (default: the runtime's). */
function s3Kind(name: DataKind['name'], fetch?: Fetch): DataKind {
  return {
    name,
    partSize: 5 * MiB,
    async make() {
      // Small part buffers: the tests hold a few parts at most.
      const options = { partSize: 5 * MiB, parallelParts: 2, bufferMemory: 16 * MiB, fetch };
      const { bucket, client, store } = await makeS3Store(options);
      return {
        store,
        // A store of its own (its own tail cache): what it continues, it reads back from S3.
        reopen: async () => (await makeS3Store({ ...options, bucket })).store,
        held: (id) => heldInBucket(client, id),
        unreachable: async () => (await makeS3Store({ ...options, bucket: `${bucket}-missing` })).store,
        dispose: async () => {},
      };
    },
  };
}

/** A test server on one kind of data store, and what its storage holds. */
export interface StoreServer extends TestServer {
  /**
   * Every name storage holds (files of the data dir; S3 objects and multipart uploads), to tell
   * that a request created or left nothing.
   */
  held(): Promise<string[]>;
  /** The names storage holds for one upload. */
  heldOf(id: string): Promise<string[]>;
}

export interface ServerKind {
  name: 'file' | 's3';
  /** The largest upload the store can hold, when it has a limit of its own. */
  largestUpload?: number;
  /**
   * The store's downloads are streams, which Bun.serve sends chunked, dropping the Content-Length
   * the handler sets (oven-sh/bun#10507); a Blob (the file store) keeps it.
   */
  streamedDownloads?: boolean;
  start(options?: TusflowOptions): Promise<StoreServer>;
}

export const SERVER_KINDS: ServerKind[] = [
  {
    name: 'file',
    async start(options) {
      const server = await startServer(options);
      const all = async () => (await readdir(server.dataDir)).filter((name) => !name.endsWith('.tmp')).sort();
      return { ...server, held: all, heldOf: (id) => heldInDir(server.dataDir, id) };
    },
  },
  {
    name: 's3',
    largestUpload: 5 * 1024 * MiB * 1024, // an S3 object ends at 5 TiB
    streamedDownloads: true,
    async start(options) {
      const server = await startS3Server(options);
      return { ...server, held: () => heldInBucket(server.client, ''), heldOf: (id) => heldInBucket(server.client, id) };
    },
  },
];
