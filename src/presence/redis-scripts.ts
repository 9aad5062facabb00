/**
 * Presence Lua scripts. Keys (redis-keys.ts), per channel c of bucket b (prefix P):
 * - `P pr:{p<b>}:c:<c>/exp`      ZSET  member → expiry (ms, from the caller's clock)
 * - `P pr:{p<b>}:c:<c>/u:<user>` HASH  member → status, `~status` for a closed connection's
 *   (status.ts) — one hash per user, so a user's connections are at hand
 * - `P pr:{p<b>}:idx`            ZSET  channel → earliest expiry in that channel, for the
 *   channels of bucket b (what expire() walks)
 * On a Redis Cluster a script may only touch keys of one hash slot: the hash tag `{p<b>}` puts a
 * bucket's keys in one slot, and each script touches one bucket only — a channel's keys and its
 * bucket's index, or (expire) one bucket's index and the channels in it. The keys a script
 * builds itself (user hashes, expire's channel keys) are in that bucket too.
 * A member is the JSON text `[userId, connectionId]`, always built by the caller, so scripts
 * only decode it (cjson) and never have to reproduce it byte for byte.
 * Each script is one atomic step, so with several nodes calling expire() every entry is removed,
 * and its leave reported, exactly once. See status.ts for the before/after rule.
 */

const HELPERS = `
-- Open connections' entries outrank closed ones' ('~status'), whatever their status.
local RANK = {online = 6, dnd = 5, idle = 4, ['~online'] = 3, ['~dnd'] = 2, ['~idle'] = 1}
-- Best status over every stored entry of a user, without the '~' (false when none).
local function best(ukey)
  local flat = redis.call('HGETALL', ukey)
  local top, topRank = false, 0
  for i = 1, #flat, 2 do
    local r = RANK[flat[i + 1]] or 0
    if r > topRank then top, topRank = flat[i + 1], r end
  end
  if top and string.sub(top, 1, 1) == '~' then top = string.sub(top, 2) end
  return top
end
-- Drops a user's entries whose expiry has passed (or that lost their expiry).
local function purge(ukey, zkey, now)
  local flat = redis.call('HGETALL', ukey)
  for i = 1, #flat, 2 do
    local score = redis.call('ZSCORE', zkey, flat[i])
    if (not score) or tonumber(score) <= now then
      redis.call('HDEL', ukey, flat[i])
      redis.call('ZREM', zkey, flat[i])
    end
  end
end
local function reindex(idx, zkey, channel)
  local first = redis.call('ZRANGE', zkey, 0, 0, 'WITHSCORES')
  if first[1] then
    redis.call('ZADD', idx, first[2], channel)
  else
    redis.call('ZREM', idx, channel)
  end
end
-- PresenceChange.version: Redis's clock in µs, one clock for every node's changes.
local function stamp()
  local t = redis.call('TIME')
  return t[1] .. string.format('%06d', tonumber(t[2]))
end
-- Safety net only (every live node runs expire()): keys outlive their entries, never less.
local function keepFor(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
`;

/**
 * KEYS: 1 channel expiry zset, 2 user hash, 3 the bucket's index. ARGV: 1 member, 2 status,
 * 3 expiry ms, 4 now ms, 5 channel, 6 key TTL ms. Returns {before, after, version} ('' = not
 * present).
 */
export const UPSERT_LUA = `${HELPERS}
local now = tonumber(ARGV[4])
local before = best(KEYS[2])
purge(KEYS[2], KEYS[1], now)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local after = best(KEYS[2])
reindex(KEYS[3], KEYS[1], ARGV[5])
keepFor(KEYS[1], tonumber(ARGV[6]))
keepFor(KEYS[2], tonumber(ARGV[6]))
return {before or '', after or '', stamp()}
`;

/**
 * Re-stamps a live entry and marks it a closed connection's ('~status'); an expired or missing
 * one stays gone. KEYS: as UPSERT. ARGV: 1 member, 2 now ms, 3 expiry ms, 4 channel, 5 key TTL
 * ms. Returns {before, after, version} ('' = not present; both '' when nothing was stamped).
 */
