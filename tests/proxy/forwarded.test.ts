import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { parseEnv, ConfigError } from '../../src/wiring/config.ts';
import { createTusflow } from '../../src/index.ts';
import { randomBytes, sha256, startServer, TUS, type TestServer } from '../support/server.ts';
import { spawnServer } from '../support/process.ts';
import { lastForwardedElement, MAX_FORWARDED_LENGTH } from '../../src/http/forwarded.ts';

// Raw requests straight to a server, carrying the headers a reverse proxy would add (or a client
// pretending to be one): what the server makes of them shows in Location and the other URLs it emits.
let trusting: TestServer;
let relative: TestServer;
let plain: TestServer;
let credentialed: TestServer;
const PAGE_ORIGIN = 'http://127.0.0.1:9';
beforeAll(async () => {
  [trusting, relative, plain, credentialed] = await Promise.all([
    startServer({ trustProxy: true }),
    startServer({ trustProxy: true, relativeLocation: true }),
    startServer(),
    startServer({ corsOrigins: [PAGE_ORIGIN], corsCredentials: true, rateLimit: 1 }),
  ]);
});
afterAll(() => Promise.all([trusting, relative, plain, credentialed].map((s) => s.stop())));

const create = (server: TestServer, headers: Record<string, string>, length = 5) =>
  fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length), ...headers } });
const location = async (server: TestServer, headers: Record<string, string>) => {
  const res = await create(server, headers);
  expect(res.status).toBe(201);
  return res.headers.get('Location')!;
};
/** The upload's URL on the server itself, for a Location that names the public side. */
const direct = (server: TestServer, url: string) => `${server.origin}${new URL(url, 'http://x').pathname.replace(/^\/uploads/, '')}`;
const ID = '[0-9a-zA-Z_-]+';

