/**
 * The bus's Lua scripts. History is a Redis LIST of publication JSON plus a HASH holding the
 * position (epoch, offset), rather than a Redis stream: a list is cheap to trim to `historySize`
 * (LTRIM), its entries are exactly the text we fan out (one JSON.parse per read, no field
 * mapping), and the offset is ours to define (consecutive integers), while XADD ids are
 * time-based and would need a separate counter anyway. Keys share the `{channel}` hash tag.
 */

/**
 * Append + fan-out, atomically, so the order subscribers see on every node is offset order.
 * KEYS: 1 position hash, 2 history list.
 * ARGV: 1 pub/sub channel, 2 body JSON object text `{"event":…,"payload":…}`, 3 epoch to use when
 * the position is missing, 4 historySize, 5 historyTtlMs, 6 position TTL ms, 7 now ms.
 * Returns the publication JSON `{"offset":n,"epoch":e,"ts":t,"event":…,"payload":…}`.
 */
export const PUBLISH_LUA = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  -- The position is gone (first publication, expired, or Redis lost its data): a new epoch,
  -- and whatever history is left belongs to the old one.
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local msg = '{"offset":' .. string.format('%d', offset) .. ',"epoch":"' .. epoch .. '","ts":' .. ARGV[7] .. ',' .. string.sub(ARGV[2], 2)
local size = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
if size > 0 and ttl > 0 then
  redis.call('RPUSH', KEYS[2], msg)
  redis.call('LTRIM', KEYS[2], -size, -1)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('DEL', KEYS[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[1], msg)
return msg
`;

/**
 * Position + the history tail after `since`. Creates the position when missing, so a subscriber
 * of a quiet channel gets the epoch its first publication will carry.
 * KEYS: 1 position hash, 2 history list.
 * ARGV: 1 epoch to use when missing, 2 position TTL ms, 3 since epoch ('' = none), 4 since offset.
 * Returns {epoch, offset, entries}.
 */
export const READ_LUA = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local offset = 0
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
else
  offset = tonumber(redis.call('HGET', KEYS[1], 'offset'))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local entries = {}
local since = tonumber(ARGV[4])
if ARGV[3] == epoch and since ~= nil and since >= 0 and since < offset then
  -- History is contiguous and ends at the current offset: the tail holds what is missing.
  entries = redis.call('LRANGE', KEYS[2], -(offset - since), -1)
end
return {epoch, offset, entries}
`;
