import { afterAll, beforeAll, expect, test } from 'bun:test';
import { randomUUID } from 'node:crypto';
import { Redis } from '@upstash/redis';
import { startUpstashBridge, type UpstashBridge } from '../support/upstash-bridge.ts';

// The real @upstash/redis client against the bridge over the local Redis (127.0.0.1:6379).
const prefix = `test:upstash-bridge:${randomUUID()}:`;
const k = (name: string) => prefix + name;
let bridge: UpstashBridge;
let redis: Redis;

/** Every key of this run, via SCAN (bounded). */
async function ownKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | number = 0;
  for (let i = 0; i < 1000; i++) {
    const [next, batch]: [string | number, string[]] = await redis.scan(cursor, { match: `${prefix}*`, count: 100 });
    keys.push(...batch);
    cursor = next;
    if (String(cursor) === '0') return keys;
  }
  throw new Error('SCAN did not finish');
}

beforeAll(async () => {
  bridge = await startUpstashBridge();
  redis = new Redis({ url: bridge.url, token: bridge.token });
});

afterAll(async () => {
  const keys = await ownKeys();
  if (keys.length > 0) await redis.del(...keys);
  expect(await ownKeys()).toEqual([]);
  await bridge.stop();
});

test('set/get, missing key, incr, del', async () => {
  expect(await redis.set(k('s'), 'hello')).toBe('OK');
  expect(await redis.get<string>(k('s'))).toBe('hello');
  expect(await redis.get(k('missing'))).toBeNull();
  expect(await redis.incr(k('n'))).toBe(1);
  expect(await redis.incr(k('n'))).toBe(2);
  expect(await redis.del(k('s'), k('n'), k('missing'))).toBe(2);
  expect(await redis.get(k('s'))).toBeNull();
});

test('hset/hgetall gives an object back', async () => {
  expect(await redis.hset(k('h'), { a: 'x', b: 7 })).toBe(2);
  expect(await redis.hgetall(k('h'))).toEqual({ a: 'x', b: 7 });
  expect(await redis.hgetall(k('no-hash'))).toBeNull();
});

test('pipeline: results in order, each command counted', async () => {
  const before = bridge.commands.get('INCRBY') ?? 0;
  const p = redis.pipeline();
  p.set(k('p1'), 'one');
  p.incrby(k('p2'), 5);
  p.incrby(k('p2'), 5);
  p.get(k('p1'));
  expect(await p.exec()).toEqual(['OK', 5, 10, 'one']);
  expect(bridge.commands.get('INCRBY')).toBe(before + 2);
});

