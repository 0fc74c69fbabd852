import { afterAll, afterEach, beforeAll, expect, test } from 'bun:test';
import type { HookEvent } from '../../src/index.ts';
import { webhooks, webhookSignature } from '../../src/index.ts';
import type { LogEntry } from '../../src/observability/log.ts';
import { createUpload, randomBytes, startServer, type TestServer, TUS } from '../support/server.ts';
import { startS3Server } from '../support/s3-server.ts';
import { tusUpload } from '../support/tus-client.ts';

const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

/** What a failing receiver answers: it must reach neither clients nor logs. */
const RECEIVER_SECRET_TEXT = 'Traceback: connect(db, password=hunter2) failed';

/** A webhook receiver on loopback that checks signatures and can be told to fail or refuse. */
function receiver(secret: string) {
  const events: (HookEvent & { verified: boolean })[] = [];
  let mode: 'ok' | 'fail' | 'refuse' | 'rename' = 'ok';
  let failuresLeft = 0;
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      const body = await request.text();
      const [t, v1] = (request.headers.get('Tusflow-Signature') ?? '').split(',').map((p) => p.split('=')[1]);
      const fresh = Math.abs(Date.now() / 1000 - Number(t)) < 300;
      const verified = fresh && v1 === (await webhookSignature(secret, Number(t), body));
      const event = JSON.parse(body) as HookEvent;
      events.push({ ...event, verified });
      if (failuresLeft > 0) {
        failuresLeft--;
        return new Response('busy', { status: 503 });
      }
      if (mode === 'fail') return new Response(RECEIVER_SECRET_TEXT, { status: 500 });
      if (event.type === 'pre-create' && mode === 'refuse') return new Response('no uploads on Sundays', { status: 422 });
      if (event.type === 'pre-create' && mode === 'rename') {
        return Response.json({ metadata: { ...event.upload.metadata, filename: 'renamed.bin' }, key: `by-hook/${event.upload.id}.bin` });
      }
      return new Response(null, { status: 204 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hooks`,
    events,
    set: (m: typeof mode, fail = 0) => {
      mode = m;
      failuresLeft = fail;
    },
    stop: () => server.stop(true),
  };
}

const until = async (check: () => boolean, ms = 5000) => {
  for (const deadline = Date.now() + ms; !check() && Date.now() < deadline; ) await Bun.sleep(20);
  return check();
};

let hooks: ReturnType<typeof receiver>;
let server: TestServer;
beforeAll(async () => {
  hooks = receiver('s3cret');
  server = await startServer({ hooksUrl: hooks.url, hooksSecret: 's3cret' });
});
afterAll(async () => {
  await server.stop();
  hooks.stop();
});
afterEach(() => {
  hooks.events.length = 0;
  hooks.set('ok');
});

test('every lifecycle event reaches the webhook, signed; the signature verifies', async () => {
  const bytes = randomBytes(3000);
  const { url } = await tusUpload(server.endpoint, bytes, { chunkSize: 1000, metadata: { filename: 'a.txt' } });
  await fetch(url, { method: 'DELETE', headers: TUS });
  expect(await until(() => hooks.events.some((e) => e.type === 'post-terminate'))).toBe(true);
  const types: string[] = hooks.events.map((e) => e.type);
  for (const type of ['pre-create', 'post-create', 'post-receive', 'pre-finish', 'post-finish', 'pre-terminate', 'post-terminate']) {
    expect(types).toContain(type);
  }
  expect(hooks.events.every((e) => e.verified)).toBe(true);
  const finish = hooks.events.find((e) => e.type === 'post-finish')!;
  expect(finish.upload).toMatchObject({ offset: 3000, length: 3000, metadata: { filename: 'a.txt' } });
  expect(finish.request?.method).toBe('PATCH');
  expect(finish.request?.headers.authorization).toBeUndefined();
});

test('pre-create refuses with its status and reason; nothing is created', async () => {
  hooks.set('refuse');
  const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } });
  expect(res.status).toBe(422);
  expect(await res.text()).toContain('no uploads on Sundays');
  expect(res.headers.get('Location')).toBeNull();
  await Bun.sleep(100);
  expect(hooks.events.map((e) => e.type)).toEqual(['pre-create']);
});

test('pre-create may change the metadata', async () => {
  hooks.set('rename');
  const url = await createUpload(server.endpoint, { 'Upload-Length': '5', 'Upload-Metadata': `filename ${btoa('x.bin')}` });
  const head = await fetch(url, { method: 'HEAD', headers: TUS });
  expect(head.headers.get('Upload-Metadata')).toBe(`filename ${btoa('renamed.bin')}`);
});

test("a receiver that fails or is down: pre-create is refused with a generic reason, never the receiver's text", async () => {
  hooks.set('fail');
  const refused = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } });
  expect(refused.status).toBe(500); // the receiver answered 500: its status is the answer
  const text = await refused.text();
  expect(text).toContain('the pre-create hook failed');
  expect(text).not.toContain('hunter2');
  hooks.stop();
  const down = receiverDown();
  const offline = await startServer({ hooksUrl: down, hooksSecret: 's3cret' });
  try {
    const res = await fetch(offline.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } });
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('the pre-create hook failed');
  } finally {
    await offline.stop();
    hooks = receiver('s3cret');
  }
});

test('background events are retried with backoff when the receiver fails, and the upload does not wait', async () => {
  const local = receiver('s3cret');
  const s = await startServer({ hooksUrl: local.url, hooksSecret: 's3cret' });
  try {
    const url = await createUpload(s.endpoint, { 'Upload-Length': '3' });
    await until(() => local.events.some((e) => e.type === 'post-create'));
    local.events.length = 0;
    local.set('ok', 2); // the next two deliveries fail with 503
    const started = Date.now();
    const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: 'abc' });
    expect(res.status).toBe(204);
    expect(Date.now() - started).toBeLessThan(500);
    // pre-finish, post-receive and post-finish go out together; two of them meet a 503. The
    // background ones are sent again, so both arrive, one of them twice or more.
    const background = () => local.events.filter((e) => e.type === 'post-receive' || e.type === 'post-finish');
    const retried = await until(() => background().length >= 3);
    expect(retried).toBe(true);
    expect(background().map((e) => e.type)).toContain('post-finish');
    expect(background().map((e) => e.type)).toContain('post-receive');
  } finally {
    await s.stop();
    local.stop();
  }
});

function receiverDown(): string {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const url = `http://127.0.0.1:${probe.port}/hooks`;
  probe.stop(true);
  return url;
}

test('in-process hooks: pre-create sets the object key in S3; post-finish sees the finished upload', async () => {
  const seen: HookEvent[] = [];
  const s3 = await startS3Server({
    hooks: {
      'pre-create': ({ upload }) => ({ key: `users/42/${upload.metadata.filename}` }),
      'post-finish': (event) => void seen.push(event),
    },
  });
  try {
    const bytes = randomBytes(6 * 1024 * 1024);
    await tusUpload(s3.endpoint, bytes, { metadata: { filename: 'cat.jpg' } });
    expect((await s3.object('users/42/cat.jpg'))?.byteLength).toBe(bytes.length);
    expect(await until(() => seen.length === 1)).toBe(true);
    expect(seen[0]!.upload.key).toBe('users/42/cat.jpg');
  } finally {
    await s3.stop();
  }
});

test('a hook choosing an unsafe key is refused', async () => {
  const s = await startServer({ hooks: { 'pre-create': () => ({ key: '../../etc/passwd' }) } });
  try {
    const res = await fetch(s.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } });
    expect(res.status).toBe(500);
    expect(await res.text()).toContain('object key');
  } finally {
    await s.stop();
  }
});

