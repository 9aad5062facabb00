/**
 * The bus's Lua scripts. History is a Redis LIST of publication JSON plus a HASH holding the
 * position (epoch, offset), rather than a Redis stream: a list is cheap to trim to `historySize`
 * (LTRIM), its entries are exactly the text we fan out (one JSON.parse per read, no field
 * mapping), and the offset is ours to define (consecutive integers), while XADD ids are
 * time-based and would need a separate counter anyway. Keys share the `{channel}` hash tag.
 */

/**
 * The position hash also records the replication id of the primary that wrote it. A replica
 * promoted after a failover has a new one, and may not have had the last writes replicated to
 * it: the same epoch would then hand out offsets already sent, which clients drop as
 * duplicates. A position from another primary therefore starts a new epoch (clients are told to
 * resync rather than miss messages). A position that records none (written before this check)
 * takes the current primary's.
 *
 * On a Redis Cluster a position also moves whole, by slot migration (MIGRATE), to a primary that
 * never replicated it. It also records the node that wrote it (CLUSTER MYID), and a position
 * from another node is taken over with its epoch unless its replication id is this node's
 * previous one (master_replid2: this node was that primary's replica until a failover). A
 * position this node wrote before a restart (same node, new replication id) still starts a new
 * epoch, as on one Redis: a restart may have lost its last writes.
 */
function samePrimaryLua(cluster: boolean): string {
  const node = cluster ? "redis.call('CLUSTER', 'MYID')" : "''";
  return `
local info = redis.call('INFO', 'replication')
local replid = string.match(info, 'master_replid:(%w+)') or ''
local replid2 = string.match(info, 'master_replid2:(%w+)') or ''
local node = ${node}
local function stampPrimary(pos)
  redis.call('HSET', pos, 'replid', replid)
  if node ~= '' then redis.call('HSET', pos, 'node', node) end
end
local function samePrimary(pos)
  local was = redis.call('HGET', pos, 'replid')
  if not was then
    stampPrimary(pos)
    return true
  end
  if was == replid then return true end
  local wasNode = redis.call('HGET', pos, 'node')
  if node ~= '' and wasNode and wasNode ~= node and was ~= replid2 then
    -- Migrated here whole from another primary.
    stampPrimary(pos)
    return true
  end
  return false
end
`;
}

/**
 * Append + fan-out of publications on one or more channels, atomically: the order subscribers
 * see on every node is offset order, and nothing lands between the messages of one call.
 * KEYS: per channel, its position hash and its history list; then, optionally, a receipt slot
 * (a SET of the ids the last call to it appended).
 * ARGV: 1 now ms; then per channel: pub/sub channel, epoch to use when the position is missing,
 * historySize, historyTtlMs, position TTL ms, message count, then that many body JSON object
 * texts `{"event":…,"payload":…}`, then, with a receipt slot, as many receipt ids ('' = none,
 * '!' + id = the caller knows it went out: record it, do not append it);
 * then, with a receipt slot, the slot's TTL in ms.
 * Each publication fanned out and stored is `{"offset":n,"epoch":e,"ts":t,"event":…,"payload":…}`.
 * A message whose receipt id the slot holds is left out (it went out in the last call, whose
 * reply was lost); the slot then holds this call's ids, and those of the ids it held that are
 * above this call's highest (decimal integers, compared as numbers): a retried batch whose tail
 * was pushed out by a row with a lower id sends that tail in the next call, still left out.
 * Returns per channel {epoch, offset of its first appended message, skip mask ('' without a
 * slot, else one '1' per left-out message and '0' per appended one)}, flattened.
 */
