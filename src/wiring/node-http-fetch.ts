/**
 * The S3 client's fetch over node:http and node:https, for Deno and Node: their own fetch copies a
 * byte body whole before sending it (Deno: 1.55 CPU s/GiB on loopback, against 0.36 here) and sends
 * a stream chunked, which S3 refuses. Here bytes and streams go to the socket as they are, with the
 * Content-Length the caller gave, so a part is sent from its slabs without being joined or copied.
 * It does only what the S3 client asks of a fetch: a URL, a method, headers, a body of bytes, a
 * string or a stream, an abort signal; the answer's body streams. A request without a body (a
 * download, a listing) goes through the runtime's fetch, whose answers stream with backpressure:
 * node:http's, made a web stream by `Readable.toWeb`, were read ahead whole on Deno (64 segment
 * reads at once took 177 MiB more than through fetch).
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type { S3Features } from './env-stores.ts';
import { nodeSha256 } from './node-sha256.ts';

type Fetch = NonNullable<S3Features['fetch']>;

/** Proxy settings that only the runtime's fetch honours (Deno's does; node:http does not). */
const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'];

/**
 * What a Node or Deno server gives the S3 store: node:crypto's SHA-256, and S3 requests through
 * node:http, parts streamed from their slabs — unless the environment sets a proxy, which only the
 * runtime's fetch goes through, or this is Deno Deploy (DENO_DEPLOYMENT_ID), whose documentation
 * names fetch for outbound HTTP.
 */
export function nodeS3Features(vars: Record<string, string | undefined>): S3Features {
  if (vars.DENO_DEPLOYMENT_ID || PROXY_VARS.some((name) => vars[name])) return { sha256: nodeSha256 };
  return { sha256: nodeSha256, streamParts: true, fetch: nodeHttpFetch() };
}

export function nodeHttpFetch(): Fetch {
  // Connections are kept for the next request, as fetch keeps them.
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  return (input, init = {}) => {
    const body = init.body;
    if (body === undefined || body === null) return globalThis.fetch(input, init);
    return new Promise<Response>((resolve, reject) => {
      if (input instanceof Request) throw new TypeError('nodeHttpFetch takes a URL, not a Request');
      const url = new URL(input);
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason);
      const method = init.method ?? 'GET';
      const secure = url.protocol === 'https:';
      const request = (secure ? https : http).request(
        url,
        { method, headers: Object.fromEntries(new Headers(init.headers)), agent: secure ? agents.https : agents.http },
        (res) => {
          // A throw here would be uncaught (node:http's event): whatever the answer, the call fails instead.
          try {
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 599) throw new Error(`S3 answered with status ${status}`);
            const headers = new Headers();
            for (const [name, value] of Object.entries(res.headers)) for (const v of [value ?? []].flat()) headers.append(name, v);
            const empty = status === 204 || status === 205 || status === 304;
            if (empty) res.resume();
            const answer = empty ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
            resolve(new Response(answer, { status, statusText: res.statusMessage, headers }));
          } catch (error) {
            request.destroy(error instanceof Error ? error : new Error(String(error)));
          }
        },
      );
      // An abort ends the request, or the answer's body if it came first.
      const onAbort = () => request.destroy(signal?.reason instanceof Error ? signal.reason : new Error(String(signal?.reason)));
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('close', () => signal?.removeEventListener('abort', onAbort));
      request.on('error', reject);
      void writeBody(request, body).catch((error: unknown) => request.destroy(error instanceof Error ? error : new Error(String(error))));
    });
  };
}

async function writeBody(request: http.ClientRequest, body: NonNullable<RequestInit['body']>): Promise<void> {
  if (typeof body === 'string' || body instanceof Uint8Array) return void request.end(body);
  if (body instanceof ArrayBuffer) return void request.end(new Uint8Array(body));
  if (!(body instanceof ReadableStream)) throw new TypeError('nodeHttpFetch sends bytes, strings and streams only');
  // The caller's Content-Length header keeps the request from being chunked.
  for await (const chunk of body as ReadableStream<Uint8Array>) {
    if (request.destroyed) return; // leaving the loop cancels the stream
    if (!request.write(chunk)) await drained(request);
  }
  if (!request.destroyed) request.end();
}

/** Resolves when the socket takes writes again, or the request is gone. */
function drained(request: http.ClientRequest): Promise<void> {
  return new Promise((done) => {
    const finish = () => {
      request.off('drain', finish);
      request.off('close', finish);
      done();
    };
    request.on('drain', finish);
    request.on('close', finish);
  });
}
