/**
 * Picks the TCP Redis client: Bun's built-in RedisClient against ioredis, on the state store's hot
 * path (EVALSHA of the record update), sequential and 32 at once. Run: `bun bench/redis-clients.ts`.
 */
import { RedisClient } from 'bun';
import Redis from 'ioredis';
import { UPDATE } from '../src/state/redis/scripts.ts';
import { table } from './lib.ts';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = 5000;
const key = `bench:{${crypto.randomUUID()}}`;

type Send = (args: string[]) => Promise<unknown>;
async function measure(name: string, send: Send) {
  const sha = String(await send(['SCRIPT', 'LOAD', UPDATE.source]));
  await send(['HSET', key, 'o', '0']);
  const call = (i: number) => send(['EVALSHA', sha, '1', key, '0', 'o', String(i)]);
  let t = performance.now();
  for (let i = 0; i < N; i++) await call(i);
  const sequential = (performance.now() - t) / N;
  t = performance.now();
  for (let i = 0; i < N; i += 32) await Promise.all(Array.from({ length: 32 }, (_, j) => call(i + j)));
  const concurrent = N / ((performance.now() - t) / 1000);
  return { client: name, 'sequential µs/call': (sequential * 1000).toFixed(0), '32 at once, calls/s': concurrent.toFixed(0) };
}

const bun = new RedisClient(url);
const io = new Redis(url, { protocol: 2 });
const rows = [await measure('Bun RedisClient', (args) => bun.send(args[0]!, args.slice(1))), await measure('ioredis', (args) => io.call(args[0]!, ...args.slice(1)))];
console.log(table(rows));
await io.del(key);
bun.close();
io.disconnect();
