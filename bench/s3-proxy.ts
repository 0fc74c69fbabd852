import { forward, operationOf } from '../tests/support/fault-proxy.ts';

/**
 * A counting proxy in front of the S3 server: forwards every request unchanged (Host included, so
 * SigV4 signatures stay valid) and counts them by S3 operation. Used by the benchmark's cost pass.
 */
export function startS3Proxy(target: string) {
  const counts = new Map<string, number>();
  const upstream = new URL(target);
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    async fetch(request) {
      const url = new URL(request.url);
      const op = operationOf(request.method, url, request.headers);
      counts.set(op, (counts.get(op) ?? 0) + 1);
      return forward(request, url, upstream);
    },
  });
  return { endpoint: `http://127.0.0.1:${server.port}`, counts, stop: () => server.stop(true) };
}
