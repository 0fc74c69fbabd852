// What a user is billed for on Upstash (every command; a script is one), counted where it is billed:
// at the REST endpoint for Upstash, at the client for Redis over TCP. A tus upload costs one command
// per POST and per HEAD, two per PATCH (lock and read; save and unlock), plus at most one per part
// a long PATCH makes durable — whatever the data store.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createTusflow, parseEnv } from '../../src/index.ts';
import { sharedState } from '../../src/wiring/env-stores.ts';
import type { ScriptRunner } from '../../src/state/redis/client.ts';
import { tcpRedisRunner } from '../../src/state/redis-tcp.ts';
import { upstashClient, upstashRunner } from '../../src/state/upstash.ts';
import { makeS3Store } from '../support/s3-server.ts';
import { startUpstashBridge, type UpstashBridge } from '../support/upstash-bridge.ts';
import { REDIS_URL } from '../support/state-stores.ts';
import { sha256 } from '../support/server.ts';

const MiB = 1024 * 1024;
const TUS = { 'Tus-Resumable': '1.0.0' };

let bridge: UpstashBridge;
beforeAll(async () => void (bridge = await startUpstashBridge()));
afterAll(() => bridge?.stop());

const scripts = () => (bridge.commands.get('EVALSHA') ?? 0) + (bridge.commands.get('EVAL') ?? 0);

const kinds: { name: string; runner: () => ScriptRunner; billed: (runner: ScriptRunner) => number }[] = [
  { name: 'Redis', runner: () => tcpRedisRunner(REDIS_URL), billed: (runner) => runner.commands },
  { name: 'Upstash (counted at its REST endpoint)', runner: () => upstashRunner(upstashClient({ url: bridge.url, token: bridge.token })), billed: scripts },
];

