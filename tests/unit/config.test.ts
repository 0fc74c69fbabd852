import { expect, test } from 'bun:test';
import { ConfigError, createTusflow, fromEnv, parseEnv } from '../../src/index.ts';
import { freePort, spawnServer } from '../support/process.ts';

test('defaults match the documented contract', () => {
  expect(parseEnv({})).toMatchObject({
    PORT: 1080,
    HOST: '0.0.0.0',
    DATA_DIR: './data',
    UPLOAD_TTL_SECONDS: 86_400,
    CORS_ORIGINS: ['*'],
    TRUST_PROXY: false,
    CLEANUP_INTERVAL_SECONDS: 300,
    TUS_PATH: '/files',
  });
  expect(fromEnv({ MAX_SIZE: '1000', CORS_ORIGINS: 'https://a.example, https://b.example' })).toMatchObject({
    maxSize: 1000,
    corsOrigins: ['https://a.example', 'https://b.example'],
  });
});

test.each([
  [{ PORT: 'eighty' }, 'PORT'],
  [{ PORT: '70000' }, 'PORT'],
  [{ MAX_SIZE: '-5' }, 'MAX_SIZE'],
  [{ MAX_SIZE: '1.5' }, 'MAX_SIZE'],
  [{ UPLOAD_TTL_SECONDS: '0' }, 'UPLOAD_TTL_SECONDS'],
  [{ TRUST_PROXY: 'yes' }, 'TRUST_PROXY'],
  [{ TUS_PATH: 'files/' }, 'TUS_PATH'],
])('a bad value names its variable: %p', (env, name) => {
  expect(() => parseEnv(env)).toThrow(ConfigError);
  expect(() => parseEnv(env)).toThrow(new RegExp(`${name}=`));
});

test('S3 part buffers must hold the parts in flight', () => {
  const s3 = { S3_BUCKET: 'uploads', S3_PART_SIZE: String(16 * 1024 * 1024), S3_PARALLEL_PARTS: '4' };
  expect(() => parseEnv({ ...s3, S3_BUFFER_MEMORY: String(48 * 1024 * 1024) })).toThrow(/S3_BUFFER_MEMORY=50331648: must hold S3_PARALLEL_PARTS × S3_PART_SIZE = 67108864 bytes/);
  expect(parseEnv({ ...s3, S3_BUFFER_MEMORY: String(64 * 1024 * 1024) }).S3_BUFFER_MEMORY).toBe(64 * 1024 * 1024);
  expect(parseEnv({ S3_BUCKET: 'uploads' }).S3_BUFFER_MEMORY).toBe(128 * 1024 * 1024);
});

test('empty variables count as unset', () => {
  expect(parseEnv({ PORT: '', MAX_SIZE: '' })).toMatchObject({ PORT: 1080 });
});

test('bad options fail at construction', () => {
  expect(() => createTusflow({ maxSize: -1 })).toThrow();
  expect(() => createTusflow({ path: 'files' })).toThrow();
});

test('the server refuses to start on a bad variable and says which', async () => {
  const failed = spawnServer({ MAX_SIZE: 'lots' });
  await expect(failed).rejects.toThrow(/MAX_SIZE="lots"/);
});

test('the server refuses to start when its Redis cannot be reached, and says so at once', async () => {
  const started = performance.now();
  const failed = spawnServer({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
  await expect(failed).rejects.toThrow(/tusflow: Redis is not reachable/);
  expect(performance.now() - started).toBeLessThan(10_000);
});
