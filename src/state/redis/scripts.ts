/**
 * Every Redis operation of the state store and the lock is one Lua script: one command per
 * operation (Upstash bills per command, a script as one), atomic. A script touches the keys that
 * share the upload's hash tag `{id}` and, where the upload's expiry changes, the one expiry index:
 * two hash slots, which a single Redis and Upstash take but Redis Cluster refuses.
 */
export interface Script {
  name: string;
  source: string;
}

const script = (name: string, source: string): Script => ({ name, source: source.trim() });

/**
 * Lua that changes fields of the record `KEYS[record]` from ARGV[first] on: the expire-at (ms, or 0
 * to keep), whether the upload leaves the expiry index KEYS[index] ('1', with its id in
 * ARGV[first + 1]), then field/value pairs; an empty value removes the field. The offset never moves
 * back, so a writer that lost its lease cannot undo a newer writer's progress; the running digest
 * ('d') covers exactly the offset saved with it, so it is refused along with that offset. Shared by
 * the scripts that save a record along with something else (a renewal, a release), so each is one
 * command.
 */
const save = (record: number, index: number, first: number, ownsTransfer = 'true') => `
if redis.call('EXISTS', KEYS[${record}]) == 1 then
  local owns = ${ownsTransfer}
  local behind = false
  local current = tonumber(redis.call('HGET', KEYS[${record}], 'o') or '0')
  for i = ${first} + 3, #ARGV, 2 do
    if ARGV[i] == 'o' and ARGV[i + 1] ~= '' and tonumber(ARGV[i + 1]) < current then behind = true end
  end
  for i = ${first} + 3, #ARGV, 2 do
    local field, value = ARGV[i], ARGV[i + 1]
    if field == 't' and not owns then
      -- the running-transfer mark is the lock holder's alone
    elseif behind and (field == 'o' or field == 'd') then
      -- an offset behind the record's, and the digest state that covers it
    elseif value == '' then
      redis.call('HDEL', KEYS[${record}], field)
    else
      redis.call('HSET', KEYS[${record}], field, value)
    end
  end
  if ARGV[${first}] ~= '0' then redis.call('PEXPIREAT', KEYS[${record}], ARGV[${first}]) end
end
if ARGV[${first} + 1] == '1' then redis.call('ZREM', KEYS[${index}], ARGV[${first} + 2]) end
`;

/**
 * Replaces the record and indexes its expiry. KEYS: record, expiry index. ARGV: expire-at (ms),
 * expiry to index ('' for none), id, then field/value pairs. The index is one key for all uploads,
 * so this script (like UPDATE and DELETE) spans two hash slots.
 */
export const PUT = script(
  'put',
  `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
if ARGV[2] == '' then redis.call('ZREM', KEYS[2], ARGV[3]) else redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3]) end
return 1
`,
);

/** Changes fields of an existing record (see `save`). KEYS: record, expiry index. ARGV: as `save`'s. */
export const UPDATE = script('update', `${save(1, 2, 1)}return 1`);

export const GET = script('get', `return redis.call('HGETALL', KEYS[1])`);

/** KEYS: record, lock, stop request, expiry index. ARGV: id. */
export const DELETE = script(
  'delete',
  `
redis.call('ZREM', KEYS[4], ARGV[1])
return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
`,
);

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

/**
 * Reserves an object key: KEYS: the reservation. ARGV: upload id, its term (ms, or '' for good). → 1
 * if it is now that upload's (a reservation whose term passed is gone), 0 if another upload's.
 */
export const CLAIM = script(
  'claim',
  `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('SET', KEYS[1], ARGV[1]) else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1
`,
);

/**
 * KEYS: lock, stop request, record. ARGV: owner token, lease (ms), '1' to read the record, a
 * running transfer to mark on it (PATCH: its JSON before and after the record's offset, or ''), '1'
 * to check the requesting user, that user, and '1' to take only a free lock. Answers -1, touching
 * nothing, when the record names another user; otherwise takes a free lock (clearing any stop
 * request) and answers 1, then the record's field/value pairs when asked; or asks the current holder
 * to stop and answers 0 — but not for a user it could not check (no record: the holder may be
 * rebuilding it from storage), nor when only a free lock would do.
 */
export const ACQUIRE = script(
  'acquire',
  `
local checking = ARGV[6] == '1'
if checking then
  local owner = redis.call('HGET', KEYS[3], 'w')
  if owner and owner ~= ARGV[7] then return {-1} end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if ARGV[8] ~= '1' and (not checking or redis.call('EXISTS', KEYS[3]) == 1) then redis.call('SET', KEYS[2], '1', 'PX', ARGV[2]) end
  return {0}
end
redis.call('DEL', KEYS[2])
if ARGV[4] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 't', ARGV[4] .. (redis.call('HGET', KEYS[3], 'o') or '0') .. ARGV[5])
end
if ARGV[3] ~= '1' then return {1} end
local reply = redis.call('HGETALL', KEYS[3])
table.insert(reply, 1, 1)
return reply
`,
);

/**
 * Extends the lease of the owner, and saves fields of the record with it: 0 = lost (nothing saved),
 * 1 = held, 2 = held but another request wants it. KEYS: lock, stop request, record, expiry index.
 * ARGV: owner token, lease (ms), then `save`'s (nothing to save: none).
 */
export const RENEW = script(
  'renew',
  `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if #ARGV > 2 then
${save(3, 4, 3)}end
return 1 + redis.call('EXISTS', KEYS[2])
`,
);

/**
 * Saves fields of the record, then releases the lock if it is still the owner's. A writer whose
 * lease ran out still records what it stored (the offset only moves forward), but leaves the
 * running-transfer mark to whoever holds the lock now. KEYS: lock, record, expiry index. ARGV: owner
 * token, then `save`'s.
 */
export const SAVE_RELEASE = script(
  'save-release',
  `
local owned = redis.call('GET', KEYS[1]) == ARGV[1]
${save(2, 3, 2, 'owned')}if owned then return redis.call('DEL', KEYS[1]) end
return 0
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
