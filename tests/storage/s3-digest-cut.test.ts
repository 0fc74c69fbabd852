import { afterAll, beforeAll, expect, test } from 'bun:test';
import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import { createUpload, randomBytes, sha256, TUS } from '../support/server.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

// UploadParts answer only once the gate opens: the part sent stays in memory meanwhile, so with a
// budget of one part the next part waits for memory.
let gate: Promise<void> | undefined;
const gatedFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const request = new Request(input, init);
  const response = await fetch(request);
  if (request.method === 'PUT' && new URL(request.url).searchParams.has('partNumber')) await gate;
  return response;
};

let server: S3TestServer;
beforeAll(async () => {
  server = await startS3Server({ partSize: PART, bufferMemory: PART, fetch: gatedFetch });
}, 120_000);
afterAll(() => server?.stop());

const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);

/** A PATCH over a raw socket that sends `pieces` with a pause after each, then drops the connection. */
function sendPiecesThenDrop(url: string, headers: Record<string, string>, length: number, pieces: Uint8Array[]): Promise<void> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, async () => {
      const head = [`PATCH ${pathname} HTTP/1.1`, `Host: ${hostname}:${port}`, `Content-Length: ${length}`]
        .concat(Object.entries(headers).map(([k, v]) => `${k}: ${v}`))
        .join('\r\n');
      socket.write(`${head}\r\n\r\n`);
      for (const piece of pieces) {
        socket.write(piece);
        await Bun.sleep(400);
      }
      socket.destroy();
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

test('a body cut while it waits for memory in the middle of a chunk keeps the digest state at the offset stored: the upload completes with its Repr-Digest', async () => {
  let open!: () => void;
  gate = new Promise<void>((resolve) => (open = resolve));
  const bytes = randomBytes(2 * PART);
  const digest = createHash('sha256').update(bytes).digest('base64');
  const url = await createUpload(server.endpoint, { 'Upload-Length': String(bytes.length), 'Repr-Digest': `sha-256=:${digest}:` });
  // A part less 1000 bytes, then 2000 bytes in one chunk: the first 1000 fill the part (sent, held
  // in memory by the gate), the rest wait for memory, and the client goes away meanwhile.
  await sendPiecesThenDrop(url, { ...PATCH, 'Upload-Offset': '0' }, bytes.length, [bytes.subarray(0, PART - 1000), bytes.subarray(PART - 1000, PART + 1000)]);
  await Bun.sleep(1_000); // the server notices the client left while the wait goes on
  open();
  let offset = -1;
  for (let tries = 0; tries < 50; tries++) {
    const head = await fetch(url, { method: 'HEAD', headers: TUS });
    offset = Number(head.headers.get('Upload-Offset'));
    if (offset > 0) break;
    await Bun.sleep(100);
  }
  expect(offset).toBe(PART);
  const rest = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(offset) }, body: bytes.subarray(offset) });
  expect([rest.status, await rest.text()]).toEqual([204, '']);
  expect(sha256((await server.object(idOf(url)))!)).toBe(sha256(bytes));
}, 30_000);
