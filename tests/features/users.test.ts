import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sign } from 'hono/jwt';
import { createUpload, randomBytes, sha256, startServer, type TestServer, TUS } from '../support/server.ts';
import { tusUpload } from '../support/tus-client.ts';
import { STATE_KINDS } from '../support/state-stores.ts';
import { RedisRateLimiter } from '../../src/state/redis/rate-limit.ts';
import { upstashRateLimiter, upstashClient } from '../../src/state/upstash.ts';
import { MemoryRateLimiter, type RateLimiter } from '../../src/index.ts';
import { upstashBridge } from '../support/state-stores.ts';

const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
const SECRET = 'jwt-test-secret';
const token = (sub: string) => sign({ sub, exp: Math.floor(Date.now() / 1000) + 600 }, SECRET, 'HS256');

/** What every method on an upload, and its progress view, answers `who`. */
async function everyMethod(url: string, who: Record<string, string>): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  for (const [method, headers] of [
    ['HEAD', {}],
    ['PATCH', { ...PATCH, 'Upload-Offset': '0' }],
    ['DELETE', {}],
    ['GET', {}],
  ] as const) {
    const res = await fetch(url, { method, headers: { ...TUS, ...headers, ...who }, body: method === 'PATCH' ? 'abc' : undefined });
    statuses[method] = res.status;
  }
  statuses.progress = (await fetch(`${url}/progress`, { headers: who })).status;
  return statuses;
}
const everywhere = (status: number) => ({ HEAD: status, PATCH: status, DELETE: status, GET: status, progress: status });

describe('JWT: the sub owns the uploads it creates', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ jwtSecret: SECRET });
  });
  afterAll(() => server.stop());

  test('no token, a bad token, a wrong secret → 401 with a reason', async () => {
    expect((await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } })).status).toBe(401);
    const bad = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: 'Bearer not.a.jwt' } });
    expect(bad.status).toBe(401);
    expect(await bad.text()).toContain('credentials');
    const forged = await sign({ sub: 'alice' }, 'other-secret', 'HS256');
    expect((await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: `Bearer ${forged}` } })).status).toBe(401);
  });

  test("the owner uploads and reads; another user's token is refused on every method", async () => {
    const alice = { Authorization: `Bearer ${await token('alice')}` };
    const bob = { Authorization: `Bearer ${await token('bob')}` };
    const url = await createUpload(server.endpoint, { ...alice, 'Upload-Length': '3' });
    expect(await everyMethod(url, bob)).toEqual(everywhere(403));
    const ok = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0', ...alice }, body: 'abc' });
    expect(ok.status).toBe(204);
    expect(await (await fetch(url, { headers: alice })).text()).toBe('abc');
  });

  test("bob cannot concatenate alice's partial uploads", async () => {
    const alice = { Authorization: `Bearer ${await token('alice')}` };
    const bob = { Authorization: `Bearer ${await token('bob')}` };
    const part = await createUpload(server.endpoint, { ...alice, 'Upload-Concat': 'partial', 'Upload-Length': '0' });
    const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, ...bob, 'Upload-Concat': `final;${part}` } });
    expect(res.status).toBe(403);
  });

  test('tus-js-client with a token uploads; OPTIONS needs none', async () => {
    expect((await fetch(server.endpoint, { method: 'OPTIONS' })).status).toBe(204);
    const bytes = randomBytes(100_000);
    const { url } = await tusUpload(server.endpoint, bytes, { chunkSize: 30_000, headers: { Authorization: `Bearer ${await token('carol')}` } });
    const res = await fetch(url, { headers: { Authorization: `Bearer ${await token('carol')}` } });
    expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(sha256(bytes));
  });
});

