import { expect, test } from 'bun:test';
import { createUpload, startServer, TUS } from '../support/server.ts';
import { startS3Server } from '../support/s3-server.ts';
import type { LogEntry } from '../../src/observability/log.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '../../src/storage/s3/client.ts';
import { S3DataStore } from '../../src/storage/s3/store.ts';
import { FileDataStore } from '../../src/storage/file/store.ts';
import { spawnServer } from '../support/process.ts';

const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

/** Parses Prometheus text: `name{labels} value` lines into a map; fails on a malformed line. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN)$/);
    if (!match) throw new Error(`not Prometheus text: ${line}`);
    samples.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return samples;
}

test('/metrics parses as Prometheus text and counts what the test did', async () => {
  const s3 = await startS3Server();
  try {
    const before = parsePrometheus(await (await fetch(`${s3.origin}/metrics`)).text());
    const count = (m: Map<string, number>, key: string) => m.get(key) ?? 0;
    const url = await createUpload(s3.endpoint, { 'Upload-Length': '10' });
    await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: '0123456789' });
    const other = await createUpload(s3.endpoint, { 'Upload-Length': '10' });
    await fetch(other, { method: 'DELETE', headers: TUS });
    await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '3' }, body: 'x' }); // 409

    const after = parsePrometheus(await (await fetch(`${s3.origin}/metrics`)).text());
    const delta = (key: string) => count(after, key) - count(before, key);
    expect(delta('tusflow_uploads_created_total')).toBe(2);
    expect(delta('tusflow_uploads_finished_total')).toBe(1);
    expect(delta('tusflow_uploads_terminated_total')).toBe(1);
    expect(delta('tusflow_bytes_received_total')).toBe(10);
    expect(delta('tusflow_requests_total{method="POST",status="201"}')).toBe(2);
    expect(delta('tusflow_requests_total{method="PATCH",status="409"}')).toBe(1);
    expect(delta('tusflow_s3_request_duration_seconds_count{operation="CreateMultipartUpload"}')).toBe(2);
    expect(delta('tusflow_s3_request_duration_seconds_count{operation="CompleteMultipartUpload"}')).toBe(1);
    expect(delta('tusflow_lock_wait_seconds_count')).toBeGreaterThanOrEqual(3);
  } finally {
    await s3.stop();
  }
});

test('/health reports the state store and the storage with their latency; 503 when one fails', async () => {
  const server = await startServer();
  try {
    const res = await fetch(`${server.origin}/health`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ status: 'ok', state: { ok: true }, storage: { ok: true } });
    expect(typeof body.state.ms).toBe('number');
  } finally {
    await server.stop();
  }
  const s3 = await startS3Server({ bucket: 'no-such-bucket-here' });
  try {
    const res = await fetch(`${s3.origin}/health`);
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body).toMatchObject({ status: 'failing', state: { ok: true }, storage: { ok: false } });
    expect(body.storage.error).toContain('does not exist');
  } finally {
    await s3.stop();
  }
});

test('one JSON log line per request, with a request id that the response echoes', async () => {
  const lines: LogEntry[] = [];
  const server = await startServer({ log: (entry) => lines.push(entry) });
  try {
    const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', 'X-Request-Id': 'abc-123' } });
    expect(res.headers.get('X-Request-Id')).toBe('abc-123');
    const generated = (await fetch(`${server.endpoint}${'0'.repeat(32)}`, { method: 'HEAD', headers: TUS })).headers.get('X-Request-Id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', requestId: 'abc-123', method: 'POST', path: '/files/', status: 201 }),
      expect.objectContaining({ level: 'info', requestId: generated!, method: 'HEAD', status: 404 }),
    ]);
    expect(typeof lines[0]!.ms).toBe('number');
  } finally {
    await server.stop();
  }
});

test("/health and 503 answers never show credentials or query strings from a backend's error", async () => {
  const leak = 'S3 unreachable at https://AKIA:hunter2@s3.internal/bucket?X-Amz-Credential=hunter2';
  class Unreachable extends FileDataStore {
    override async check(): Promise<void> {
      throw new Error(leak);
    }
    override async create(): Promise<void> {
      throw new Error(leak);
    }
  }
  const store = new Unreachable(await mkdtemp(join(tmpdir(), 'tusflow-redact-')));
  const server = await startServer({ store });
  try {
    const health = await fetch(`${server.origin}/health`);
    expect(health.status).toBe(503);
    const body = await health.json();
    expect(body.storage.error).toBe('S3 unreachable at https://***@s3.internal/bucket?***');
    const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } });
    expect(created.status).toBe(503);
    // Clients get the generic reason only; the (redacted) detail is for /health and the log.
    const text = await created.text();
    expect(text).toBe('the storage backend failed; try again\n');
    expect(text).not.toContain('hunter2');
  } finally {
    await server.stop();
    await rm(store.dir, { recursive: true, force: true });
  }
});

test('/health answers 503 with the reason within 5 s when S3 accepts connections and never answers', async () => {
  // A frozen S3: it takes the connection and the request, and never says a word.
  const sockets = new Set<import('bun').Socket>();
  const frozen = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { open: (s) => void sockets.add(s), data() {}, close: (s) => void sockets.delete(s) } });
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${frozen.port}`,
    bucket: 'frozen',
    region: 'us-east-1',
    accessKeyId: 'test',
    secretAccessKey: 'test',
    forcePathStyle: true,
  });
  const server = await startServer({ store: new S3DataStore({ client, prefix: '', partSize: 5 * 1024 * 1024, parallelParts: 1 }) });
  try {
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      const res = await fetch(`${server.origin}/health`);
      const ms = performance.now() - started;
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'failing', error: expect.stringContaining('no answer within 5 s') });
      expect(ms).toBeGreaterThan(4_500);
      expect(ms).toBeLessThan(6_000);
    }
  } finally {
    await server.stop();
    for (const s of sockets) s.end();
    frozen.stop(true);
  }
}, 30_000);

test('every series is there from the start: counters and gauges at 0, histograms with empty buckets, S3 operations and hooks by name', async () => {
  const s3 = await startS3Server();
  try {
    const text = await (await fetch(`${s3.origin}/metrics`)).text();
    const samples = parsePrometheus(text);
    for (const name of ['tusflow_bytes_received_total', 'tusflow_uploads_created_total', 'tusflow_active_uploads', 'tusflow_part_buffer_bytes']) {
      expect(samples.get(name)).toBe(0);
    }
    expect(text).toContain('# TYPE tusflow_active_uploads gauge');
    expect(text).toContain('# TYPE tusflow_lock_wait_seconds histogram');
    expect(samples.get('tusflow_lock_wait_seconds_bucket{le="0.001"}')).toBe(0);
    expect(samples.get('tusflow_lock_wait_seconds_bucket{le="+Inf"}')).toBe(0);
    expect(samples.get('tusflow_lock_wait_seconds_count')).toBe(0);
    for (const operation of ['CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'ListObjectsV2']) {
      expect(samples.get(`tusflow_s3_request_duration_seconds_count{operation="${operation}"}`)).toBe(0);
      expect(samples.get(`tusflow_s3_request_duration_seconds_bucket{operation="${operation}",le="+Inf"}`)).toBe(0);
      expect(samples.get(`tusflow_s3_retries_total{operation="${operation}"}`)).toBe(0);
    }
    for (const hook of ['pre-create', 'post-finish']) expect(samples.get(`tusflow_hook_failures_total{hook="${hook}"}`)).toBe(0);
    // A server built in-process has no process memory to tell (that is the runtime entry's part).
    expect(text).not.toContain('process_resident_memory_bytes');
  } finally {
    await s3.stop();
  }
});

test('histogram buckets are cumulative and their +Inf bucket is the count', async () => {
  const server = await startServer();
  try {
    for (let i = 0; i < 3; i++) {
      const url = await createUpload(server.endpoint, { 'Upload-Length': '2' });
      await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: 'ab' });
    }
    const text = await (await fetch(`${server.origin}/metrics`)).text();
    const buckets = [...text.matchAll(/^tusflow_lock_wait_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])] as const);
    expect(buckets.length).toBeGreaterThan(5);
    expect(buckets.at(-1)![0]).toBe('+Inf');
    const counts = buckets.map(([, n]) => n);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    const samples = parsePrometheus(text);
    expect(counts.at(-1)).toBe(samples.get('tusflow_lock_wait_seconds_count')!);
    expect(samples.get('tusflow_lock_wait_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(samples.get('tusflow_lock_wait_seconds_sum')).toBeGreaterThan(0);
  } finally {
    await server.stop();
  }
});

test('tusflow_active_uploads counts a PATCH while its body streams, and is 0 once it answered', async () => {
  const server = await startServer();
  try {
    const url = await createUpload(server.endpoint, { 'Upload-Length': '6' });
    let finish!: () => void;
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode('abc'));
        await new Promise<void>((done) => (finish = done));
        controller.enqueue(new TextEncoder().encode('def'));
        controller.close();
      },
    });
    const active = async () => parsePrometheus(await (await fetch(`${server.origin}/metrics`)).text()).get('tusflow_active_uploads');
    const patch = fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body, duplex: 'half' } as RequestInit);
    const deadline = Date.now() + 10_000;
    while ((await active()) !== 1 && Date.now() < deadline) await Bun.sleep(20);
    expect(await active()).toBe(1);
    finish();
    expect((await patch).status).toBe(204);
    expect(await active()).toBe(0);
    const head = await fetch(url, { method: 'HEAD', headers: TUS });
    expect(head.headers.get('Upload-Offset')).toBe('6');
  } finally {
    await server.stop();
  }
});

test('a server process reports its resident memory, as the kernel counts it', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'tusflow-rss-'));
  const server = await spawnServer({ DATA_DIR: dataDir });
  try {
    const text = await (await fetch(new URL('/metrics', server.endpoint))).text();
    expect(text).toContain('# TYPE process_resident_memory_bytes gauge');
    const reported = parsePrometheus(text).get('process_resident_memory_bytes')!;
    const status = await Bun.file(`/proc/${server.proc.pid}/status`).text();
    const kernel = Number(status.match(/^VmRSS:\s+(\d+) kB$/m)![1]) * 1024;
    // Read a moment apart: within a quarter of each other.
    expect(reported).toBeGreaterThan(kernel * 0.75);
    expect(reported).toBeLessThan(kernel * 1.25);
  } finally {
    await server.kill();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("a failed request's log line carries the reason, the upload id, the bytes received and the client's address", async () => {
  const lines: LogEntry[] = [];
  const server = await startServer({
    log: (entry) => lines.push(entry),
    hooks: { 'pre-create': (event) => (event.upload.metadata.refuse ? { reject: { status: 403, message: 'no uploads on Sundays' } } : undefined) },
  });
  try {
    const refused = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5', 'Upload-Metadata': 'refuse eWVz' } });
    expect(refused.status).toBe(403);

    const url = await createUpload(server.endpoint, { 'Upload-Length': '6' });
    const id = url.split('/').pop()!;
    const mismatch = await fetch(url, {
      method: 'PATCH',
      headers: { ...PATCH, 'Upload-Offset': '0', 'Upload-Checksum': `sha1 ${Buffer.from('x'.repeat(20)).toString('base64')}` },
      body: 'abc',
    });
    expect(mismatch.status).toBe(460);
    expect((await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: 'abcdef' })).status).toBe(204);

    const failures = lines.filter((line) => line.status !== 201 && line.status !== 204);
    expect(failures).toEqual([
      expect.objectContaining({ method: 'POST', status: 403, client: '127.0.0.1', reason: expect.stringContaining('no uploads on Sundays') }),
      expect.objectContaining({ method: 'PATCH', status: 460, uploadId: id, received: 3, client: '127.0.0.1', reason: expect.stringContaining('checksum') }),
    ]);
    // A request that succeeded has no reason, and still the client's address.
    expect(lines.find((line) => line.status === 204)).toEqual(expect.not.objectContaining({ reason: expect.anything() }));
    expect(lines.find((line) => line.status === 204)).toEqual(expect.objectContaining({ client: '127.0.0.1' }));
  } finally {
    await server.stop();
  }
});
