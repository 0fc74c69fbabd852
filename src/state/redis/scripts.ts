/**
 * Every Redis operation of the state store and the lock is one Lua script: one command per
 * operation (Upstash bills per command), atomic, and — since each script touches only keys that
 * share the upload's hash tag `{id}` — valid on Redis Cluster and Upstash's multi-shard databases.
 */
export interface Script {
  name: string;
  source: string;
}

const script = (name: string, source: string): Script => ({ name, source: source.trim() });

/** Replaces the record. ARGV: expire-at (ms), then field/value pairs. */
export const PUT = script(
  'put',
  `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`,
);

/**
 * Changes fields of an existing record; an empty value removes the field. The offset never moves
 * back, so a writer that lost its lease cannot undo a newer writer's progress. ARGV: expire-at (ms,
 * or 0 to keep), then field/value pairs.
 */
export const UPDATE = script(
  'update',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if value == '' then
    redis.call('HDEL', KEYS[1], field)
  elseif field ~= 'o' or tonumber(value) >= tonumber(redis.call('HGET', KEYS[1], 'o') or '0') then
    redis.call('HSET', KEYS[1], field, value)
  end
end
if ARGV[1] ~= '0' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return 1
`,
);

export const GET = script('get', `return redis.call('HGETALL', KEYS[1])`);

export const DELETE = script('delete', `return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])`);

/** The expiry index: ARGV: score (ms, or '' to remove), member. */
export const INDEX = script(
  'index',
  `
if ARGV[1] == '' then return redis.call('ZREM', KEYS[1], ARGV[2]) end
return redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
`,
);

/** Up to ARGV[2] ids whose indexed expiry is at or before ARGV[1]. */
export const DUE = script('due', `return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])`);

/** Reserves an object key: KEYS: the reservation. ARGV: upload id. → 1 if it is now (or was) that upload's. */
export const CLAIM = script(
  'claim',
  `
if redis.call('SET', KEYS[1], ARGV[1], 'NX') or redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
`,
);

/**
 * KEYS: lock, stop request. ARGV: owner token, lease (ms). Takes a free lock (clearing any stop
 * request), or asks the current holder to stop and answers 0.
 */
export const ACQUIRE = script(
  'acquire',
  `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 0
`,
);

/** Extends the lease of the owner: 0 = lost, 1 = held, 2 = held but another request wants it. */
export const RENEW = script(
  'renew',
  `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1 + redis.call('EXISTS', KEYS[2])
`,
);

/** Compare-and-delete: only the owner releases (a lock, or an object key's reservation). */
export const RELEASE = script(
  'release',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
);

/** A fixed window: KEYS: the client's counter. ARGV: window (ms). → {count, ms left}. */
export const RATE = script(
  'rate',
  `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
`,
);