/** Parses `tusflow_hook_failures_total{hook="..."} N` lines of /metrics. */
async function hookFailures(origin: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const [, hook, value] of text.matchAll(/^tusflow_hook_failures_total\{hook="([\w-]+)"\} (\d+)$/gm)) counts[hook!] = Number(value);
  return counts;
}

/** The logger's hook-failure lines. */
function failureLog() {
  const entries: LogEntry[] = [];
  return { entries, log: (entry: LogEntry) => void entries.push(entry), failures: () => entries.filter((e) => e.message === 'hook failed') };
}

/** A receiver that accepts pre-* events and answers every background one with 502 and a body. */
function failingReceiver() {
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      const event = JSON.parse(await request.text()) as HookEvent;
      if (event.type.startsWith('pre-')) return new Response(null, { status: 204 });
      return new Response(RECEIVER_SECRET_TEXT, { status: 502 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}/hooks?token=hook-token-123`, stop: () => server.stop(true) };
}

test("a webhook that gives up counts in tusflow_hook_failures_total and logs one error line, without the receiver's answer", async () => {
  const receiver = failingReceiver();
  const { log, failures } = failureLog();
  const s = await startServer({ hooksUrl: receiver.url, log });
  try {
    const before = await hookFailures(s.origin);
    const url = await createUpload(s.endpoint, { 'Upload-Length': '0' }); // finished at once: post-create and post-finish
    const id = url.split('/').pop();
    expect(await until(() => failures().length >= 2, 8000)).toBe(true);
    await Bun.sleep(50);
    const after = await hookFailures(s.origin);
    expect((after['post-create'] ?? 0) - (before['post-create'] ?? 0)).toBe(1);
    expect((after['post-finish'] ?? 0) - (before['post-finish'] ?? 0)).toBe(1);
    expect(
      failures()
        .map((e) => e.hook)
        .sort(),
    ).toEqual(['post-create', 'post-finish']);
    for (const entry of failures()) {
      expect(entry).toMatchObject({ level: 'error', uploadId: id });
      expect(entry.reason).toMatch(/^gave up after [1-4] attempts?: receiver answered 502$/);
    }
    const logged = JSON.stringify(failures());
    expect(logged).not.toContain('hunter2');
    expect(logged).not.toContain('hook-token-123');
  } finally {
    await s.stop();
    receiver.stop();
  }
});

test('pre-create failures: detail in the log and the metric, a generic reason for the client; refusals keep theirs', async () => {
  const receiver = receiver500();
  const { log, failures } = failureLog();
  let thrown = 0;
  const s = await startServer({
    log,
    hooks: {
      'pre-create': ({ upload }) => {
        if (upload.metadata.filename === 'refuse') return { reject: { status: 451, message: 'not this one, sorry' } };
        if (upload.metadata.filename === 'throw') throw new Error(`lookup failed at https://user:pw@db.internal/x?key=k${++thrown}`);
        return {};
      },
    },
  });
  const viaWebhook = await startServer({ log, hooks: webhooks({ url: receiver.url, timeoutMs: 200 }) });
  const create = (endpoint: string, filename: string) =>
    fetch(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', 'Upload-Metadata': `filename ${btoa(filename)}` } });
  try {
    const before = await hookFailures(s.origin);
    const refused = await create(s.endpoint, 'refuse');
    expect(refused.status).toBe(451);
    expect(await refused.text()).toContain('not this one, sorry');

    const threw = await create(s.endpoint, 'throw');
    expect(threw.status).toBe(500);
    const threwText = await threw.text();
    expect(threwText).toContain('the pre-create hook failed');
    expect(threwText).not.toContain('lookup failed');

    const failed = await create(viaWebhook.endpoint, 'x.bin');
    expect(failed.status).toBe(500);
    expect(await failed.text()).not.toContain('hunter2');
    receiver.hang();
    const late = await create(viaWebhook.endpoint, 'x.bin');
    expect(late.status).toBe(503);
    expect(await late.text()).toContain('the pre-create hook failed');

    // Each server counts its own: one failure on the first, two on the second.
    const after = await hookFailures(s.origin);
    expect((after['pre-create'] ?? 0) - (before['pre-create'] ?? 0)).toBe(1);
    expect((await hookFailures(viaWebhook.origin))['pre-create']).toBe(2);
    const reasons = failures().map((e) => e.reason);
    // The operator's own hook: its message, with the credentials and query of its URL hidden.
    expect(reasons).toEqual(['lookup failed at https://***@db.internal/x?***', 'receiver answered 500', 'timed out']);
    expect(failures().every((e) => e.level === 'error' && e.hook === 'pre-create' && typeof e.uploadId === 'string')).toBe(true);
  } finally {
    await s.stop();
    await viaWebhook.stop();
    receiver.stop();
  }
});