export const publishLua = (cluster: boolean): string => `${samePrimaryLua(cluster)}
local out = {}
local head = '","ts":' .. ARGV[1] .. ','
local a = 2
local receipt = #KEYS % 2 == 1
local seen, ids = {}, {}
if receipt then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[#KEYS])) do seen[id] = true end
end
for k = 1, #KEYS - (receipt and 1 or 0), 2 do
  local pos, hist = KEYS[k], KEYS[k + 1]
  local channel, size, ttl, total = ARGV[a], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 5])
  -- Which bodies go out: all of them, or those the receipt slot does not name.
  local bodies, mask = {}, {}
  for i = 1, total do
    local id = receipt and ARGV[a + 5 + total + i] or ''
    -- '!' first: the caller knows it went out already; it is recorded, never appended.
    local known = string.sub(id, 1, 1) == '!'
    if known then id = string.sub(id, 2) end
    if id ~= '' then ids[#ids + 1] = id end
    if known or (id ~= '' and seen[id]) then
      mask[i] = '1'
    else
      mask[i] = '0'
      bodies[#bodies + 1] = ARGV[a + 5 + i]
    end
  end
  local count = #bodies
  local epoch = redis.call('HGET', pos, 'epoch')
  if not epoch or not samePrimary(pos) then
    -- The position is gone (first publication, expired, or Redis lost its data) or was written
    -- by another primary: a new epoch, and whatever history is left belongs to the old one.
    epoch = ARGV[a + 1]
    redis.call('DEL', hist)
    redis.call('HSET', pos, 'epoch', epoch, 'offset', 0)
    stampPrimary(pos)
  end
  local first = redis.call('HINCRBY', pos, 'offset', count) - count + 1
  local keep = size > 0 and ttl > 0
  for i = 1, count do
    local msg = '{"offset":' .. string.format('%d', first + i - 1) .. ',"epoch":"' .. epoch .. head .. string.sub(bodies[i], 2)
    if keep then redis.call('RPUSH', hist, msg) end
    redis.call('PUBLISH', channel, msg)
  end
  if keep then
    redis.call('LTRIM', hist, -size, -1)
    redis.call('PEXPIRE', hist, ttl)
  else
    redis.call('DEL', hist)
  end
  redis.call('PEXPIRE', pos, ARGV[a + 4])
  out[#out + 1] = epoch
  out[#out + 1] = first
  out[#out + 1] = receipt and table.concat(mask) or ''
  a = a + 6 + total + (receipt and total or 0)
end
if receipt then
  -- Decimal ids of any length, compared as numbers without going through floats.
  local function above(x, y) return #x > #y or (#x == #y and x > y) end
  local top = nil
  for _, id in ipairs(ids) do
    if top == nil or above(id, top) then top = id end
  end
  local carried = {}
  for id in pairs(seen) do
    if top == nil or above(id, top) then carried[#carried + 1] = id end
  end
  for _, id in ipairs(carried) do ids[#ids + 1] = id end
  redis.call('DEL', KEYS[#KEYS])
  for i = 1, #ids, 1000 do
    redis.call('SADD', KEYS[#KEYS], unpack(ids, i, math.min(i + 999, #ids)))
  end
  redis.call('PEXPIRE', KEYS[#KEYS], ARGV[a])
end
return out
`;

/**
 * Position + the history tail after `since`. Creates the position when missing, so a subscriber
 * of a quiet channel gets the epoch its first publication will carry; a position nothing was
 * published at yet lives only the short TTL (history.emptyPositionTtl).
 * KEYS: 1 position hash, 2 history list.
 * ARGV: 1 epoch to use when missing, 2 position TTL ms, 3 since epoch ('' = none), 4 since offset,
 * 5 TTL ms of a position at offset 0.
 * Returns {epoch, offset, entries}. Since offset 0 (nothing seen) reads the tail of any epoch.
 */
export const readLua = (cluster: boolean): string => `${samePrimaryLua(cluster)}
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local offset = 0
if not epoch or not samePrimary(KEYS[1]) then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  stampPrimary(KEYS[1])
else
  offset = tonumber(redis.call('HGET', KEYS[1], 'offset'))
end
if offset == 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local entries = {}
local since = tonumber(ARGV[4])
if (ARGV[3] == epoch or since == 0) and since ~= nil and since >= 0 and since < offset then
  -- History is contiguous and ends at the current offset: the tail holds what is missing.
  entries = redis.call('LRANGE', KEYS[2], -(offset - since), -1)
end
return {epoch, offset, entries}
`;

/**
 * A control message, published from the node owning KEYS[1] (the control channel's name, used
 * as a key only to pick that node). ARGV: 1 message JSON.
 */
export const CONTROL_LUA = `return redis.call('PUBLISH', KEYS[1], ARGV[1])`;