for (const kind of kinds) {
  describe(`billed commands: ${kind.name}`, () => {
    test('1 per POST, 1 per HEAD, 2 per PATCH plus at most 1 per part made durable; 40 MiB in 5 MiB parts within parts + 2 per PATCH + 4', async () => {
      const runner = kind.runner();
      const { store } = await makeS3Store({ partSize: 5 * MiB });
      const env = parseEnv({ STATE_KEY_PREFIX: `billed:${crypto.randomUUID().slice(0, 8)}:` });
      const { app } = createTusflow({ store, ...sharedState(env, runner) });
      const data = new Uint8Array(40 * MiB).map((_, i) => (i * 7 + (i >> 12)) % 251);
      // Scripts load once per process (EVAL after a NOSCRIPT): warm them up so that only the
      // steady state is counted.
      const warm = await app.request('/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } });
      await app.request(new URL(warm.headers.get('Location')!).pathname, {
        method: 'PATCH',
        headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: new Uint8Array(1),
      });

      const cost = async (request: () => Response | Promise<Response>) => {
        const before = kind.billed(runner);
        const res = await request();
        return { res, commands: kind.billed(runner) - before };
      };
      const post = await cost(() => app.request('/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(data.length) } }));
      expect([post.res.status, post.commands]).toEqual([201, 1]);
      const path = new URL(post.res.headers.get('Location')!).pathname;
      const head = await cost(() => app.request(path, { method: 'HEAD', headers: TUS }));
      expect([head.res.status, head.commands]).toEqual([200, 1]);

      let total = post.commands + head.commands;
      const patches: number[] = [];
      for (let offset = 0; offset < data.length; offset += 10 * MiB) {
        const chunk = data.subarray(offset, offset + 10 * MiB);
        const patch = await cost(() =>
          app.request(path, {
            method: 'PATCH',
            headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(chunk.length) },
            body: chunk,
          }),
        );
        expect(patch.res.status).toBe(204);
        patches.push(patch.commands);
        total += patch.commands;
      }
      // Each 10 MiB PATCH is 2 parts: 2 commands, and at most 2 records of durable parts.
      for (const n of patches) expect(n).toBeGreaterThanOrEqual(2);
      for (const n of patches) expect(n).toBeLessThanOrEqual(4);
      expect(total).toBeLessThanOrEqual(8 + 2 * patches.length + 4);
      // What was counted is a real upload.
      const download = await app.request(path);
      expect(sha256(new Uint8Array(await download.arrayBuffer()))).toBe(sha256(data));
      await runner.close?.();
    });

    test('every way a PATCH ends leaves no running-transfer mark: committed, 409, past the length, finished', async () => {
      const runner = kind.runner();
      const env = parseEnv({ STATE_KEY_PREFIX: `marks:${crypto.randomUUID().slice(0, 8)}:` });
      const shared = sharedState(env, runner);
      const { app } = createTusflow({ ...shared });
      const created = await app.request('/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '10' } });
      const path = new URL(created.headers.get('Location')!).pathname;
      const id = path.split('/').pop()!;
      const patch = (offset: number, body: Uint8Array<ArrayBuffer>) =>
        app.request(path, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, body });
      const statuses: number[] = [];
      const marks: unknown[] = [];
      for (const [offset, body] of [
        [0, new Uint8Array(4)], // committed
        [0, new Uint8Array(2)], // 409: the offset moved
        [4, new Uint8Array(20)], // past the length
        [4, new Uint8Array(6)], // finishes
        [10, new Uint8Array(0)], // on a finished upload
      ] as const) {
        statuses.push((await patch(offset, body)).status);
        marks.push((await shared.state!.get(id))?.transfer);
      }
      expect(statuses).toEqual([204, 409, 413, 204, 204]);
      expect(marks).toEqual([undefined, undefined, undefined, undefined, undefined]);
      await runner.close?.();
    });

    test('a creation whose hook chose the object key: 3 (reserved for a term, for good, then the record)', async () => {
      const runner = kind.runner();
      const env = parseEnv({ STATE_KEY_PREFIX: `keys:${crypto.randomUUID().slice(0, 8)}:` });
      const { app } = createTusflow({ ...sharedState(env, runner), hooks: { 'pre-create': () => ({ key: `keyed/${crypto.randomUUID()}.bin` }) } });
      const create = () => app.request('/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } });
      const first = await create(); // loads the scripts
      const before = kind.billed(runner);
      const second = await create();
      expect(kind.billed(runner) - before).toBe(3);
      // Deleted (4: a DELETE's 3, and the key given back), they leave nothing in the shared Redis.
      for (const res of [first, second]) {
        expect(res.status).toBe(201);
        const before = kind.billed(runner);
        expect((await app.request(new URL(res.headers.get('Location')!).pathname, { method: 'DELETE', headers: TUS })).status).toBe(204);
        expect(kind.billed(runner) - before).toBe(4);
      }
      expect(await runner.run({ name: 'count', source: "return #redis.call('KEYS', ARGV[1])" }, [], [`${env.STATE_KEY_PREFIX}*`])).toBe(0);
      await runner.close?.();
    });

    test("with users: the owner check costs nothing more (PATCH 2, HEAD 1), and another user's PATCH is refused in 1", async () => {
      const runner = kind.runner();
      const env = parseEnv({ STATE_KEY_PREFIX: `owners:${crypto.randomUUID().slice(0, 8)}:` });
      const users: Record<string, string> = { 'Bearer alice': 'alice', 'Bearer bob': 'bob', 'Bearer nobody': '' };
      const { app } = createTusflow({
        ...sharedState(env, runner),
        authorize: async (request) => {
          const owner = users[request.headers.get('Authorization') ?? ''];
          return owner === undefined ? undefined : { owner };
        },
      });
      const as = (user: string) => ({ ...TUS, Authorization: `Bearer ${user}` });
      const patch = (path: string, user: string, offset: number, body: string) =>
        app.request(path, { method: 'PATCH', headers: { ...as(user), 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, body });
      const warm = await app.request('/files/', { method: 'POST', headers: { ...as('alice'), 'Upload-Length': '1' } });
      await patch(new URL(warm.headers.get('Location')!).pathname, 'alice', 0, 'x');

      const cost = async (request: () => Response | Promise<Response>) => {
        const before = kind.billed(runner);
        const res = await request();
        return [res.status, kind.billed(runner) - before];
      };
      let path = '';
      expect(
        await cost(async () => {
          const res = await app.request('/files/', { method: 'POST', headers: { ...as('alice'), 'Upload-Length': '6' } });
          path = new URL(res.headers.get('Location')!).pathname;
          return res;
        }),
      ).toEqual([201, 1]);
      expect(await cost(() => patch(path, 'alice', 0, 'abc'))).toEqual([204, 2]);
      expect(await cost(() => app.request(path, { method: 'HEAD', headers: as('alice') }))).toEqual([200, 1]);
      expect(await cost(() => patch(path, 'bob', 3, 'def'))).toEqual([403, 1]);
      // A user named '' is a user too, not "anyone".
      expect(await cost(() => patch(path, 'nobody', 3, 'def'))).toEqual([403, 1]);
      expect(await cost(() => app.request(path, { method: 'HEAD', headers: as('bob') }))).toEqual([403, 1]);
      expect(await cost(() => patch(path, 'alice', 3, 'def'))).toEqual([204, 2]);
      expect(await (await app.request(path, { headers: as('alice') })).text()).toBe('abcdef');
      // A DELETE is checked the same way: another user's is refused in 1; the owner's lock reads the record it checks.
      expect(await cost(() => app.request(path, { method: 'DELETE', headers: as('bob') }))).toEqual([403, 1]);
      expect(await cost(() => app.request(path, { method: 'DELETE', headers: as('alice') }))).toEqual([204, 3]);
      expect((await app.request(path, { method: 'HEAD', headers: as('alice') })).status).toBe(404);
      await runner.close?.();
    });
  });
}
