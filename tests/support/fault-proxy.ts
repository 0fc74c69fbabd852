/**
 * A fault-injecting HTTP proxy in front of the test S3 server (radosgw). It forwards each request
 * with its Host header unchanged (so SigV4 signatures stay valid: point the S3 client's endpoint at
 * the proxy), and with a seeded RNG it:
 *
 *  - answers some requests itself with 500, 503, or 503 and an S3 `SlowDown` XML error;
 *  - resets some connections mid-request: reads part of the request body, then drops the connection
 *    (nothing reaches S3);
 *  - loses some responses: forwards the request (it takes effect in S3), then drops the connection
 *    instead of answering;
 *  - cuts some response bodies part-way (headers and the first half sent, then the stream errors);
 *  - delays some requests before forwarding them;
 *  - (injected only) corrupts a request body: one byte in its middle flipped on the way to S3, as a
 *    broken proxy or NIC would, the headers (signature, digest, length) left as they were.
 *
 * `setDown('refuse')` closes the listening socket (connections are refused: S3 is down), and
 * `setDown('hang')` accepts requests and never answers them; `setDown(false)` restores service on
 * the same port. `inject(op, fault)` queues a fault for the next request of one S3 operation, for
 * deterministic tests.
 *
 * It counts what it saw: requests by operation, faults by kind, and retries — a request identical
 * (method, path and query) to one that just got a fault — with the longest run of faulted attempts
 * of one request, so tests can check the server's retries are bounded.
 */
import { seededRng, type Rng } from './rng.ts';

export type FaultKind = 'error500' | 'error503' | 'slowDown' | 'resetRequest' | 'lostResponse' | 'truncateResponse' | 'corruptBody';

export interface FaultOptions {
  seed: number;
  /** Chance of answering 500, 503 or 503 SlowDown without forwarding. Default 0.07. */
  errorRate?: number;
  /** Chance of reading part of the request body and then dropping the connection. Default 0.02. */
  resetRate?: number;
  /** Chance of forwarding and then dropping the connection instead of answering. Default 0.01. */
  lostResponseRate?: number;
  /** Chance of cutting a (non-empty) response body part-way. Default 0.01. */
  truncateRate?: number;
  /** Chance of delaying a request by up to `maxDelayMs` before forwarding it. Default 0.1, 250 ms. */
  delayRate?: number;
  maxDelayMs?: number;
  /** S3 operations never given a fault that takes effect upstream (lostResponse, truncateResponse). */
  spare?: string[];
}

export interface FaultStats {
  requests: number;
  byOperation: Record<string, number>;
  faults: Record<string, number>;
  /** Requests identical to one that had just been given a fault. */
  retries: number;
  /** The longest run of faulted attempts of one request. */
  longestFaultRun: number;
  delayed: number;
  /** Requests that arrived while the proxy was hanging (setDown('hang')). */
  hung: number;
}

export interface FaultProxy {
  /** e.g. http://127.0.0.1:PORT — use as the S3 endpoint. */
  endpoint: string;
  stats: FaultStats;
  /** The last 500 faults: operation, request path and query, kind. */
  log: { op: string; request: string; fault: FaultKind }[];
  /** Random faults on or off (injected ones still apply). */
  setFaults(on: boolean): void;
  /** The next request of `operation` (e.g. 'CompleteMultipartUpload') gets `fault`. */
  inject(operation: string, fault: FaultKind): void;
  /** The headers of the last request of each operation, as they reached the proxy. */
  lastHeaders: Record<string, Headers>;
  /** What S3 answered each corrupted body (status and error code), in order. */
  corrupted: { op: string; status: number; code: string }[];
  setDown(mode: 'refuse' | 'hang' | false): Promise<void>;
  stop(): Promise<void>;
}

/** Sends `request` on to `upstream` unchanged, Host header included (SigV4 signatures stay valid). */
export function forward(request: Request, url: URL, upstream: URL): Promise<Response> {
  url.protocol = upstream.protocol;
  url.host = upstream.host;
  return fetch(url, { method: request.method, headers: request.headers, body: request.body, duplex: 'half', decompress: false } as RequestInit);
}