for (const kind of STATE_KINDS) {
  describe(`users on the ${kind.name} state: another user's PATCH or DELETE is refused before it touches the upload`, () => {
    let server: TestServer;
    beforeAll(async () => {
      // A short lease: a stop request left on the lock would reach the owner's PATCH within a second.
      const { state, locker } = await kind.make({ leaseMs: 600 });
      server = await startServer({ jwtSecret: SECRET, state, locker });
    });
    afterAll(() => server.stop());

    test('as tus, as the IETF draft, through a method override: 403, and the upload is as it was', async () => {
      const alice = { Authorization: `Bearer ${await token('alice')}` };
      const bob = { Authorization: `Bearer ${await token('bob')}` };
      const url = await createUpload(server.endpoint, { ...alice, 'Upload-Length': '6' });
      expect((await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0', ...alice }, body: 'abc' })).status).toBe(204);
      const attempts: [string, RequestInit][] = [
        ['tus', { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '3', ...bob }, body: 'xyz' }],
        [
          'ietf',
          {
            method: 'PATCH',
            headers: { 'Upload-Draft-Interop-Version': '6', 'Content-Type': 'application/partial-upload', 'Upload-Offset': '3', 'Upload-Complete': '?1', ...bob },
            body: 'xyz',
          },
        ],
        ['override', { method: 'POST', headers: { ...PATCH, 'X-HTTP-Method-Override': 'PATCH', 'Upload-Offset': '3', ...bob }, body: 'xyz' }],
        ['DELETE', { method: 'DELETE', headers: { ...TUS, ...bob } }],
        ['DELETE as the IETF draft', { method: 'DELETE', headers: { 'Upload-Draft-Interop-Version': '6', ...bob } }],
        ['DELETE by override', { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE', ...bob } }],
      ];
      for (const [name, init] of attempts) expect([name, (await fetch(url, init)).status]).toEqual([name, 403]);
      const head = await fetch(url, { method: 'HEAD', headers: { ...TUS, ...alice } });
      expect(head.headers.get('Upload-Offset')).toBe('3');
      expect((await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '3', ...alice }, body: 'def' })).status).toBe(204);
      expect(await (await fetch(url, { headers: alice })).text()).toBe('abcdef');
    });

    test("while the owner's PATCH runs, another user's is refused and does not cut it short", async () => {
      const alice = { Authorization: `Bearer ${await token('alice')}` };
      const bob = { Authorization: `Bearer ${await token('bob')}` };
      const bytes = randomBytes(256 * 1024);
      const url = await createUpload(server.endpoint, { ...alice, 'Upload-Length': String(bytes.byteLength) });
      let go!: () => void;
      const gate = new Promise<void>((resolve) => (go = resolve));
      const body = new ReadableStream<Uint8Array>({
        start: (c) => c.enqueue(bytes.slice(0, 1024)),
        async pull(c) {
          await gate;
          c.enqueue(bytes.slice(1024));
          c.close();
        },
      });
      const running = fetch(url, {
        method: 'PATCH',
        headers: { ...PATCH, 'Upload-Offset': '0', 'Content-Length': String(bytes.byteLength), ...alice },
        body,
        duplex: 'half',
      } as RequestInit);
      await Bun.sleep(300);
      const refused = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0', ...bob }, body: 'xyz' });
      expect(refused.status).toBe(403);
      expect((await fetch(url, { method: 'DELETE', headers: { ...TUS, ...bob } })).status).toBe(403);
      // Longer than a renewal of the owner's lease: a stop request would have ended its PATCH by now.
      await Bun.sleep(1_000);
      go();
      const done = await running;
      expect([done.status, done.headers.get('Upload-Offset')]).toEqual([204, String(bytes.byteLength)]);
      expect(sha256(new Uint8Array(await (await fetch(url, { headers: alice })).arrayBuffer()))).toBe(sha256(bytes));
    });

    test("an expired upload is still another user's: 403 on every method, as on a live one; its owner gets 410", async () => {
      const { state, locker } = await kind.make();
      const short = await startServer({ jwtSecret: SECRET, state, locker, uploadTtlSeconds: 1 });
      try {
        const alice = { Authorization: `Bearer ${await token('alice')}` };
        const bob = { Authorization: `Bearer ${await token('bob')}` };
        const url = await createUpload(short.endpoint, { ...alice, 'Upload-Length': '6' });
        await Bun.sleep(1100);
        expect(await everyMethod(url, bob)).toEqual(everywhere(403));
        expect(await everyMethod(url, alice)).toEqual(everywhere(410));
      } finally {
        await short.stop();
      }
    });
  });
}

