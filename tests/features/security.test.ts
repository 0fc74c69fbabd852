import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sign } from 'hono/jwt';
import { createTusflow, parseEnv, type RateLimiter } from '../../src/index.ts';
import { createUpload, startServer, type TestServer, TUS } from '../support/server.ts';

const SECRET = 'security-test-secret';
const inTenMinutes = () => Math.floor(Date.now() / 1000) + 600;
const bearer = async (sub: string, claims: Record<string, unknown> = {}) => ({
  Authorization: `Bearer ${await sign({ sub, exp: inTenMinutes(), ...claims }, SECRET, 'HS256')}`,
});
const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

/** Counts every key the server asks a rate limiter about, and allows `limit` hits per key. */
class RecordingLimiter implements RateLimiter {
  readonly hits = new Map<string, number>();
  constructor(readonly limit = Number.POSITIVE_INFINITY) {}
  async hit(client: string) {
    const count = (this.hits.get(client) ?? 0) + 1;
    this.hits.set(client, count);
    return { allowed: count <= this.limit, retryAfterSeconds: 60 };
  }
}

describe('X-HTTP-Method-Override: every guard runs on the method that is executed', () => {
  let server: TestServer;
  let alice: Record<string, string>;
  let victim: string;
  let partial: string;
  const limiter = new RecordingLimiter();
  beforeAll(async () => {
    server = await startServer({ jwtSecret: SECRET, rateLimiter: limiter, corsOrigins: ['http://app.example'] });
    alice = await bearer('alice');
    victim = await createUpload(server.endpoint, { ...alice, 'Upload-Length': '6' });
    await fetch(victim, { method: 'PATCH', headers: { ...PATCH, ...alice, 'Upload-Offset': '0' }, body: 'secret' });
    partial = await createUpload(server.endpoint, { ...alice, 'Upload-Length': '6', 'Upload-Concat': 'partial' });
    await fetch(partial, { method: 'PATCH', headers: { ...PATCH, ...alice, 'Upload-Offset': '0' }, body: 'hidden' });
  });
  afterAll(() => server.stop());

  const unchanged = async () => {
    const head = await fetch(victim, { method: 'HEAD', headers: { ...TUS, ...alice } });
    expect([head.status, head.headers.get('Upload-Offset')]).toEqual([200, '6']);
    expect(await (await fetch(victim, { headers: alice })).text()).toBe('secret');
  };

  for (const carrier of ['OPTIONS', 'HEAD', 'GET', 'POST'] as const) {
    test(`${carrier} carrying an override, without a token: 401 for every method, nothing read or changed`, async () => {
      for (const override of ['GET', 'HEAD', 'DELETE', 'PATCH', 'POST', 'get', ' delete ']) {
        const headers: Record<string, string> = { ...TUS, 'X-HTTP-Method-Override': override, 'Upload-Offset': '6', 'Content-Type': 'application/offset+octet-stream' };
        if (override.trim().toUpperCase() === 'POST') headers['Upload-Concat'] = `final;${partial}`;
        const target = override.trim().toUpperCase() === 'POST' ? server.endpoint : victim;
        const res = await fetch(target, { method: carrier, headers });
        const body = await res.text();
        expect([carrier, override, res.status]).toEqual([carrier, override, 401]);
        expect(body).not.toContain('secret');
        expect(body).not.toContain('hidden');
      }
      await unchanged();
    });
  }

  test("OPTIONS + override with another user's token: 403, as the method itself would get", async () => {
    const bob = await bearer('bob');
    for (const override of ['GET', 'DELETE', 'PATCH']) {
      const res = await fetch(victim, { method: 'OPTIONS', headers: { ...TUS, ...bob, 'X-HTTP-Method-Override': override, 'Upload-Offset': '6' } });
      expect([override, res.status]).toEqual([override, 403]);
    }
    const concat = await fetch(server.endpoint, {
      method: 'OPTIONS',
      headers: { ...TUS, ...bob, 'X-HTTP-Method-Override': 'POST', 'Upload-Concat': `final;${partial}` },
    });
    expect(concat.status).toBe(403);
    await unchanged();
  });

  test('the owner may use the override: it is a real GET / DELETE for her', async () => {
    const own = await createUpload(server.endpoint, { ...alice, 'Upload-Length': '0' });
    const read = await fetch(own, { method: 'POST', headers: { ...TUS, ...alice, 'X-HTTP-Method-Override': 'GET' } });
    expect(read.status).toBe(200);
    const gone = await fetch(own, { method: 'POST', headers: { ...TUS, ...alice, 'X-HTTP-Method-Override': 'DELETE' } });
    expect(gone.status).toBe(204);
    expect((await fetch(own, { method: 'HEAD', headers: { ...TUS, ...alice } })).status).toBe(404);
  });

  test('a real CORS preflight and discovery need no token; a preflight-shaped OPTIONS with an override is not a preflight', async () => {
    const origin = { Origin: 'http://app.example' };
    const preflight = await fetch(victim, { method: 'OPTIONS', headers: { ...origin, 'Access-Control-Request-Method': 'PATCH' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBe('http://app.example');
    expect((await fetch(server.endpoint, { method: 'OPTIONS' })).status).toBe(204);
    const disguised = await fetch(victim, {
      method: 'OPTIONS',
      headers: { ...origin, 'Access-Control-Request-Method': 'GET', 'X-HTTP-Method-Override': 'GET' },
    });
    expect(disguised.status).toBe(401);
    expect(await disguised.text()).not.toContain('secret');
  });

  test('requests carrying an override count against the rate limit', async () => {
    const before = [...limiter.hits.values()].reduce((a, b) => a + b, 0);
    await fetch(victim, { method: 'OPTIONS', headers: { 'X-HTTP-Method-Override': 'GET' } });
    const after = [...limiter.hits.values()].reduce((a, b) => a + b, 0);
    expect(after).toBe(before + 1);
  });
});

describe('malformed credentials: 400 or 401 with a short reason, never a 500', () => {
  const headers = ['Bearer a b', 'Bearer !!!', 'Basic abc', 'Bearer', 'Bearer ', 'bearer\ttoken', 'x'.repeat(10_000), `Bearer ${'a'.repeat(9000)}`, 'Bearer a=b', '  '];
  for (const [mode, options] of [
    ['AUTH_TOKEN', { authToken: 'let-me-in' }],
    ['JWT_SECRET', { jwtSecret: SECRET }],
  ] as const) {
    test(mode, async () => {
      const server = await startServer(options);
      const errors: string[] = [];
      const original = console.error;
      console.error = (...args: unknown[]) => void errors.push(args.map(String).join(' '));
      try {
        for (const authorization of headers) {
          const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: authorization } });
          const reason = await res.text();
          expect([authorization.slice(0, 20), [400, 401].includes(res.status)]).toEqual([authorization.slice(0, 20), true]);
          expect(reason.length).toBeLessThan(120);
          expect(reason).not.toContain('at ');
          expect(res.headers.get('WWW-Authenticate')).toStartWith('Bearer');
        }
        expect(errors).toEqual([]);
      } finally {
        console.error = original;
        await server.stop();
      }
    });
  }

  test('the scheme is case-insensitive and may be followed by several spaces (RFC 7235)', async () => {
    const server = await startServer({ authToken: 'let-me-in' });
    try {
      for (const authorization of ['Bearer let-me-in', 'bearer let-me-in', 'BEARER let-me-in', 'Bearer   let-me-in']) {
        const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: authorization } });
        expect([authorization, res.status]).toEqual([authorization, 201]);
      }
      const wrong = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: 'Bearer let-me-out' } });
      expect(wrong.status).toBe(401);
      expect(await wrong.text()).toContain('wrong token');
    } finally {
      await server.stop();
    }
  });
});

