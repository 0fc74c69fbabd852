import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';

/**
 * An Upstash-REST-compatible HTTP endpoint over a real Redis, so tests can run the real
 * `@upstash/redis` client (v1.39) against the local Redis. Test support only.
 *
 * Wire format (what the client sends and expects):
 *  - `POST /` body `["SET","k","v"]` → `{"result": ...}`; an error → 400 `{"error":"ERR ..."}`.
 *  - `POST /pipeline`, `POST /multi-exec` body `[[...],[...]]` → `[{"result"}|{"error"}, ...]`
 *    (HTTP 200 even when an element failed). The client auto-pipelines by default, so even single
 *    commands usually arrive at `/pipeline`.
 *  - `/set/k/v` (path form, GET or POST; a POST body is appended as the last argument).
 *  - `Authorization: Bearer TOKEN`; wrong or missing → 401 `{"error":"Unauthorized"}`.
 *  - `Upstash-Encoding: base64` (the client's default): every string in a result, nested too, is
 *    base64 of the raw bytes; numbers and null stay plain. The client decodes a result that is a
 *    JSON *object* to null, so map replies must be flat arrays (RESP2 gives exactly that).
 */
export interface UpstashBridge {
  /** Base URL for `new Redis({ url, token })`, e.g. http://127.0.0.1:PORT */
  url: string;
  token: string;
  /** Commands executed so far, by uppercase name (MULTI/EXEC wrappers not counted). */
  commands: Map<string, number>;
  stop(): Promise<void>;
}

type Reply = { result: unknown } | { error: string };

export async function startUpstashBridge(options: { redisUrl?: string; token?: string } = {}): Promise<UpstashBridge> {
  const token = options.token ?? randomUUID();
  const commands = new Map<string, number>();
  // ioredis 6 defaults to RESP3: force RESP2 so maps (HGETALL, CONFIG GET...) are flat arrays.
  const redis = new Redis(options.redisUrl ?? 'redis://127.0.0.1:6379', {
    protocol: 2,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  await redis.connect();

  // ioredis applies reply transformers by *exact* command name ('hgetall' → object, zrange
  // WITHSCORES...), even via call(): uppercase names match none of them. callBuffer keeps bulk
  // replies as raw bytes, so binary values survive base64.
  const parse = (cmd: unknown): [string, string[]] => {
    if (!Array.isArray(cmd) || cmd.length === 0) throw new Error('ERR command must be a non-empty array');
    const [name, ...args] = cmd.map((a) => (typeof a === 'string' ? a : JSON.stringify(a)));
    const upper = name!.toUpperCase();
    commands.set(upper, (commands.get(upper) ?? 0) + 1);
    return [upper, args];
  };
  const encode = (v: unknown, b64: boolean): unknown => {
    if (Buffer.isBuffer(v)) return v.toString(b64 ? 'base64' : 'utf8');
    if (typeof v === 'string') return b64 ? Buffer.from(v).toString('base64') : v;
    if (Array.isArray(v)) return v.map((x) => encode(x, b64));
    if (v instanceof Error) return encode(v.message, b64); // an error nested in an array reply
    return v ?? null; // numbers, null
  };
  const reply = (err: Error | null, res: unknown, b64: boolean): Reply => (err ? { error: err.message } : { result: encode(res, b64) });

  const run = async (body: unknown, path: string, b64: boolean): Promise<Reply | Reply[]> => {
    if (path === '/pipeline' || path === '/multi-exec') {
      if (!Array.isArray(body)) throw new Error('ERR body must be an array of commands');
      // multi() queues MULTI, the commands and EXEC in one synchronous write on this connection,
      // so nothing from a concurrent request can land inside the transaction.
      const batch = path === '/multi-exec' ? redis.multi() : redis.pipeline();
      for (const cmd of body) batch.callBuffer(...parse(cmd));
      // A command Redis refuses to queue aborts the whole transaction: exec() rejects (EXECABORT).
      const results =
        (await batch.exec().catch((e) => {
          const why = (e.previousErrors ?? []).map((p: Error) => p.message).join('; ');
          throw new Error(why ? `${e.message} (${why})` : e.message);
        })) ?? [];
      return results.map(([err, res]) => reply(err, res, b64));
    }
    const [name, args] = parse(body);
    return reply(null, await redis.callBuffer(name, ...args), b64);
  };

  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      if (req.headers.get('authorization') !== `Bearer ${token}`) {
        return Response.json({ error: 'Unauthorized' }, { status: 401 });
      }
      const b64 = req.headers.get('upstash-encoding')?.toLowerCase() === 'base64';
      const { pathname } = new URL(req.url);
      try {
        const text = req.method === 'POST' ? await req.text() : '';
        let body: unknown;
        if (pathname === '/' || pathname === '/pipeline' || pathname === '/multi-exec') {
          body = JSON.parse(text);
        } else {
          // Path form: /set/key/value; a POST body is the last argument.
          body = pathname.slice(1).split('/').map(decodeURIComponent);
          if (text) (body as string[]).push(text);
        }
        return Response.json(await run(body, pathname, b64));
      } catch (e) {
        return Response.json({ error: (e as Error).message }, { status: 400 });
      }
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}`,
    token,
    commands,
    async stop() {
      await server.stop(true);
      await redis.quit();
    },
  };
}
