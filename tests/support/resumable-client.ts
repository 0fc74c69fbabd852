/**
 * A small tus client on raw fetch for reliability tests: creates an upload, PATCHes it in chunks of
 * a chosen size, and resumes from HEAD after anything that goes wrong (connection errors while the
 * server is down, 409, 423, 5xx), bounded in attempts and time. It records every offset the server
 * acknowledged (a 204's Upload-Offset) and checks every HEAD against them: an offset that moves back
 * below an acknowledged one is a lost byte.
 */
import { TUS } from './server.ts';

const PATCH_HEADERS = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

export interface ResumableOptions {
  /** Bytes per PATCH (the last one may be shorter). */
  chunkSize: number;
  /** Requests of any kind before giving up. */
  maxRequests?: number;
  /** Give up after this long. */
  deadlineMs?: number;
  /** Per-request timeout (a request that hangs longer counts as a failure). */
  requestTimeoutMs?: number;
  /** Pause before retrying after a failure; grows a little with consecutive failures. */
  retryDelayMs?: number;
  /** Give up after this many failures in a row without progress (default: no limit but the others). */
  maxStalls?: number;
  /** Upload-Metadata header value. */
  metadata?: string;
}

export interface ResumableResult {
  url: string;
  id: string;
  /** Every offset acknowledged by a 204, in order. */
  acked: number[];
  /** Offsets every HEAD reported, in order. */
  heads: number[];
  /** Broken guarantees seen along the way (empty when all is well). */
  violations: string[];
  /** Responses and errors seen, e.g. { 'PATCH 204': 7, 'PATCH ECONNREFUSED': 2, 'HEAD 200': 3 }. */
  seen: Record<string, number>;
  requests: number;
  /** Last reasons given by the server with a non-2xx answer (at most 10). */
  reasons: string[];
}

export class UploadFailed extends Error {
  constructor(
    message: string,
    readonly result: Partial<ResumableResult>,
  ) {
    super(`${message}\n${JSON.stringify(result, (k, v) => (k === 'heads' || k === 'acked' ? (v as number[]).slice(-12) : v))}`);
  }
}

const RETRYABLE = new Set([409, 423, 500, 502, 503, 504]);

function errorName(error: unknown): string {
  const e = error as { code?: string; name?: string; message?: string };
  return e?.code ?? e?.name ?? String(e?.message ?? error).slice(0, 40);
}

/** Uploads `bytes` to `endpoint` (a tus collection URL) and resolves once the server acknowledged all of it. */
export async function resumableUpload(endpoint: string, bytes: Uint8Array<ArrayBuffer>, options: ResumableOptions): Promise<ResumableResult> {
  const maxRequests = options.maxRequests ?? 400;
  const deadline = Date.now() + (options.deadlineMs ?? 60_000);
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const pause = options.retryDelayMs ?? 100;
  const result: ResumableResult = { url: '', id: '', acked: [], heads: [], violations: [], seen: {}, requests: 0, reasons: [] };
  let maxAcked = 0;
  let failures = 0;

  const count = (key: string) => (result.seen[key] = (result.seen[key] ?? 0) + 1);
  const budget = () => {
    if (failures >= (options.maxStalls ?? Number.POSITIVE_INFINITY)) throw new UploadFailed(`gave up after ${failures} failures in a row`, result);
    if (result.requests >= maxRequests) throw new UploadFailed(`gave up after ${result.requests} requests`, result);
    if (Date.now() > deadline) throw new UploadFailed(`gave up after ${options.deadlineMs ?? 60_000} ms`, result);
    result.requests++;
  };
  const backoff = async () => {
    failures++;
    await Bun.sleep(Math.min(pause * Math.min(failures, 5), 1_000));
  };
  const reason = async (method: string, res: Response) => {
    const text = (await res.text().catch(() => '')).trim();
    result.reasons.push(`${method} ${res.status} ${text.slice(0, 160)}`);
    if (result.reasons.length > 10) result.reasons.shift();
  };

  // Create. A POST cut by a crash may or may not have created an upload: a new one is fine.
  const length = String(bytes.byteLength);
  for (;;) {
    budget();
    try {
      const headers: Record<string, string> = { ...TUS, 'Upload-Length': length };
      if (options.metadata) headers['Upload-Metadata'] = options.metadata;
      const res = await fetch(endpoint, { method: 'POST', headers, signal: AbortSignal.timeout(timeoutMs) });
      count(`POST ${res.status}`);
      if (res.status === 201) {
        result.url = res.headers.get('Location')!;
        result.id = result.url.split('/').pop()!;
        await res.body?.cancel();
        break;
      }
      await reason('POST', res);
      if (!RETRYABLE.has(res.status)) throw new UploadFailed(`POST answered ${res.status}`, result);
    } catch (error) {
      if (error instanceof UploadFailed) throw error;
      count(`POST ${errorName(error)}`);
    }
    await backoff();
  }

  /** The server's offset, from HEAD; retried until it answers. */
  const head = async (): Promise<number> => {
    for (;;) {
      budget();
      try {
        const res = await fetch(result.url, { method: 'HEAD', headers: TUS, signal: AbortSignal.timeout(timeoutMs) });
        count(`HEAD ${res.status}`);
        if (res.status === 200) {
          const offset = Number(res.headers.get('Upload-Offset'));
          result.heads.push(offset);
          if (!(offset >= maxAcked)) result.violations.push(`HEAD reported ${offset} after ${maxAcked} was acknowledged`);
          if (!(offset <= bytes.byteLength)) result.violations.push(`HEAD reported ${offset}, past the length ${bytes.byteLength}`);
          return offset;
        }
        await reason('HEAD', res);
        if (!RETRYABLE.has(res.status)) throw new UploadFailed(`HEAD answered ${res.status}`, result);
      } catch (error) {
        if (error instanceof UploadFailed) throw error;
        count(`HEAD ${errorName(error)}`);
      }
      await backoff();
    }
  };

  let offset = 0;
  while (offset < bytes.byteLength) {
    budget();
    const end = Math.min(bytes.byteLength, offset + options.chunkSize);
    try {
      const res = await fetch(result.url, {
        method: 'PATCH',
        headers: { ...PATCH_HEADERS, 'Upload-Offset': String(offset) },
        body: bytes.subarray(offset, end),
        signal: AbortSignal.timeout(timeoutMs),
      });
      count(`PATCH ${res.status}`);
      if (res.status === 204) {
        const acked = Number(res.headers.get('Upload-Offset'));
        result.acked.push(acked);
        if (!(acked >= maxAcked)) result.violations.push(`a PATCH acknowledged ${acked} after ${maxAcked} was acknowledged`);
        if (!(acked > offset || end === offset) || !(acked <= end)) {
          result.violations.push(`a PATCH of [${offset}, ${end}) acknowledged ${acked}`);
        }
        maxAcked = Math.max(maxAcked, acked);
        offset = acked;
        failures = 0;
        continue;
      }
      await reason('PATCH', res);
      if (!RETRYABLE.has(res.status)) throw new UploadFailed(`PATCH at ${offset} answered ${res.status}`, result);
    } catch (error) {
      if (error instanceof UploadFailed) throw error;
      count(`PATCH ${errorName(error)}`);
    }
    await backoff();
    offset = await head();
  }
  return result;
}
