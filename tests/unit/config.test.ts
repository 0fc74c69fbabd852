import { expect, test } from 'bun:test';
import { ConfigError, createTusflow, fromEnv, parseEnv } from '../../src/index.ts';
import { freePort, spawnServer } from '../support/process.ts';
import { announce, exposureWarning } from '../../src/wiring/server.ts';
import { configWarnings } from '../../src/wiring/config.ts';
import { S3Client } from '../../src/storage/s3/client.ts';

test('defaults match the documented contract', () => {
  expect(parseEnv({})).toMatchObject({
    PORT: 1080,
    HOST: '0.0.0.0',
    DATA_DIR: './data',
    UPLOAD_TTL_SECONDS: 86_400,
    BODY_IDLE_TIMEOUT_SECONDS: 60,
    CONNECTION_IDLE_TIMEOUT_SECONDS: 120,
    CORS_ORIGINS: ['*'],
    TRUST_PROXY: false,
    CLEANUP_INTERVAL_SECONDS: 300,
    TUS_PATH: '/files',
  });
  expect(fromEnv({ MAX_SIZE: '1000', CORS_ORIGINS: 'https://a.example, https://b.example', BODY_IDLE_TIMEOUT_SECONDS: '5' })).toMatchObject({
    maxSize: 1000,
    bodyIdleTimeoutSeconds: 5,
    corsOrigins: ['https://a.example', 'https://b.example'],
  });
});

test.each([
  [{ PORT: 'eighty' }, 'PORT'],
  [{ PORT: '70000' }, 'PORT'],
  [{ MAX_SIZE: '-5' }, 'MAX_SIZE'],
  [{ MAX_SIZE: '1.5' }, 'MAX_SIZE'],
  [{ UPLOAD_TTL_SECONDS: '0' }, 'UPLOAD_TTL_SECONDS'],
  [{ BODY_IDLE_TIMEOUT_SECONDS: '0' }, 'BODY_IDLE_TIMEOUT_SECONDS'],
  [{ CONNECTION_IDLE_TIMEOUT_SECONDS: '0' }, 'CONNECTION_IDLE_TIMEOUT_SECONDS'],
  [{ TRUST_PROXY: 'yes' }, 'TRUST_PROXY'],
  [{ TUS_PATH: 'files/' }, 'TUS_PATH'],
])('a bad value names its variable: %p', (env, name) => {
  expect(() => parseEnv(env)).toThrow(ConfigError);
  expect(() => parseEnv(env)).toThrow(new RegExp(`${name}=`));
});

test('S3 part buffers must hold the parts in flight', () => {
  const s3 = { S3_BUCKET: 'uploads', S3_PART_SIZE: String(16 * 1024 * 1024), S3_PARALLEL_PARTS: '4' };
  expect(() => parseEnv({ ...s3, S3_BUFFER_MEMORY: String(48 * 1024 * 1024) })).toThrow(
    /S3_BUFFER_MEMORY=50331648: must hold S3_PARALLEL_PARTS × S3_PART_SIZE = 67108864 bytes/,
  );
  expect(parseEnv({ ...s3, S3_BUFFER_MEMORY: String(64 * 1024 * 1024) }).S3_BUFFER_MEMORY).toBe(64 * 1024 * 1024);
  expect(parseEnv({ S3_BUCKET: 'uploads' }).S3_BUFFER_MEMORY).toBe(128 * 1024 * 1024);
});

test('empty variables count as unset', () => {
  expect(parseEnv({ PORT: '', MAX_SIZE: '' })).toMatchObject({ PORT: 1080 });
});

test('bad options fail at construction', () => {
  expect(() => createTusflow({ maxSize: -1 })).toThrow();
  expect(() => createTusflow({ path: 'files' })).toThrow();
  expect(() => createTusflow({ bodyIdleTimeoutSeconds: 0 })).toThrow();
});

test('the server refuses to start on a bad variable and says which', async () => {
  const failed = spawnServer({ MAX_SIZE: 'lots' });
  await expect(failed).rejects.toThrow(/MAX_SIZE="lots"/);
});