test('an in-process post-hook that throws is counted and logged, and the webhook still gets the event', async () => {
  const local = receiver('s3cret');
  const { log, failures } = failureLog();
  const s = await startServer({
    log,
    hooksUrl: local.url,
    hooksSecret: 's3cret',
    hooks: {
      'post-create': () => {
        throw new Error('queue is full');
      },
    },
  });
  try {
    const before = await hookFailures(s.origin);
    const url = await createUpload(s.endpoint, { 'Upload-Length': '3' });
    expect(await until(() => local.events.some((e) => e.type === 'post-create') && failures().length === 1)).toBe(true);
    expect(failures()[0]).toMatchObject({ level: 'error', hook: 'post-create', uploadId: url.split('/').pop(), reason: 'queue is full' });
    const after = await hookFailures(s.origin);
    expect((after['post-create'] ?? 0) - (before['post-create'] ?? 0)).toBe(1);
  } finally {
    await s.stop();
    local.stop();
  }
});

/** A receiver answering 500 with a body, until told to hang (never answer). */
function receiver500() {
  let hang = false;
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      await request.text();
      if (hang) await Bun.sleep(2_000);
      return new Response(RECEIVER_SECRET_TEXT, { status: 500 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}/hooks`, hang: () => (hang = true), stop: () => server.stop(true) };
}
