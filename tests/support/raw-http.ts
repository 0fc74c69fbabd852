import { connect } from 'node:net';

/**
 * One HTTP/1.1 request over a raw socket, written exactly as given: any method token, any request
 * target (`..`, `%2e%2e`, raw UTF-8, very long), any header bytes. fetch would normalise or refuse
 * most of these. Connection: close, Content-Length from the body.
 */
export interface RawRequest {
  method: string;
  /** The request target as sent, e.g. `/files/../x?y`. */
  target: string;
  headers: [string, string][];
  body?: Uint8Array;
  /** The Content-Length sent (default: the body's). Larger: the body is only its start, and the client stalls. */
  contentLength?: number;
}

export type RawOutcome =
  | { kind: 'answered'; status: number; headers: Record<string, string>; body: Uint8Array; headMs: number; ms: number; streaming: boolean }
  /** The server closed the connection without a (complete) answer. */
  | { kind: 'closed'; bytes: number; ms: number; error?: string }
  /** No answer (`stage: 'head'`) or no end of the body (`stage: 'body'`) in time. */
  | { kind: 'timeout'; stage: 'head' | 'body'; status?: number; ms: number };

const CRLF2 = Buffer.from('\r\n\r\n');

export function rawRequest(host: string, port: number, request: RawRequest, timeoutMs: number): Promise<RawOutcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    let received = Buffer.alloc(0);
    let head: { status: number; headers: Record<string, string>; bodyStart: number; headMs: number } | undefined;
    const socket = connect({ host, port });
    const finish = (outcome: RawOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout', stage: head ? 'body' : 'head', status: head?.status, ms: Date.now() - started }), timeoutMs);

    /** True once the answer is complete (by Content-Length, the chunked terminator, or no body). */
    const complete = (): boolean => {
      if (!head) return false;
      const body = received.subarray(head.bodyStart);
      if (request.method.toUpperCase() === 'HEAD' || head.status === 204 || head.status === 304 || (head.status >= 100 && head.status < 200)) return true;
      const length = head.headers['content-length'];
      if (length !== undefined) return body.length >= Number(length);
      if (head.headers['transfer-encoding']?.toLowerCase().includes('chunked'))
        return body.includes(Buffer.from('\r\n0\r\n\r\n')) || body.subarray(0, 5).equals(Buffer.from('0\r\n\r\n'));
      return false; // until close
    };
    const answered = (): RawOutcome => ({
      kind: 'answered',
      status: head!.status,
      headers: head!.headers,
      body: new Uint8Array(received.subarray(head!.bodyStart)),
      headMs: head!.headMs,
      ms: Date.now() - started,
      streaming: head!.headers['content-type']?.startsWith('text/event-stream') ?? false,
    });

    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!head) {
        const end = received.indexOf(CRLF2);
        if (end < 0) return;
        const lines = received.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        head = { status, headers, bodyStart: end + 4, headMs: Date.now() - started };
        // An event stream goes on by design: answered once its head is here.
        if (headers['content-type']?.startsWith('text/event-stream')) return finish(answered());
      }
      if (complete()) finish(answered());
    });
    socket.on('close', () => finish(head ? answered() : { kind: 'closed', bytes: received.length, ms: Date.now() - started }));
    socket.on('error', (error) => finish(head ? answered() : { kind: 'closed', bytes: received.length, ms: Date.now() - started, error: String(error) }));

    const body = request.body ?? new Uint8Array();
    const lines = [
      `${request.method} ${request.target} HTTP/1.1`,
      `Host: ${host}:${port}`,
      'Connection: close',
      `Content-Length: ${request.contentLength ?? body.byteLength}`,
    ];
    for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
    socket.write(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'));
    if (body.byteLength > 0) socket.write(body);
  });
}

/** `rawRequest` to the server of an absolute URL; the request target is the URL's path unless one is given. */
export function rawRequestTo(url: string, request: Omit<RawRequest, 'target'> & { target?: string }, timeoutMs: number): Promise<RawOutcome> {
  const { hostname, port, pathname, search } = new URL(url);
  return rawRequest(hostname.replace(/^\[|\]$/g, ''), Number(port), { ...request, target: request.target ?? `${pathname}${search}` }, timeoutMs);
}