test('AUTH_TOKEN and JWT_SECRET together: refused at start, naming both', () => {
  expect(() => parseEnv({ AUTH_TOKEN: 'a', JWT_SECRET: 'b' })).toThrow(/AUTH_TOKEN and JWT_SECRET/);
  expect(() => createTusflow({ authToken: 'a', jwtSecret: 'b' })).toThrow(/authToken and jwtSecret/);
});

describe('rate-limit keys: one short key per client, whatever its header says', () => {
  test('spellings of one token, wrong tokens and huge headers from one address share one key', async () => {
    const limiter = new RecordingLimiter();
    const server = await startServer({ authToken: 'let-me-in', rateLimiter: limiter });
    try {
      const variants = ['bearer x', 'BEARER x', 'Bearer  x', 'Bearer let-me-in', 'Bearer let-me-In', 'Basic abc', 'Bearer a b'];
      for (let i = 0; i < 20; i++) variants.push(`Bearer ${crypto.randomUUID()}`, `Bearer ${'z'.repeat(8000)}${i}`);
      for (const authorization of variants) {
        await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: authorization } });
      }
      await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } });
      expect(limiter.hits.size).toBe(1);
      const [key, count] = [...limiter.hits][0]!;
      expect(count).toBe(variants.length + 1);
      expect(key.length).toBeLessThanOrEqual(24);
    } finally {
      await server.stop();
    }
  });

  test('JWT users are keyed by their sub: one user at the limit does not stop another; refused tokens count', async () => {
    const limiter = new RecordingLimiter(3);
    const server = await startServer({ jwtSecret: SECRET, rateLimiter: limiter });
    const create = (headers: Record<string, string>) => fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', ...headers } });
    try {
      const alice = await bearer('alice');
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await create(alice)).status);
      expect(statuses).toEqual([201, 201, 201, 429]);
      expect((await create(await bearer('bob'))).status).toBe(201);
      // Guessing: refused credentials are counted by address, and stopped too.
      const guesses = [];
      for (let i = 0; i < 4; i++) guesses.push((await create({ Authorization: `Bearer ${crypto.randomUUID()}` })).status);
      expect(guesses).toEqual([401, 401, 401, 429]);
      for (const key of limiter.hits.keys()) expect(key.length).toBeLessThanOrEqual(24);
    } finally {
      await server.stop();
    }
  });
});

