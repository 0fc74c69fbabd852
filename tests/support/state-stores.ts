import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv, type Locker, type StateStore } from '../../src/index.ts';
import { FileStateStore } from '../../src/state/file.ts';
import { MemoryLocker } from '../../src/state/memory-locker.ts';
import { sharedState } from '../../src/wiring/env-stores.ts';
import type { ScriptRunner } from '../../src/state/redis/client.ts';
import { bunRedisRunner } from '../../src/state/redis-bun.ts';
import { tcpRedisRunner } from '../../src/state/redis-tcp.ts';
import { upstashClient, upstashRunner } from '../../src/state/upstash.ts';
import { startUpstashBridge, type UpstashBridge } from './upstash-bridge.ts';

export const REDIS_URL = process.env.TUSFLOW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface StateKind {
  name: 'embedded' | 'redis' | 'upstash' | 'redis over ioredis';
  /** A fresh state store and locker (a unique key prefix for the shared ones). */
  make(options?: { leaseMs?: number; lockTimeoutMs?: number }): Promise<{ state: StateStore; locker: Locker; runner?: ScriptRunner }>;
  /** Environment variables that make a server process use this kind (with a unique prefix). */
  env(): Promise<Record<string, string>>;
}

let bridge: Promise<UpstashBridge> | undefined;
export const upstashBridge = () => (bridge ??= startUpstashBridge());

const prefix = () => `test:${crypto.randomUUID().slice(0, 8)}:`;

function shared(name: Exclude<StateKind['name'], 'embedded'>, runner: () => Promise<ScriptRunner>, env: () => Promise<Record<string, string>>): StateKind {
  return {
    name,
    async make({ leaseMs = 2000, lockTimeoutMs = 3000 } = {}) {
      const r = await runner();
      const config = parseEnv({ STATE_KEY_PREFIX: prefix(), LOCK_LEASE_MS: String(leaseMs) });
      const { state, locker } = sharedState(config, r);
      (locker as unknown as { options: { timeoutMs: number } }).options.timeoutMs = lockTimeoutMs;
      return { state: state!, locker: locker!, runner: r };
    },
    env: async () => ({ ...(await env()), STATE_KEY_PREFIX: prefix() }),
  };
}

/** The three state stores every state test runs against ('redis' with Bun's client, as the Bun server uses). */
export const STATE_KINDS: StateKind[] = [
  {
    name: 'embedded',
    async make({ lockTimeoutMs = 3000 } = {}) {
      return { state: new FileStateStore(await mkdtemp(join(tmpdir(), 'tusflow-state-'))), locker: new MemoryLocker(lockTimeoutMs) };
    },
    env: async () => ({}),
  },
  shared(
    'redis',
    async () => bunRedisRunner(REDIS_URL),
    async () => ({ REDIS_URL }),
  ),
  shared(
    'upstash',
    async () => {
      const b = await upstashBridge();
      return upstashRunner(upstashClient({ url: b.url, token: b.token }));
    },
    async () => {
      const b = await upstashBridge();
      return { UPSTASH_REDIS_REST_URL: b.url, UPSTASH_REDIS_REST_TOKEN: b.token };
    },
  ),
];

/** Redis through ioredis, the client the Deno server uses. */
export const IOREDIS_KIND = shared(
  'redis over ioredis',
  async () => tcpRedisRunner(REDIS_URL),
  async () => ({ REDIS_URL }),
);
