/**
 * What a client is told when the state store fails: the short reason, never the backend's own error
 * (addresses, ports, the client library's wording), which goes to the server's log line only. Bun
 * runs its own Redis client, Deno ioredis (src/state/redis-tcp.ts): both are run.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer } from '../support/process.ts';
import { startRedisServer, type RedisProcess } from '../support/redis-server.ts';
import { TUS } from '../support/server.ts';
import { ENTRIES } from '../support/startup.ts';

let redis: RedisProcess;
let dataDir: string;
beforeAll(async () => {
  [redis, dataDir] = await Promise.all([startRedisServer(), mkdtemp(join(tmpdir(), 'tusflow-state-reasons-'))]);
});
afterAll(async () => {
  await redis.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

test('Redis gone: a 503 whose body is the generic reason, and the log line says why', async () => {
  if (!redis.running) await redis.start();
  const servers = await Promise.all(
    (['bun', 'deno'] as const).map((entry) =>
      spawnServer({ REDIS_URL: redis.url, STATE_KEY_PREFIX: `state-reasons:${entry}:`, DATA_DIR: join(dataDir, entry) }, [...ENTRIES[entry]]),
    ),
  );
  try {
    for (const server of servers) {
      const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } });
      expect(created.status).toBe(201);
    }
    await redis.kill('SIGKILL');
    for (const server of servers) {
      const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' }, signal: AbortSignal.timeout(15_000) });
      expect(res.status).toBe(503);
      expect(await res.text()).toBe('the state store failed; try again\n');
      await Bun.sleep(100);
      const logged = server
        .output()
        .split('\n')
        .filter((line) => line.includes('"status":503'))
        .map((line) => JSON.parse(line) as { reason: string });
      expect(logged.length).toBe(1);
      // The detail the client did not get: more than the generic reason.
      expect(logged[0]!.reason).toMatch(/^the state store failed; try again: .+/);
    }
  } finally {
    await Promise.all(servers.map((server) => server.kill()));
  }
}, 60_000);