/** How a request's body came: `chunked`, with its `content-length`, or `none`. */
export const framingOf = (headers: Headers): string => headers.get('transfer-encoding') ?? (headers.has('content-length') ? 'content-length' : 'none');

/**
 * A proxy in front of S3 on loopback that shows `see` every request with a body, then forwards it
 * unchanged: for tests of how a runtime sends its bodies (AWS S3 refuses a chunked one).
 */
export function watchingProxy(upstream: string, see: (request: Request, url: URL) => void): ReturnType<typeof Bun.serve> {
  const target = new URL(upstream);
  return Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    fetch(request) {
      const url = new URL(request.url);
      if (request.body) see(request, url);
      return forward(request, url, target);
    },
  });
}

/** The S3 operation a request is (also used by the benchmark's counting proxy). */
export function operationOf(method: string, url: URL, headers: Headers): string {
  const q = url.searchParams;
  if (method === 'POST' && q.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'PUT' && q.has('partNumber')) return headers.has('x-amz-copy-source') ? 'UploadPartCopy' : 'UploadPart';
  if (method === 'POST' && q.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'DELETE' && q.has('uploadId')) return 'AbortMultipartUpload';
  if (method === 'GET' && q.has('uploadId')) return 'ListParts';
  if (method === 'GET' && q.has('uploads')) return 'ListMultipartUploads';
  if (method === 'GET' && q.has('list-type')) return 'ListObjectsV2';
  if (method === 'POST' && q.has('delete')) return 'DeleteObjects';
  if (url.pathname.split('/').filter(Boolean).length <= 1 && method === 'HEAD') return 'HeadBucket';
  return { PUT: 'PutObject', GET: 'GetObject', HEAD: 'HeadObject', DELETE: 'DeleteObject' }[method] ?? method;
}

const SLOW_DOWN =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>';

/** A response whose body errors before anything is sent: the client sees the connection reset. */
const reset = () => new Response(new ReadableStream({ start: (c) => c.error() }));