test('the server refuses to start when its Redis cannot be reached, and says so at once', async () => {
  const started = performance.now();
  const failed = spawnServer({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
  await expect(failed).rejects.toThrow(/tusflow: Redis is not reachable.*\(check REDIS_URL=redis:\/\/127\.0\.0\.1:\d+\)\n$/);
  expect(performance.now() - started).toBeLessThan(10_000);
});

test.each([
  ['REDIS_URL', 'unix://:hunter2@host', 'REDIS_URL="unix://***@host"'],
  ['REDIS_URL', 'user:hunter2@127.0.0.1:6379', 'REDIS_URL="***@127.0.0.1:6379"'],
  ['HOOKS_URL', 'hooks.example/events?token=hunter2', 'HOOKS_URL="hooks.example/events?***"'],
  ['UPSTASH_REDIS_REST_URL', 'https//default:hunter2@eu1.upstash.io', 'UPSTASH_REDIS_REST_URL="***@eu1.upstash.io"'],
  ['S3_ENDPOINT', 'http://key:hunter2@[not-a-host', 'S3_ENDPOINT="http://***@[not-a-host"'],
  ['S3_KEY_PREFIX', '/hunter2', 'S3_KEY_PREFIX="***"'],
])('a refused %s is named, its secret never shown', (name, value, shown) => {
  let message = '';
  try {
    parseEnv({ [name]: value, UPSTASH_REDIS_REST_TOKEN: 'hunter2-token' });
  } catch (error) {
    message = (error as Error).message;
  }
  expect(message).toContain(shown);
  expect(message).not.toContain('hunter2');
});

test('the server refuses a bad REDIS_URL without printing its password', async () => {
  const failed = spawnServer({ REDIS_URL: 'unix://:hunter2@redis.internal' });
  await expect(failed).rejects.toThrow(/REDIS_URL="unix:\/\/\*\*\*@redis\.internal"/);
  await expect(failed).rejects.not.toThrow(/hunter2/);
});

test('a server reachable beyond loopback with no authentication and no MAX_SIZE is warned about', () => {
  const warning = (vars: Record<string, string>) => exposureWarning(parseEnv(vars));
  expect(warning({})).toMatch(/^tusflow: warning: listening on 0\.0\.0\.0 .*AUTH_TOKEN or JWT_SECRET, and MAX_SIZE/);
  expect(warning({})).not.toContain('\n');
  expect(warning({ HOST: '::' })).toContain('listening on ::');
  expect(warning({ HOST: '192.168.1.20' })).toBeDefined();
  const safe: Record<string, string>[] = [
    { HOST: '127.0.0.1' },
    { HOST: '127.0.1.1' },
    { HOST: 'localhost' },
    { HOST: '::1' },
    { AUTH_TOKEN: 't' },
    { JWT_SECRET: 's' },
    { MAX_SIZE: '1000' },
  ];
  for (const vars of safe) {
    expect(warning(vars)).toBeUndefined();
  }
});

test('the warning is printed once by a starting server, and not when it listens on loopback only', () => {
  const printed: string[] = [];
  const { log, warn } = console;
  console.log = console.warn = (line: string) => void printed.push(line);
  try {
    const where = { storage: 'files in /tmp/x', state: 'files in /tmp/x' };
    announce(parseEnv({ LOG: 'false' }), { origin: 'http://0.0.0.0:1080/', ...where });
    announce(parseEnv({ LOG: 'false', HOST: '127.0.0.1' }), { origin: 'http://127.0.0.1:1080/', ...where });
  } finally {
    Object.assign(console, { log, warn });
  }
  const rest = 'storage: files in /tmp/x, records: files in /tmp/x, auth: none, no size limit)';
  expect(printed).toEqual([
    `tusflow listening on http://0.0.0.0:1080/files/ (page: http://0.0.0.0:1080/, ${rest}`,
    exposureWarning(parseEnv({}))!,
    `tusflow listening on http://127.0.0.1:1080/files/ (page: http://127.0.0.1:1080/, ${rest}`,
  ]);
});

test('a server on loopback starts without the warning', async () => {
  const server = await spawnServer({});
  try {
    expect(server.output()).toContain('listening on');
    expect(server.output()).not.toContain('warning');
  } finally {
    await server.kill();
  }
});

test('sizes are bytes or a number with KB/MB/GB (1000s) or KiB/MiB/GiB (1024s), any case; anything else names its variable', () => {
  const sizes: [string, number][] = [
    ['1048576', 1048576],
    ['1GiB', 1024 ** 3],
    ['1gib', 1024 ** 3],
    ['1.5 GiB', 1.5 * 1024 ** 3],
    ['500MB', 500_000_000],
    ['10kb', 10_000],
    ['64KiB', 65_536],
    ['2TB', 2e12],
    ['7b', 7],
    // Decimal fractions are exact: 4.1 × 1e9 in floating point is 4099999999.9999995.
    ['4.1GB', 4_100_000_000],
    ['1.10GB', 1_100_000_000],
    ['0.5KiB', 512],
    ['2.75 TiB', 2.75 * 1024 ** 4],
  ];
  for (const [text, bytes] of sizes) expect(parseEnv({ MAX_SIZE: text }).MAX_SIZE).toBe(bytes);
  expect(parseEnv({ S3_BUCKET: 'uploads', S3_PART_SIZE: '8MiB', S3_BUFFER_MEMORY: '64MiB' })).toMatchObject({
    S3_PART_SIZE: 8 * 1024 ** 2,
    S3_BUFFER_MEMORY: 64 * 1024 ** 2,
  });
  // 4.1GiB is 4402341478.4 bytes: not a whole number.
  for (const bad of ['lots', '1.5', '1e9', 'GiB', '5 MiBs', '-1KB', '0.1b', '0', '4.1GiB', '9999999TiB']) {
    expect(() => parseEnv({ MAX_SIZE: bad })).toThrow(new RegExp(`^invalid configuration: MAX_SIZE=${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  }
  // Below the minimum part size S3 takes, in whatever unit it is written.
  expect(() => parseEnv({ S3_PART_SIZE: '5MB' })).toThrow(/S3_PART_SIZE="5MB"/);
});

test('a refusal with several bad variables is still one line', () => {
  expect(() => parseEnv({ PORT: 'x', MAX_SIZE: 'y' })).toThrow(/^invalid configuration: PORT="x": .*; MAX_SIZE="y": [^\n]*$/);
  expect(() => parseEnv({ CORS_CREDENTIALS: 'true', CORS_ORIGINS: '*' })).toThrow(/^invalid configuration: CORS_CREDENTIALS=true needs CORS_ORIGINS [^\n]*$/);
});

test('settings ignored as combined are warned about', () => {
  expect(configWarnings(parseEnv({}))).toEqual([]);
  expect(configWarnings(parseEnv({ S3_ENDPOINT: 'http://127.0.0.1:9000', S3_KEY_PREFIX: 'up/' }))).toEqual([
    'S3_ENDPOINT, S3_KEY_PREFIX are ignored without S3_BUCKET: uploads are stored under DATA_DIR',
  ]);
  expect(configWarnings(parseEnv({ S3_BUCKET: 'uploads', S3_ENDPOINT: 'http://127.0.0.1:9000' }))).toEqual([]);
  expect(configWarnings(parseEnv({ REDIS_URL: 'redis://127.0.0.1:6379', UPSTASH_REDIS_REST_URL: 'https://x.upstash.io', UPSTASH_REDIS_REST_TOKEN: 't' }))).toEqual([
    'REDIS_URL is ignored: UPSTASH_REDIS_REST_URL is set too, and records and locks go to Upstash',
  ]);
});

test('S3 path style: on by default for IP and localhost endpoints, off for names; false on an IP endpoint is refused', () => {
  const client = (endpoint: string, forcePathStyle?: boolean) =>
    new S3Client({ endpoint, bucket: 'uploads', region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's', forcePathStyle });
  // Where a request goes, seen through the fetch it is handed to (nothing is sent).
  const urlOf = async (c: (fetch: (input: string | URL | Request) => Promise<Response>) => S3Client) => {
    let seen = '';
    await c(async (input) => {
      seen = String(input instanceof Request ? input.url : input);
      return new Response('<ListBucketResult></ListBucketResult>');
    }).probeBucket();
    return seen;
  };
  const withFetch = (endpoint: string, forcePathStyle?: boolean) => (fetch: (input: string | URL | Request) => Promise<Response>) =>
    new S3Client({ endpoint, bucket: 'uploads', region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's', forcePathStyle, fetch });
  return Promise.all([
    expect(urlOf(withFetch('http://127.0.0.1:9000'))).resolves.toStartWith('http://127.0.0.1:9000/uploads/?'),
    expect(urlOf(withFetch('http://[::1]:9000'))).resolves.toStartWith('http://[::1]:9000/uploads/?'),
    expect(urlOf(withFetch('http://localhost:9000'))).resolves.toStartWith('http://localhost:9000/uploads/?'),
    expect(urlOf(withFetch('https://s3.example.com'))).resolves.toStartWith('https://uploads.s3.example.com/?'),
    expect(urlOf(withFetch('https://s3.example.com', true))).resolves.toStartWith('https://s3.example.com/uploads/?'),
    expect(urlOf(withFetch('http://localhost:9000', false))).resolves.toStartWith('http://uploads.localhost:9000/?'),
    expect(() => client('http://127.0.0.1:9000', false)).toThrow(/IP address \(127\.0\.0\.1\) cannot take/),
  ]);
});

test("deploy/tusflow.env's example AUTH_TOKEN is refused with one line naming it; any other token is taken", () => {
  expect(() => parseEnv({ AUTH_TOKEN: 'change-me-to-a-long-random-token' })).toThrow(/^invalid configuration: AUTH_TOKEN is the example value [^\n]*$/);
  expect(parseEnv({ AUTH_TOKEN: 'change-me' }).AUTH_TOKEN).toBe('change-me');
});