describe('forwarded headers, with TRUST_PROXY', () => {
  test('X-Forwarded-Host without a port: the public default port, not the server’s', async () => {
    const url = await location(trusting, { 'X-Forwarded-Host': 'up.example.org', 'X-Forwarded-Proto': 'https' });
    expect(url).toMatch(new RegExp(`^https://up\\.example\\.org/files/${ID}$`));
  });

  test('X-Forwarded-Port and -Prefix: public port and path; the bytes go where Location says', async () => {
    const headers = { 'X-Forwarded-Host': 'up.example.org', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Port': '8443', 'X-Forwarded-Prefix': '/uploads/' };
    const bytes = randomBytes(64 * 1024);
    const res = await create(trusting, headers, bytes.length);
    const url = res.headers.get('Location')!;
    expect(url).toMatch(new RegExp(`^https://up\\.example\\.org:8443/uploads/files/${ID}$`));
    // What the proxy would forward: the path without its prefix.
    const patch = await fetch(direct(trusting, url), {
      method: 'PATCH',
      headers: { ...TUS, ...headers, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: bytes,
    });
    expect(patch.status).toBe(204);
    expect(sha256(new Uint8Array(await (await fetch(direct(trusting, url))).arrayBuffer()))).toBe(sha256(bytes));
  });

  test('a host with its port; X-Forwarded-Port wins over it; several entries: the last (nearest proxy) counts', async () => {
    expect(await location(trusting, { 'X-Forwarded-Host': 'up.example.org:8080' })).toMatch(new RegExp(`^http://up\\.example\\.org:8080/files/${ID}$`));
    expect(await location(trusting, { 'X-Forwarded-Host': 'up.example.org:8080', 'X-Forwarded-Port': '9090' })).toStartWith('http://up.example.org:9090/files/');
    expect(
      await location(trusting, { 'X-Forwarded-Host': 'spoofed.example, up.example.org', 'X-Forwarded-Proto': 'http, https', 'X-Forwarded-Prefix': '/a, /b' }),
    ).toStartWith('https://up.example.org/b/files/');
    expect(await location(trusting, { 'X-Forwarded-Host': '[::1]:8443', 'X-Forwarded-Proto': 'https' })).toStartWith('https://[::1]:8443/files/');
  });

  test('RFC 7239 Forwarded: the last element, quoted values, before X-Forwarded-*', async () => {
    const forwarded = 'for=192.0.2.1;host=spoofed.example;proto=http, for="[2001:db8::1]";host="up.example.org:8443";proto=https';
    expect(await location(trusting, { Forwarded: forwarded, 'X-Forwarded-Host': 'other.example' })).toMatch(new RegExp(`^https://up\\.example\\.org:8443/files/${ID}$`));
    // A comma inside a quoted value does not start an element; parameter names are case-insensitive.
    expect(await location(trusting, { Forwarded: 'for="a,b";Host="up.example.org";PROTO=https' })).toStartWith('https://up.example.org/files/');
    // Forwarded has no prefix: X-Forwarded-Prefix still applies.
    expect(await location(trusting, { Forwarded: 'host=up.example.org', 'X-Forwarded-Prefix': '/uploads' })).toStartWith('http://up.example.org/uploads/files/');
  });

  test('malformed values are ignored, never a 500', async () => {
    const own = `${trusting.origin}/files/`;
    const bad: Record<string, string>[] = [
      { 'X-Forwarded-Host': 'evil.example/path' },
      { 'X-Forwarded-Host': 'user@evil.example' },
      { 'X-Forwarded-Host': 'evil.example:notaport' },
      { 'X-Forwarded-Host': 'evil.example:99999' },
      { 'X-Forwarded-Proto': 'javascript' },
      { 'X-Forwarded-Port': '99999' },
      { 'X-Forwarded-Port': '-1' },
      { 'X-Forwarded-Prefix': '/../admin' },
      { 'X-Forwarded-Prefix': '/x"><script>' },
      { 'X-Forwarded-Prefix': 'no-leading-slash' },
      { Forwarded: ';;==,,"' },
      { Forwarded: 'host="unterminated' },
      { Forwarded: 'host=evil.example/x;proto=ftp' },
    ];
    for (const headers of bad) {
      const res = await create(trusting, headers);
      expect([JSON.stringify(headers), res.status]).toEqual([JSON.stringify(headers), 201]);
      expect(res.headers.get('Location')).toStartWith(own);
    }
  });

  test('the prefix reaches every URL: Upload-Concat final URLs, the IETF Location, the page’s endpoint', async () => {
    const headers = { 'X-Forwarded-Host': 'up.example.org', 'X-Forwarded-Prefix': '/uploads' };
    const partials: string[] = [];
    for (const text of ['ab', 'cd']) {
      const res = await create(trusting, { ...headers, 'Upload-Concat': 'partial', 'Content-Type': 'application/offset+octet-stream' }, 2);
      const url = res.headers.get('Location')!;
      await fetch(direct(trusting, url), { method: 'PATCH', headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: text });
      partials.push(url);
    }
    expect(partials[0]).toStartWith('http://up.example.org/uploads/files/');
    const final = await fetch(trusting.endpoint, { method: 'POST', headers: { ...TUS, ...headers, 'Upload-Concat': `final;${partials.join(' ')}` } });
    expect(final.status).toBe(201);
    const finalUrl = final.headers.get('Location')!;
    expect(finalUrl).toStartWith('http://up.example.org/uploads/files/');
    const head = await fetch(direct(trusting, finalUrl), { method: 'HEAD', headers: { ...TUS, ...headers } });
    expect(head.headers.get('Upload-Concat')).toBe(`final;${partials.join(' ')}`);
    expect(await (await fetch(direct(trusting, finalUrl))).text()).toBe('abcd');

    const ietf = await fetch(trusting.endpoint, { method: 'POST', headers: { ...headers, 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?1' }, body: 'whole' });
    expect(ietf.status).toBe(201);
    expect(ietf.headers.get('Location')).toStartWith('http://up.example.org/uploads/files/');

    const page = await (await fetch(`${trusting.origin}/`, { headers })).text();
    expect(page).toContain('name="tus-endpoint" content="/uploads/files/"');
    expect(await (await fetch(`${plain.origin}/`, { headers })).text()).toContain('name="tus-endpoint" content="/files/"');
  });
});

describe('hostile forwarded headers cost nothing', () => {
  /** Server time of a creation POST with these headers, through the app itself (no socket limits the header size). */
  const serverMs = async (headers: Record<string, string>) => {
    const started = performance.now();
    const res = await trusting.tusflow.fetch(new Request(trusting.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5', ...headers } }), {});
    const ms = performance.now() - started;
    expect(res.status).toBe(201);
    return { ms, location: res.headers.get('Location')! };
  };
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

  test('a 64 KiB Forwarded of semicolons: answered as fast as a short one, and ignored', async () => {
    const hostile = `host=evil.example;${';'.repeat(64 * 1024)}`;
    const [hostileMs, shortMs] = [[], []] as [number[], number[]];
    for (let i = 0; i < 5; i++) {
      const attack = await serverMs({ Forwarded: hostile });
      expect(attack.location).toStartWith(`${trusting.origin}/files/`);
      hostileMs.push(attack.ms);
      const plain = await serverMs({ Forwarded: 'host=up.example.org' });
      expect(plain.location).toStartWith('http://up.example.org/files/');
      shortMs.push(plain.ms);
    }
    console.log(`creation POST, median of 5: 64 KiB Forwarded ${median(hostileMs).toFixed(2)} ms, short ${median(shortMs).toFixed(2)} ms`);
    expect(median(hostileMs)).toBeLessThan(median(shortMs) + 50);
    // The parser itself is linear, whatever the length (the cap aside): 64 Ki separators at once.
    const started = performance.now();
    expect(lastForwardedElement(hostile).get('host')).toBe('evil.example');
    const parseMs = performance.now() - started;
    console.log(`lastForwardedElement of 64 KiB: ${parseMs.toFixed(2)} ms`);
    expect(parseMs).toBeLessThan(500); // quadratic, it took seconds
  });

  test('every forwarded header past 1 KiB is ignored, just under it honoured', async () => {
    const pad = (value: string, length: number) => `${value};x=${'a'.repeat(length - value.length - 3)}`;
    expect((await serverMs({ Forwarded: pad('host=up.example.org', MAX_FORWARDED_LENGTH) })).location).toStartWith('http://up.example.org/files/');
    expect((await serverMs({ Forwarded: pad('host=up.example.org', MAX_FORWARDED_LENGTH + 1) })).location).toStartWith(`${trusting.origin}/files/`);
    expect((await serverMs({ 'X-Forwarded-Host': `${'a,'.repeat(MAX_FORWARDED_LENGTH)}up.example.org` })).location).toStartWith(`${trusting.origin}/files/`);
  });

  test('the page’s endpoint stays /files/ under a hostile X-Forwarded-Prefix', async () => {
    for (const prefix of ['/x"><script>', '/../admin', '/a/./b', `/${'a'.repeat(2000)}`]) {
      const res = await fetch(`${trusting.origin}/`, { headers: { 'X-Forwarded-Prefix': prefix } });
      expect([prefix, res.status]).toEqual([prefix, 200]);
      const page = await res.text();
      expect(page).toContain('name="tus-endpoint" content="/files/"');
      expect(page).not.toContain('<script>"');
      expect(page).not.toContain('admin');
    }
  });
});

describe('the client address behind a trusted proxy (RFC 7239 for=, then X-Forwarded-For)', () => {
  test('hooks see for= of the last Forwarded element; unknown or obfuscated: no forwarded address at all', async () => {
    const seen: (string | undefined)[] = [];
    const server = await startServer({
      trustProxy: true,
      hooks: {
        'pre-create': ({ request }) => {
          seen.push(request?.remoteAddress);
          return {};
        },
      },
    });
    try {
      const cases: [Record<string, string>, string | undefined][] = [
        [{ Forwarded: 'for=192.0.2.1, for=198.51.100.7;proto=https', 'X-Forwarded-For': '203.0.113.9' }, '198.51.100.7'],
        [{ Forwarded: 'for="198.51.100.7:4711"' }, '198.51.100.7'],
        [{ Forwarded: 'for="[2001:db8:cafe::17]:4711"', 'X-Forwarded-For': '203.0.113.9' }, '2001:db8:cafe::17'],
        [{ Forwarded: 'For="[2001:db8::1]"' }, '2001:db8::1'],
        // No for= in Forwarded: X-Forwarded-For, its last entry.
        [{ Forwarded: 'host=up.example.org', 'X-Forwarded-For': '192.0.2.1, 203.0.113.9' }, '203.0.113.9'],
        // The proxy hides the client: neither it nor a client's X-Forwarded-For names one; the connection does.
        [{ Forwarded: 'for=unknown', 'X-Forwarded-For': '203.0.113.9' }, '127.0.0.1'],
        [{ Forwarded: 'for=_hidden', 'X-Forwarded-For': '203.0.113.9' }, '127.0.0.1'],
        [{ Forwarded: 'for="2001:db8::1"' }, '127.0.0.1'],
      ];
      for (const [headers] of cases) expect((await create(server, headers)).status).toBe(201);
      expect(seen).toEqual(cases.map(([, address]) => address));
    } finally {
      await server.stop();
    }
  });

  test('a client-supplied X-Forwarded-For does not dodge the rate limit when the proxy sends Forwarded', async () => {
    const server = await startServer({ trustProxy: true, rateLimit: 1 });
    try {
      const first = await create(server, { Forwarded: 'for=198.51.100.7', 'X-Forwarded-For': '203.0.113.1' });
      const second = await create(server, { Forwarded: 'for=198.51.100.7', 'X-Forwarded-For': '203.0.113.2' });
      expect([first.status, second.status]).toEqual([201, 429]);
      // Another client behind the same proxy has its own budget.
      expect((await create(server, { Forwarded: 'for=198.51.100.8' })).status).toBe(201);
    } finally {
      await server.stop();
    }
  });

  test('the port in Forwarded host= wins over X-Forwarded-Port', async () => {
    expect(await location(trusting, { Forwarded: 'host="up.example.org:8443";proto=https', 'X-Forwarded-Port': '9090' })).toStartWith(
      'https://up.example.org:8443/files/',
    );
    // Without a port there, X-Forwarded-Port still says it.
    expect(await location(trusting, { Forwarded: 'host=up.example.org;proto=https', 'X-Forwarded-Port': '9090' })).toStartWith('https://up.example.org:9090/files/');
  });
});

describe('hooks behind a trusted proxy', () => {
  test('see the public URL of the request and the client from the last X-Forwarded-For entry', async () => {
    const seen: { url: string; remoteAddress?: string }[] = [];
    const server = await startServer({
      trustProxy: true,
      hooks: {
        'pre-create': ({ request }) => {
          if (request) seen.push({ url: request.url, remoteAddress: request.remoteAddress });
          return {};
        },
      },
    });
    try {
      const headers = {
        'X-Forwarded-Host': 'up.example.org',
        'X-Forwarded-Proto': 'https',
        'X-Forwarded-Prefix': '/uploads',
        'X-Forwarded-For': '192.0.2.1, 198.51.100.7',
      };
      expect((await create(server, headers)).status).toBe(201);
      expect(seen).toEqual([{ url: 'https://up.example.org/uploads/files/', remoteAddress: '198.51.100.7' }]);
    } finally {
      await server.stop();
    }
  });
});

describe('without TRUST_PROXY nothing forwarded is honoured (a client can send these headers itself)', () => {
  test('spoofed X-Forwarded-*, Forwarded and the page’s prefix are ignored', async () => {
    const spoof = {
      'X-Forwarded-Host': 'evil.example',
      'X-Forwarded-Proto': 'https',
      'X-Forwarded-Port': '444',
      'X-Forwarded-Prefix': '/evil',
      Forwarded: 'host=evil.example;proto=https',
    };
    expect(await location(plain, spoof)).toMatch(new RegExp(`^${plain.origin}/files/${ID}$`));
    expect(await (await fetch(`${plain.origin}/`, { headers: spoof })).text()).not.toContain('/evil');
  });
});

describe('RELATIVE_LOCATION', () => {
  test('Location is a path (with the prefix), resolvable against the URL the client used; concatenation takes it back', async () => {
    const url = await location(relative, { 'X-Forwarded-Prefix': '/uploads', 'X-Forwarded-Host': 'ignored.example' });
    expect(url).toMatch(new RegExp(`^/uploads/files/${ID}$`));
    expect(await location(relative, {})).toMatch(new RegExp(`^/files/${ID}$`));
    const partial = (await create(relative, { 'Upload-Concat': 'partial' }, 3)).headers.get('Location')!;
    expect(partial).toStartWith('/files/');
    const patch = await fetch(`${relative.origin}${partial}`, {
      method: 'PATCH',
      headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: 'xyz',
    });
    expect(patch.status).toBe(204);
    // A client behind a Host-rewriting proxy knows only the public origin: the path names the upload.
    const final = await fetch(relative.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;https://public.example${partial}` } });
    expect(final.status).toBe(201);
    const finalUrl = final.headers.get('Location')!;
    expect(finalUrl).toStartWith('/files/');
    expect((await fetch(`${relative.origin}${finalUrl}`, { method: 'HEAD', headers: TUS })).headers.get('Upload-Concat')).toBe(`final;${partial}`);
    expect(await (await fetch(`${relative.origin}${finalUrl}`)).text()).toBe('xyz');
  });
});

describe('CORS with credentials', () => {
  test('preflight and answer: the exact origin, Allow-Credentials, Vary: Origin; Retry-After and X-Request-Id exposed', async () => {
    const preflight = await fetch(credentialed.endpoint, {
      method: 'OPTIONS',
      headers: { Origin: PAGE_ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'tus-resumable, upload-length' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBe(PAGE_ORIGIN);
    expect(preflight.headers.get('Access-Control-Allow-Credentials')).toBe('true');
    expect(preflight.headers.get('Vary')).toContain('Origin');

    const created = await create(credentialed, { Origin: PAGE_ORIGIN });
    expect(created.status).toBe(201);
    expect(created.headers.get('Access-Control-Allow-Origin')).toBe(PAGE_ORIGIN);
    expect(created.headers.get('Access-Control-Allow-Credentials')).toBe('true');
    expect(created.headers.get('Vary')).toContain('Origin');
    const exposed = created.headers.get('Access-Control-Expose-Headers')!.split(', ');
    expect(exposed).toContain('Retry-After');
    expect(exposed).toContain('X-Request-Id');
    expect(exposed).toContain('Location');

    // The rate limit (1 a minute) answers 429 with a Retry-After a page may now read.
    const limited = await create(credentialed, { Origin: PAGE_ORIGIN });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect(limited.headers.get('Access-Control-Allow-Credentials')).toBe('true');
    expect(limited.headers.get('X-Request-Id')).toBeTruthy();
  });

  test('an origin not listed gets no CORS headers at all', async () => {
    const res = await fetch(credentialed.endpoint, { method: 'OPTIONS', headers: { Origin: 'http://127.0.0.1:10', 'Access-Control-Request-Method': 'POST' } });
    expect(res.headers.get('Access-Control-Allow-Origin')).toBeNull();
    expect(res.headers.get('Access-Control-Allow-Credentials')).toBeNull();
  });

  test('without CORS_CREDENTIALS no Allow-Credentials', async () => {
    const res = await create(plain, { Origin: PAGE_ORIGIN });
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe('*');
    expect(res.headers.get('Access-Control-Allow-Credentials')).toBeNull();
  });

  test('credentials with any origin are refused at start-up: env, options, and the server process', async () => {
    expect(() => parseEnv({ CORS_CREDENTIALS: 'true' })).toThrow(ConfigError);
    expect(() => parseEnv({ CORS_CREDENTIALS: 'true', CORS_ORIGINS: 'https://a.example,*' })).toThrow(/CORS_CREDENTIALS=true needs CORS_ORIGINS/);
    expect(parseEnv({ CORS_CREDENTIALS: 'true', CORS_ORIGINS: 'https://a.example' }).CORS_CREDENTIALS).toBe(true);
    expect(() => createTusflow({ corsCredentials: true })).toThrow(/corsCredentials/);
    const started = spawnServer({ CORS_CREDENTIALS: 'true' });
    await expect(started).rejects.toThrow(/CORS_CREDENTIALS=true needs CORS_ORIGINS/);
  });
});