export const LINGER_LUA = `${HELPERS}
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local status = redis.call('HGET', KEYS[2], ARGV[1])
if (not score) or tonumber(score) <= tonumber(ARGV[2]) or not status then return {'', '', '0'} end
local before = best(KEYS[2])
if string.sub(status, 1, 1) ~= '~' then redis.call('HSET', KEYS[2], ARGV[1], '~' .. status) end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
reindex(KEYS[3], KEYS[1], ARGV[4])
keepFor(KEYS[1], tonumber(ARGV[5]))
keepFor(KEYS[2], tonumber(ARGV[5]))
return {before or '', best(KEYS[2]) or '', stamp()}
`;

/**
 * Removes a connection's entry and the user's closed connections' ('~status') on the channel.
 * KEYS: 1 channel expiry zset, 2 user hash, 3 the bucket's index. ARGV: 1 member, 2 now ms,
 * 3 channel. Returns {before, after, version}.
 */
export const REMOVE_LUA = `${HELPERS}
local now = tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return {'', '', '0'} end
local before = best(KEYS[2])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
  if string.sub(flat[i + 1], 1, 1) == '~' then
    redis.call('HDEL', KEYS[2], flat[i])
    redis.call('ZREM', KEYS[1], flat[i])
  end
end
purge(KEYS[2], KEYS[1], now)
local after = best(KEYS[2])
reindex(KEYS[3], KEYS[1], ARGV[3])
return {before or '', after or '', stamp()}
`;

/**
 * Live entries of a channel with their status. KEYS: 1 channel expiry zset.
 * ARGV: 1 now ms, 2 user-hash key prefix (`P pr:{p<b>}:c:<c>/u:`). Returns {userId, status, …}.
 */
export const MEMBERS_LUA = `
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local out = {}
for _, m in ipairs(live) do
  local user = cjson.decode(m)[1]
  local status = redis.call('HGET', ARGV[2] .. user, m)
  if status then
    out[#out + 1] = user
    out[#out + 1] = status
  end
end
return out
`;

/**
 * Removes expired entries of one bucket's channels, a bounded batch per call: at most ARGV[4]
 * entries in all, so one call holds Redis for milliseconds even when a dead node's entries all
 * expire at once. KEYS: 1 the bucket's index. ARGV: 1 now ms, 2 the bucket's channel-key prefix
 * (`P pr:{p<b>}:c:`, to which the script adds `<c>/exp` and `<c>/u:<user>`), 3 most channels,
 * 4 most entries.
 * Returns {more (0/1), version, channel, user, before, after, …} for users whose visible state
 * changed.
 */
export const EXPIRE_LUA = `${HELPERS}
local now = tonumber(ARGV[1])
local budget = tonumber(ARGV[4])
local more = 0
local out = {0, stamp()}
local channels = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
if #channels == tonumber(ARGV[3]) then more = 1 end
for _, c in ipairs(channels) do
  if budget <= 0 then
    more = 1
    break
  end
  local zkey = ARGV[2] .. c .. '/exp'
  local expired = redis.call('ZRANGEBYSCORE', zkey, '-inf', ARGV[1], 'LIMIT', 0, budget)
  if #expired == budget then more = 1 end
  budget = budget - #expired
  local byUser, users = {}, {}
  for _, m in ipairs(expired) do
    local user = cjson.decode(m)[1]
    if not byUser[user] then
      byUser[user] = {}
      users[#users + 1] = user
    end
    table.insert(byUser[user], m)
  end
  for _, user in ipairs(users) do
    local ukey = ARGV[2] .. c .. '/u:' .. user
    local before = best(ukey)
    for _, m in ipairs(byUser[user]) do
      redis.call('HDEL', ukey, m)
      redis.call('ZREM', zkey, m)
    end
    local after = best(ukey)
    if before ~= after then
      out[#out + 1] = c
      out[#out + 1] = user
      out[#out + 1] = before or ''
      out[#out + 1] = after or ''
    end
  end
  reindex(KEYS[1], zkey, c)
end
out[1] = more
return out
`;

/**
 * Session write, unless another connection took the session over. KEYS: 1 session key.
 * ARGV: 1 JSON state, 2 TTL ms, 3 owner ('' = none), 4 '1' to take over regardless.
 */
export const SESSION_SAVE_LUA = `
if ARGV[4] ~= '1' then
  local cur = redis.call('GET', KEYS[1])
  if cur then
    local held = cjson.decode(cur).owner
    if held and held ~= ARGV[3] then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** Session delete while `owner` holds it. KEYS: 1 session key. ARGV: 1 owner. */
export const SESSION_DELETE_LUA = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local held = cjson.decode(cur).owner
if held and held ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`;