test('multi runs as a transaction', async () => {
  const tx = redis.multi();
  tx.set(k('m'), 'v1');
  tx.append(k('m'), '-v2');
  tx.get(k('m'));
  expect(await tx.exec()).toEqual(['OK', 5, 'v1-v2']);
  // A command Redis refuses to queue (wrong arity) discards the whole transaction.
  await redis.set(k('m2'), 'untouched');
  const bad = await fetch(`${bridge.url}/multi-exec`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bridge.token}` },
    body: JSON.stringify([
      ['SET', k('m2'), 'changed'],
      ['SET', k('m2')],
    ]),
  });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: string }).error).toContain('EXECABORT');
  expect(await redis.get(k('m2'))).toBe('untouched');
});

test('eval: a number and an array of strings', async () => {
  expect(await redis.eval<[], number>('return 40 + 2', [], [])).toBe(42);
  const arr = await redis.eval<[string], string[]>("redis.call('SET', KEYS[1], ARGV[1]); return {KEYS[1], redis.call('GET', KEYS[1]), 'é✓'}", [k('e')], ['from-lua']);
  expect(arr).toEqual([k('e'), 'from-lua', 'é✓']);
});

test('scripts: EVALSHA falls back to EVAL on NOSCRIPT, then scriptLoad + evalsha', async () => {
  // A script unique to this run, so its SHA is surely not cached yet.
  const script = redis.createScript<number>(`-- ${prefix}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])`);
  const evalBefore = bridge.commands.get('EVAL') ?? 0;
  const shaBefore = bridge.commands.get('EVALSHA') ?? 0;
  expect(await script.exec([k('sc')], ['3'])).toBe(3);
  expect(bridge.commands.get('EVALSHA')).toBe(shaBefore + 1);
  expect(bridge.commands.get('EVAL')).toBe(evalBefore + 1);
  expect(await script.exec([k('sc')], ['3'])).toBe(6); // cached now: EVALSHA only
  expect(bridge.commands.get('EVALSHA')).toBe(shaBefore + 2);
  expect(bridge.commands.get('EVAL')).toBe(evalBefore + 1);

  const sha = await redis.scriptLoad(`-- ${prefix}\nreturn {ARGV[1], ARGV[2]}`);
  expect(sha).toMatch(/^[0-9a-f]{40}$/);
  expect(await redis.evalsha<string[], string[]>(sha, [], ['a', 'b'])).toEqual(['a', 'b']);
});

test('scan with match', async () => {
  await redis.mset({ [k('scan:1')]: 'x', [k('scan:2')]: 'y', [k('other')]: 'z' });
  const found: string[] = [];
  let cursor: string | number = 0;
  for (let i = 0; i < 1000; i++) {
    const [next, keys]: [string | number, string[]] = await redis.scan(cursor, { match: `${prefix}scan:*`, count: 50 });
    found.push(...keys);
    cursor = next;
    if (String(cursor) === '0') break;
  }
  expect(found.sort()).toEqual([k('scan:1'), k('scan:2')]);
});

test('expire/ttl', async () => {
  await redis.set(k('t'), 'v');
  expect(await redis.ttl(k('t'))).toBe(-1);
  expect(await redis.expire(k('t'), 100)).toBe(1);
  const ttl = await redis.ttl(k('t'));
  expect(ttl).toBeGreaterThan(90);
  expect(ttl).toBeLessThanOrEqual(100);
  expect(await redis.ttl(k('no-such'))).toBe(-2);
});

test('a wrong or missing token is refused', async () => {
  const wrong = new Redis({ url: bridge.url, token: 'not-the-token' });
  await expect(wrong.get(k('s'))).rejects.toThrow(/Unauthorized/);
  const res = await fetch(bridge.url, { method: 'POST', body: JSON.stringify(['PING']) });
  expect(res.status).toBe(401);
  expect(await res.json()).toEqual({ error: 'Unauthorized' });
});

test('a Redis error makes the client throw with its text', async () => {
  await redis.set(k('str'), 'not a number');
  await expect(redis.incr(k('str'))).rejects.toThrow('ERR value is not an integer or out of range');
  // Without auto-pipelining the command goes to POST / and the error comes back as a 400.
  const direct = new Redis({ url: bridge.url, token: bridge.token, enableAutoPipelining: false });
  await expect(direct.incr(k('str'))).rejects.toThrow('ERR value is not an integer or out of range');
});

test('unicode and binary-ish values round-trip (base64 and plain encodings)', async () => {
  const value = 'héllo wörld ✓ 😀 日本 \u0000\u0001\u007f\u00ff "quoted" \\ \n\t{not json';
  for (const responseEncoding of ['base64', false] as const) {
    const raw = new Redis({ url: bridge.url, token: bridge.token, automaticDeserialization: false, responseEncoding });
    await raw.set(k(`u:${responseEncoding}`), value);
    expect(await raw.get<string>(k(`u:${responseEncoding}`))).toBe(value);
    expect(await raw.strlen(k(`u:${responseEncoding}`))).toBe(Buffer.byteLength(value));
  }
});

test('path form: /set/key/value and /get/key', async () => {
  const auth = { authorization: `Bearer ${bridge.token}` };
  const set = await fetch(`${bridge.url}/set/${encodeURIComponent(k('path'))}`, { method: 'POST', headers: auth, body: 'a b/c' });
  expect(await set.json()).toEqual({ result: 'OK' });
  const get = await fetch(`${bridge.url}/get/${encodeURIComponent(k('path'))}`, { headers: auth });
  expect(await get.json()).toEqual({ result: 'a b/c' });
});
