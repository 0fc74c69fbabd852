/**
 * Starting a server with settings that cannot work: each entry refuses at once with one line on a
 * piped stderr naming the setting, and exit 1, before it says it listens. Runs are spawned in
 * parallel. (S3 settings: tests/storage/s3-errors.test.ts, against radosgw.)
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnServer } from '../support/process.ts';
import { refusal, runUntilExit, type Entry } from '../support/startup.ts';
import { startUpstashBridge, type UpstashBridge } from '../support/upstash-bridge.ts';
import { startWorker } from '../../scripts/worker.ts';
import { TUS } from '../support/server.ts';
import { ensureBuilt } from '../support/build.ts';

const SERVERS: Entry[] = ['bun', 'deno'];
let dir: string;
let bridge: UpstashBridge;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tusflow-startup-'));
  bridge = await startUpstashBridge();
});
afterAll(async () => {
  await bridge.stop();
  await rm(dir, { recursive: true, force: true });
});

test.each([...SERVERS, 'node'] as Entry[])(
  '%s: a port held by another listener, a bad HOST, an unwritable DATA_DIR: one line each, exit 1',
  async (entry) => {
    if (entry === 'node') await ensureBuilt();
    // A real listener holds the port for the whole test.
    const holder = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
    const aFile = join(dir, `${entry}-a-file`);
    await writeFile(aFile, '');
    try {
      const [inUse, unresolved, foreign, notADir] = await Promise.all([
        runUntilExit(entry, { PORT: String(holder.port), DATA_DIR: dir }),
        runUntilExit(entry, { HOST: 'no-such-host.invalid', DATA_DIR: dir }),
        // TEST-NET-1 (RFC 5737): an address no machine here has.
        runUntilExit(entry, { HOST: '192.0.2.1', DATA_DIR: dir }),
        runUntilExit(entry, { DATA_DIR: join(aFile, 'data') }),
      ]);
      expect(refusal(inUse)).toBe(`tusflow: PORT ${holder.port} is in use on 127.0.0.1: another process listens there (set PORT)`);
      expect(refusal(unresolved)).toMatch(/^tusflow: HOST=no-such-host\.invalid is not an address of this machine nor a name that resolves: /);
      expect(refusal(foreign)).toBe('tusflow: HOST=192.0.2.1 is not an address of this machine');
      expect(refusal(notADir)).toMatch(new RegExp(`^tusflow: DATA_DIR=${aFile}/data is not a writable directory: .*ENOTDIR`));
    } finally {
      holder.stop(true);
    }
  },
  60_000,
);

test.each(SERVERS)(
  '%s: Redis and Upstash that cannot be used: one line naming the variable, within seconds',
  async (entry) => {
    const closed = await freePort();
    const [redis, badRedisUrl, upstashToken, upstashHost] = await Promise.all([
      runUntilExit(entry, { REDIS_URL: `redis://127.0.0.1:${closed}`, DATA_DIR: dir }),
      // Bun's Redis client throws from its constructor on a URL it cannot parse.
      runUntilExit(entry, { REDIS_URL: 'redis://127.0.0.1:99999', DATA_DIR: dir }),
      runUntilExit(entry, { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: 'wrong-token', DATA_DIR: dir }),
      runUntilExit(entry, { UPSTASH_REDIS_REST_URL: 'http://no-such-host.invalid', UPSTASH_REDIS_REST_TOKEN: bridge.token, DATA_DIR: dir }),
    ]);
    expect(refusal(redis)).toMatch(new RegExp(`^tusflow: Redis is not reachable.* \\(check REDIS_URL=redis://127\\.0\\.0\\.1:${closed}\\)$`));
    expect(refusal(upstashToken)).toBe(`tusflow: Upstash: Unauthorized (check UPSTASH_REDIS_REST_URL=${bridge.url} and UPSTASH_REDIS_REST_TOKEN)`);
    expect(refusal(upstashHost)).toMatch(
      /^tusflow: Upstash: .*(ENOTFOUND|dns error).* \(check UPSTASH_REDIS_REST_URL=http:\/\/no-such-host\.invalid and UPSTASH_REDIS_REST_TOKEN\)$/,
    );
    expect(refusal(badRedisUrl)).toMatch(/^tusflow: Redis: .+ \(check REDIS_URL=redis:\/\/127\.0\.0\.1:99999\)$/);
    expect(upstashToken.stderr).not.toContain(bridge.token);
    for (const run of [redis, badRedisUrl, upstashToken, upstashHost]) expect(run.ms).toBeLessThan(15_000);
  },
  60_000,
);

test('npm run start:worker without S3 and Upstash settings refuses with one line; a deployed Worker without them answers 503', async () => {
  const run = await runUntilExit('worker', { S3_BUCKET: '', UPSTASH_REDIS_REST_URL: '', UPSTASH_REDIS_REST_TOKEN: '' });
  expect(refusal(run)).toBe('tusflow: a Worker stores bytes in S3 and records in Upstash: set S3_BUCKET, UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN');
  const partial = await runUntilExit('worker', { S3_BUCKET: 'uploads', UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token });
  expect(refusal(partial)).toBe('tusflow: a Worker stores bytes in S3 and records in Upstash: set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY');
  // Deployed without its bindings (no start-up to refuse): every request is refused, and only the
  // Worker's log says which settings are missing.
  const logged: string[] = [];
  const { url, mf } = await startWorker({ TUS_PATH: '/files' }, await freePort(), (line) => logged.push(line));
  try {
    const res = await fetch(new URL('/files/', url), { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('the server is misconfigured\n');
  } finally {
    await mf.dispose();
  }
  expect(logged.join('')).toContain('tusflow is misconfigured: a Worker stores bytes in S3 and records in Upstash: set S3_BUCKET, UPSTASH_REDIS_REST_URL');
}, 60_000);

test('npm run start:worker on a port in use: one line naming PORT, no trace', async () => {
  const holder = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  try {
    const settings = {
      S3_BUCKET: 'uploads',
      S3_ACCESS_KEY_ID: 'id',
      S3_SECRET_ACCESS_KEY: 'secret',
      UPSTASH_REDIS_REST_URL: bridge.url,
      UPSTASH_REDIS_REST_TOKEN: bridge.token,
    };
    const run = await runUntilExit('worker', { ...settings, PORT: String(holder.port) });
    expect(refusal(run)).toBe(`tusflow: PORT ${holder.port} is in use on 127.0.0.1: another process listens there (set PORT)`);
  } finally {
    holder.stop(true);
  }
}, 60_000);

test('settings that are ignored are warned about, and the server starts', async () => {
  const server = await spawnServer({
    DATA_DIR: dir,
    S3_ENDPOINT: 'http://127.0.0.1:9000',
    REDIS_URL: 'redis://127.0.0.1:6379',
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: bridge.token,
  });
  try {
    await Bun.sleep(100); // the warnings follow the start-up line
    const lines = server
      .output()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', state: 'Upstash' }),
      expect.objectContaining({ level: 'warn', message: 'S3_ENDPOINT is ignored without S3_BUCKET: uploads are stored under DATA_DIR' }),
      expect.objectContaining({
        level: 'warn',
        message: 'REDIS_URL is ignored: UPSTASH_REDIS_REST_URL is set too, and records and locks go to Upstash',
      }),
    ]);
  } finally {
    await server.kill();
  }
}, 60_000);

test('the start-up line: JSON with the endpoint, page, storage, state, auth and size limit; plain text with LOG=false', async () => {
  const [json, text] = await Promise.all([
    spawnServer({ DATA_DIR: dir, MAX_SIZE: '1GiB', AUTH_TOKEN: 'secret-token' }),
    spawnServer({ DATA_DIR: dir, MAX_SIZE: '2.5MB', LOG: 'false' }, [`${process.cwd()}/node_modules/.bin/deno`, ...DENO_ARGS]),
  ]);
  try {
    const line = JSON.parse(json.output().trim().split('\n')[0]!);
    const origin = new URL(json.endpoint).origin;
    expect(line).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      level: 'info',
      message: `tusflow listening on ${origin}/files/`,
      endpoint: `${origin}/files/`,
      page: `${origin}/`,
      storage: `files in ${dir}`,
      state: `files in ${dir}`,
      auth: 'token',
      maxSize: 1024 ** 3,
    });
    expect(json.output()).not.toContain('secret-token');
    const res = await fetch(json.endpoint, { method: 'OPTIONS' });
    expect(res.headers.get('Tus-Max-Size')).toBe(String(1024 ** 3));
    const textOrigin = new URL(text.endpoint).origin;
    expect(text.output()).toBe(
      `tusflow listening on ${textOrigin}/files/ (page: ${textOrigin}/, storage: files in ${dir}, records: files in ${dir}, auth: none, max size 2500000 bytes)\n`,
    );
  } finally {
    await Promise.all([json.kill(), text.kill()]);
  }
}, 60_000);

test('sizes take units, through the command line too; nonsense is refused naming the variable', async () => {
  const [flag, bad] = await Promise.all([
    spawnServer({ DATA_DIR: dir }, [process.execPath, 'src/runtime/cli.ts', '--max-size', '1GiB']),
    runUntilExit('bun', { DATA_DIR: dir, S3_BUCKET: 'uploads', S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's', S3_PART_SIZE: '8 parsecs' }),
  ]);
  try {
    const res = await fetch(flag.endpoint, { method: 'OPTIONS' });
    expect(res.headers.get('Tus-Max-Size')).toBe('1073741824');
  } finally {
    await flag.kill();
  }
  expect(refusal(bad)).toMatch(/^tusflow: invalid configuration: S3_PART_SIZE="8 parsecs": expected a size in bytes, e\.g\. /);
}, 60_000);

const DENO_ARGS = ['run', '--allow-net', '--allow-env', '--allow-read', '--allow-write', '--allow-sys', 'src/runtime/deno.ts'];