export async function startFaultProxy(target: string, options: FaultOptions): Promise<FaultProxy> {
  const upstream = new URL(target);
  const rng: Rng = seededRng(options.seed);
  const o = {
    errorRate: 0.07,
    resetRate: 0.02,
    lostResponseRate: 0.01,
    truncateRate: 0.01,
    delayRate: 0.1,
    maxDelayMs: 250,
    ...options,
  };
  const spare = new Set(o.spare ?? []);
  const stats: FaultStats = { requests: 0, byOperation: {}, faults: {}, retries: 0, longestFaultRun: 0, delayed: 0, hung: 0 };
  const lastHeaders: Record<string, Headers> = {};
  const corrupted: FaultProxy['corrupted'] = [];
  const runs = new Map<string, number>(); // request signature → faulted attempts in a row
  const injected = new Map<string, FaultKind[]>();
  const log: FaultProxy['log'] = [];
  let faultsOn = true;
  let hanging: { promise: Promise<void>; release(): void } | undefined;

  const pickFault = (op: string): FaultKind | undefined => {
    const queued = injected.get(op)?.shift();
    if (queued) return queued;
    if (!faultsOn) return undefined;
    const r = rng.next();
    let edge = o.errorRate;
    if (r < edge) return rng.pick(['error500', 'error503', 'slowDown'] as const);
    if (r < (edge += o.resetRate)) return 'resetRequest';
    if (spare.has(op)) return undefined;
    if (r < (edge += o.lostResponseRate)) return 'lostResponse';
    if (r < (edge += o.truncateRate)) return 'truncateResponse';
    return undefined;
  };

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const op = operationOf(request.method, url, request.headers);
    const signature = `${request.method} ${url.pathname}${url.search}`;
    stats.requests++;
    stats.byOperation[op] = (stats.byOperation[op] ?? 0) + 1;
    lastHeaders[op] = new Headers(request.headers);
    if ((runs.get(signature) ?? 0) > 0) stats.retries++;

    if (hanging) {
      stats.hung++;
      await hanging.promise;
      return reset();
    }
    const fault = pickFault(op);
    const delay = faultsOn && rng.chance(o.delayRate) ? rng.int(1, o.maxDelayMs) : 0;
    const faulted = () => {
      stats.faults[fault!] = (stats.faults[fault!] ?? 0) + 1;
      log.push({ op, request: signature, fault: fault! });
      if (log.length > 500) log.shift();
      const run = (runs.get(signature) ?? 0) + 1;
      runs.set(signature, run);
      stats.longestFaultRun = Math.max(stats.longestFaultRun, run);
    };

    switch (fault) {
      case 'error500':
      case 'error503':
      case 'slowDown': {
        await request.arrayBuffer().catch(() => {}); // as S3 does: the body is read, then refused
        faulted();
        if (fault === 'slowDown') return new Response(SLOW_DOWN, { status: 503, headers: { 'Content-Type': 'application/xml' } });
        return new Response(null, { status: fault === 'error500' ? 500 : 503 });
      }
      case 'resetRequest': {
        // Read some of the body (when there is one), then drop the connection.
        const reader = request.body?.getReader();
        if (reader) {
          const stopAt = rng.int(0, 256 * 1024);
          for (let read = 0; read <= stopAt; ) {
            const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
            if (done) break;
            read += value?.byteLength ?? 0;
          }
          reader.cancel().catch(() => {});
        }
        faulted();
        return reset();
      }
    }

    if (delay > 0) {
      stats.delayed++;
      await Bun.sleep(delay);
    }
    if (fault === 'corruptBody') {
      const body = new Uint8Array(await request.arrayBuffer());
      if (body.byteLength > 0) body[body.byteLength >> 1]! ^= 0x01;
      faulted();
      url.protocol = upstream.protocol;
      url.host = upstream.host;
      const answer = await fetch(url, { method: request.method, headers: request.headers, body, decompress: false } as RequestInit);
      const text = await answer.text();
      corrupted.push({ op, status: answer.status, code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? '' });
      return new Response(text, { status: answer.status, headers: answer.headers });
    }
    const response = await forward(request, url, upstream);

    if (fault === 'lostResponse') {
      await response.arrayBuffer().catch(() => {});
      faulted();
      return reset();
    }
    if (fault === 'truncateResponse') {
      const body = new Uint8Array(await response.arrayBuffer());
      if (body.byteLength > 1) {
        faulted();
        const headers = new Headers(response.headers);
        headers.delete('content-encoding');
        const half = body.subarray(0, body.byteLength >> 1);
        return new Response(
          new ReadableStream({
            async start(controller) {
              controller.enqueue(half);
              await Bun.sleep(5);
              controller.error();
            },
          }),
          { status: response.status, headers },
        );
      }
      runs.delete(signature);
      return new Response(body, { status: response.status, headers: response.headers });
    }
    runs.delete(signature);
    return response;
  };

  const listen = (port: number) => Bun.serve({ hostname: '127.0.0.1', port, idleTimeout: 0, maxRequestBodySize: Number.MAX_SAFE_INTEGER, fetch: handle });
  let server: ReturnType<typeof Bun.serve> | undefined = listen(0);
  const port = server.port!;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    stats,
    log,
    lastHeaders,
    corrupted,
    setFaults(on) {
      faultsOn = on;
    },
    inject(operation, fault) {
      injected.set(operation, [...(injected.get(operation) ?? []), fault]);
    },
    async setDown(mode) {
      if (mode !== 'hang' && hanging) {
        hanging.release();
        hanging = undefined;
      }
      if (mode === 'hang' && !hanging) {
        let release!: () => void;
        hanging = { promise: new Promise<void>((resolve) => (release = resolve)), release };
      }
      if (mode === 'refuse' && server) {
        await server.stop(true);
        server = undefined;
      }
      if (mode !== 'refuse' && !server) server = listen(port);
    },
    async stop() {
      hanging?.release();
      await server?.stop(true);
      server = undefined;
    },
  };
}