test('behind a trusted proxy the client is the last X-Forwarded-For entry: the ones before it cannot buy fresh budgets', async () => {
  const limiter = new RecordingLimiter();
  const server = await startServer({ trustProxy: true, rateLimiter: limiter });
  try {
    for (let i = 0; i < 5; i++) {
      await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', 'X-Forwarded-For': `10.0.0.${i}, 192.0.2.7` } });
    }
    expect([...limiter.hits.values()]).toEqual([5]);
  } finally {
    await server.stop();
  }
});

test('/metrics goes through the rate limit, and unknown methods share one series', async () => {
  const limiter = new RecordingLimiter(2);
  const server = await startServer({ metricsToken: 'scrape-me', rateLimiter: limiter });
  try {
    const guesses = [];
    for (let i = 0; i < 3; i++) guesses.push((await fetch(`${server.origin}/metrics`, { headers: { Authorization: `Bearer guess${i}` } })).status);
    expect(guesses).toEqual([401, 401, 429]);
  } finally {
    await server.stop();
  }
  const open = await startServer();
  try {
    for (const method of ['PROPFIND', 'MKCOL']) await fetch(open.endpoint, { method });
    const text = await (await fetch(`${open.origin}/metrics`)).text();
    expect(text).not.toContain('PROPFIND');
    expect(text).toContain('method="OTHER"');
  } finally {
    await open.stop();
  }
});

describe('JWT claims: exp required, aud and iss when configured', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ jwtSecret: SECRET, jwtAudience: 'uploads', jwtIssuer: 'https://id.example' });
  });
  afterAll(() => server.stop());
  const create = async (claims: Record<string, unknown>) => {
    const token = await sign({ sub: 'alice', ...claims }, SECRET, 'HS256');
    return fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: `Bearer ${token}` } });
  };

  test('the right audience and issuer with an exp: accepted', async () => {
    expect((await create({ aud: 'uploads', iss: 'https://id.example', exp: inTenMinutes() })).status).toBe(201);
  });
  test('no exp, an expired exp, another audience, another issuer, none: 401', async () => {
    const good = { aud: 'uploads', iss: 'https://id.example', exp: inTenMinutes() };
    const cases: Record<string, Record<string, unknown>> = {
      'no exp': { ...good, exp: undefined },
      expired: { ...good, exp: Math.floor(Date.now() / 1000) - 5 },
      'other aud': { ...good, aud: 'admin' },
      'no aud': { ...good, aud: undefined },
      'other iss': { ...good, iss: 'https://evil.example' },
    };
    for (const [name, claims] of Object.entries(cases)) {
      const res = await create(claims);
      expect([name, res.status]).toEqual([name, 401]);
    }
  });
  test('JWT_REQUIRE_EXP=false lets a token without exp through', async () => {
    const open = await startServer({ jwtSecret: SECRET, jwtRequireExp: false });
    try {
      const token = await sign({ sub: 'alice' }, SECRET, 'HS256');
      expect((await fetch(open.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: `Bearer ${token}` } })).status).toBe(201);
    } finally {
      await open.stop();
    }
  });
});

describe('metrics and CORS', () => {
  test('/metrics carries no CORS headers, and needs METRICS_TOKEN when one is set', async () => {
    const server = await startServer({ metricsToken: 'scrape-me' });
    try {
      const origin = { Origin: 'http://page.example' };
      const refused = await fetch(`${server.origin}/metrics`, { headers: origin });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('Access-Control-Allow-Origin')).toBeNull();
      const wrong = await fetch(`${server.origin}/metrics`, { headers: { Authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
      const ok = await fetch(`${server.origin}/metrics`, { headers: { ...origin, Authorization: 'Bearer scrape-me' } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('tusflow_requests_total');
      expect(ok.headers.get('Access-Control-Allow-Origin')).toBeNull();
      expect(ok.headers.get('Access-Control-Expose-Headers')).toBeNull();
    } finally {
      await server.stop();
    }
  });

  test('an answer to a refused origin still says Vary: Origin', async () => {
    const server = await startServer({ corsOrigins: ['http://good.example'] });
    try {
      const res = await fetch(server.endpoint, { method: 'OPTIONS', headers: { Origin: 'http://evil.example' } });
      expect(res.headers.get('Access-Control-Allow-Origin')).toBeNull();
      expect(res.headers.get('Vary')).toContain('Origin');
      const none = await fetch(server.endpoint, { method: 'OPTIONS' });
      expect(none.headers.get('Vary')).toContain('Origin');
    } finally {
      await server.stop();
    }
  });
});
