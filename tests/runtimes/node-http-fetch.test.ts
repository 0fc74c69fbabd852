/**
 * The fetch Deno and Node send S3 requests with (src/wiring/node-http-fetch.ts), against a loopback
 * server that reports what it received: bodies arrive whole and with their Content-Length (never
 * chunked), answers come back as fetch gives them, an abort ends a request wherever it is, and a
 * request without a body is left to the runtime's fetch.
 * The S3 store's whole contract also runs through it (tests/storage/contract.test.ts).
 */
import { afterAll, expect, test } from 'bun:test';
import { nodeHttpFetch, nodeS3Features } from '../../src/wiring/node-http-fetch.ts';
import { randomBytes, sha256 } from '../support/server.ts';

const fetchOverNode = nodeHttpFetch();
/** Requests whose body ended early, seen by the server. */
let cutBodies = 0;
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  idleTimeout: 0,
  maxRequestBodySize: 2 ** 40,
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === '/empty')
      return new Response(null, {
        status: 204,
        headers: [
          ['x-a', '1'],
          ['x-a', '2'],
        ],
      });
    if (path === '/reset') return new Response(null, { status: 205 });
    if (path === '/refuse') return new Response('<Error><Code>AccessDenied</Code></Error>', { status: 403 });
    if (path === '/silent') return new Promise<Response>(() => {});
    if (path === '/slow-answer') {
      return new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('first bytes')) }), { status: 200 });
    }
    let size = 0;
    const hash = new Bun.CryptoHasher('sha256');
    try {
      for await (const chunk of request.body ?? []) {
        size += chunk.byteLength;
        hash.update(chunk);
      }
    } catch {
      cutBodies++;
      return new Response('cut', { status: 400 });
    }
    return Response.json({
      agent: request.headers.get('user-agent'),
      method: request.method,
      size,
      sha256: hash.digest('hex'),
      contentLength: request.headers.get('content-length'),
      chunked: request.headers.get('transfer-encoding'),
      signed: request.headers.get('authorization'),
    });
  },
});
afterAll(() => server.stop(true));
const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;

test('a byte body and a stream with its Content-Length arrive whole, not chunked; headers go as given', async () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 7);
  const direct = await (await fetchOverNode(url('/echo'), { method: 'PUT', body: bytes, headers: { Authorization: 'AWS4 x' } })).json();
  expect(direct).toEqual({
    agent: null,
    method: 'PUT',
    size: bytes.byteLength,
    sha256: sha256(bytes),
    contentLength: String(bytes.byteLength),
    chunked: null,
    signed: 'AWS4 x',
  });

  const views = [bytes.subarray(0, 1000), bytes.subarray(1000, 2 * 1024 * 1024), bytes.subarray(2 * 1024 * 1024)];
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      const next = views.shift();
      if (next) c.enqueue(next);
      else c.close();
    },
  });
  const headers = new Headers({ 'Content-Length': String(bytes.byteLength) });
  const streamed = await (await fetchOverNode(url('/echo'), { method: 'PUT', body: stream, headers })).json();
  expect(streamed).toMatchObject({ size: bytes.byteLength, sha256: sha256(bytes), contentLength: String(bytes.byteLength), chunked: null });

  const text = await (await fetchOverNode(url('/echo'), { method: 'POST', body: '<Complete/>' })).json();
  expect(text).toMatchObject({ method: 'POST', size: 11, contentLength: '11' });
});

test('answers: an error status with its text, a 204 and a 205 with no body, repeated headers', async () => {
  const refused = await fetchOverNode(url('/refuse'), { method: 'PUT', body: new Uint8Array(10) });
  expect(refused.status).toBe(403);
  expect(refused.ok).toBe(false);
  expect(await refused.text()).toContain('AccessDenied');

  const empty = await fetchOverNode(url('/empty'), { method: 'POST', body: '<Delete/>' });
  expect(empty.status).toBe(204);
  expect(empty.body).toBeNull();
  expect(empty.headers.get('x-a')).toBe('1, 2');

  // A status whose Response cannot have a body: answered, not thrown out of node:http's event.
  const reset = await fetchOverNode(url('/reset'), { method: 'PUT', body: 'x' });
  expect([reset.status, reset.body]).toEqual([205, null]);
});

test("a request without a body (a download, a listing) goes through the runtime's fetch, whose answers stream with backpressure", async () => {
  const got = await (await fetchOverNode(url('/echo'), { method: 'GET' })).json();
  expect(got.agent).toStartWith('Bun/');
  const head = await fetchOverNode(url('/echo'), { method: 'HEAD' });
  expect([head.status, await head.text()]).toEqual([200, '']);
});

test('an abort ends the request wherever it is: while the body is sent, before an answer, while the answer is read', async () => {
  // While sending: the stream stops being read and is cancelled; the server sees the body cut.
  let cancelled = false;
  const sending = new AbortController();
  const endless = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new Uint8Array(64 * 1024)),
    cancel: () => void (cancelled = true),
  });
  const before = cutBodies;
  setTimeout(() => sending.abort(new Error('deadline')), 100);
  const started = performance.now();
  const cut = fetchOverNode(url('/echo'), { method: 'PUT', body: endless, headers: { 'Content-Length': String(1 << 30) }, signal: sending.signal });
  await expect(cut).rejects.toThrow('deadline');
  expect(performance.now() - started).toBeLessThan(2_000);
  await Bun.sleep(100);
  expect(cancelled).toBe(true);
  expect(cutBodies).toBe(before + 1);

  // Before any answer.
  const waiting = new AbortController();
  setTimeout(() => waiting.abort(new Error('no answer')), 100);
  await expect(fetchOverNode(url('/silent'), { method: 'PUT', body: 'x', signal: waiting.signal })).rejects.toThrow('no answer');

  // After the headers: the answer's body fails instead of hanging.
  const reading = new AbortController();
  const answer = await fetchOverNode(url('/slow-answer'), { method: 'PUT', body: 'x', signal: reading.signal });
  expect(answer.status).toBe(200);
  setTimeout(() => reading.abort(new Error('gave up')), 100);
  await expect(answer.text()).rejects.toThrow();

  // Already aborted: nothing is sent.
  await expect(fetchOverNode(url('/echo'), { method: 'PUT', body: 'x', signal: AbortSignal.abort(new Error('early')) })).rejects.toThrow('early');
});

test("the servers use it unless the environment sets a proxy (only the runtime's fetch goes through one) or is Deno Deploy's", () => {
  expect(nodeS3Features({})).toMatchObject({ streamParts: true, fetch: expect.any(Function) });
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'DENO_DEPLOYMENT_ID']) {
    const features = nodeS3Features({ [name]: 'http://127.0.0.1:3128' });
    expect([name, features.fetch, features.streamParts]).toEqual([name, undefined, undefined]);
    expect(features.sha256).toBeDefined();
  }
});