test('a static bearer token: required on tus requests, not on OPTIONS, /health or /metrics', async () => {
  const server = await startServer({ authToken: 'let-me-in' });
  try {
    expect((await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } })).status).toBe(401);
    expect((await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: 'Bearer nope' } })).status).toBe(401);
    const ok = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: 'Bearer let-me-in' } });
    expect(ok.status).toBe(201);
    expect((await fetch(server.endpoint, { method: 'OPTIONS' })).status).toBe(204);
    expect((await fetch(`${server.origin}/health`)).status).toBe(200);
    expect((await fetch(`${server.origin}/metrics`)).status).toBe(200);
  } finally {
    await server.stop();
  }
});

test('a custom authorize check: its Response, its owner, or 401', async () => {
  const server = await startServer({
    authorize: async (request) => {
      const key = request.headers.get('X-Api-Key');
      if (key === 'banned') return new Response('banned\n', { status: 403 });
      return key ? { owner: key } : undefined;
    },
  });
  try {
    expect((await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } })).status).toBe(401);
    expect((await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', 'X-Api-Key': 'banned' } })).status).toBe(403);
    const url = await createUpload(server.endpoint, { 'Upload-Length': '1', 'X-Api-Key': 'k1' });
    expect((await fetch(url, { method: 'HEAD', headers: { ...TUS, 'X-Api-Key': 'k2' } })).status).toBe(403);
    expect((await fetch(url, { method: 'HEAD', headers: { ...TUS, 'X-Api-Key': 'k1' } })).status).toBe(200);
  } finally {
    await server.stop();
  }
});

describe('rate limit: 429 with Retry-After, then recovery', () => {
  const limiters: [string, () => Promise<RateLimiter>][] = [
    ['memory', async () => new MemoryRateLimiter(5, 1000)],
    [
      'redis',
      async () => {
        const kind = STATE_KINDS.find((k) => k.name === 'redis')!;
        const { runner } = await kind.make();
        return new RedisRateLimiter({ runner: runner!, prefix: `test:${crypto.randomUUID().slice(0, 8)}:`, limit: 5, windowMs: 1000 });
      },
    ],
    [
      'upstash (@upstash/ratelimit)',
      async () => {
        const bridge = await upstashBridge();
        return upstashRateLimiter(upstashClient({ url: bridge.url, token: bridge.token }), `test:${crypto.randomUUID().slice(0, 8)}:`, 5);
      },
    ],
  ];
  for (const [name, make] of limiters) {
    test(name, async () => {
      const server = await startServer({ rateLimiter: await make() });
      try {
        const statuses: number[] = [];
        let retryAfter: string | null = null;
        for (let i = 0; i < 7; i++) {
          const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } });
          statuses.push(res.status);
          if (res.status === 429) {
            retryAfter = res.headers.get('Retry-After');
            expect(await res.text()).toContain('too many requests');
          }
        }
        expect(statuses).toEqual([201, 201, 201, 201, 201, 429, 429]);
        expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
        // A window later (1 s here; 60 s for Upstash's limiter, which this test does not wait for).
        if (!name.startsWith('upstash')) {
          await Bun.sleep(1100);
          expect((await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } })).status).toBe(201);
        }
      } finally {
        await server.stop();
      }
    });
  }
});

test('allowed types and extensions: others are refused at creation with 415', async () => {
  const server = await startServer({ allowedTypes: ['image/*', 'application/pdf'], allowedExtensions: ['png', '.PDF', 'jpg'] });
  try {
    const create = (filename: string, filetype: string) =>
      fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', 'Upload-Metadata': `filename ${btoa(filename)},filetype ${btoa(filetype)}` } });
    expect((await create('cat.png', 'image/png')).status).toBe(201);
    expect((await create('doc.pdf', 'application/pdf')).status).toBe(201);
    const badType = await create('x.png', 'text/html');
    expect(badType.status).toBe(415);
    expect(await badType.text()).toContain('text/html');
    expect((await create('x.exe', 'image/png')).status).toBe(415);
    expect((await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } })).status).toBe(415);
  } finally {
    await server.stop();
  }
});
