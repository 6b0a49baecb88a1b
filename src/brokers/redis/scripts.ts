/**
 * Lua run by the Redis source. Kept apart so the protocol code in `source.ts` reads top-down.
 *
 * @module
 */

/**
 * `XCLAIM … IDLE <idle> [RETRYCOUNT <n>] JUSTID` for each id that this consumer still owns.
 * Plain `XCLAIM` would take an entry back from a consumer that already reclaimed it (two
 * handlers for one message); checking the owner first turns that case into a reported loss.
 * KEYS[1] = stream; ARGV = group, consumer, idle ms, retry count (-1 = keep), ids…
 * Returns the ids that were still owned (and are now refreshed).
 */
export const CLAIM_IF_OWNED = `
local owned = {}
for i = 5, #ARGV do
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if row and row[2] == ARGV[2] then
    if ARGV[4] == '-1' then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
    else
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'RETRYCOUNT', ARGV[4], 'JUSTID')
    end
    owned[#owned + 1] = ARGV[i]
  end
end
return owned
`;

/**
 * `XACK` (and `XDEL` when asked) each id this consumer still owns. A plain `XACK` from a
 * consumer whose entry was claimed by another (its event loop stalled past `lease`) would
 * silently end the other consumer's delivery while its handler runs; so the owner is checked in
 * the same script, and that late ack is refused — unless no other consumer can have claimed the
 * entries yet (the fast path below). An id no longer pending at all (acked already, e.g. our own
 * ack sent again after a dropped connection) is left alone and not refused.
 * KEYS[1] = stream; ARGV = group, consumer, '1' to XDEL, since, lease, ids…
 * Returns the ids refused (now owned by another consumer).
 *
 * Fast path, inside the lease: `since` is a server time (ms, from `TIME`) read on the reading
 * connection before the command that delivered the oldest of these entries, so each entry's
 * delivery time (the start of its idle time) is at or after `since`. While the server's clock
 * now is less than `lease` past `since`, no entry can have been idle for `lease` ms, so no
 * consumer claiming with min-idle-time `lease` (`XAUTOCLAIM`) can have taken one: every id is
 * still ours or already acked, and the variadic `XACK` alone is exactly as safe as the check.
 * The comparison runs here, at the moment of the `XACK`, on the clock Redis counts idle time
 * with: no allowance for time in flight, a queued command or a stalled client is needed.
 * `since` = 0: unknown (not fetched by this source): always checked.
 *
 * Checked path, its cost: the owner check is one `XPENDING … <lowest id> <highest id> <count>
 * <consumer>` (this consumer's own pending entries in the ids' range: a batch of acks is usually
 * one fetch's entries, next to each other) and one variadic `XACK`, not one `XPENDING` and one
 * `XACK` per id. An id that range does not show as ours (claimed by another consumer, acked
 * already, or past the count) is looked up on its own.
 */
export const ACK_IF_OWNED = `
local group, me = ARGV[1], ARGV[2]
local since = tonumber(ARGV[4])
if since > 0 then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - since < tonumber(ARGV[5]) then
    redis.call('XACK', KEYS[1], group, unpack(ARGV, 6))
    if ARGV[3] == '1' then redis.call('XDEL', KEYS[1], unpack(ARGV, 6)) end
    return {}
  end
end
local function parse(id)
  local dash = string.find(id, '-', 1, true)
  if not dash then return tonumber(id) or 0, 0 end
  return tonumber(string.sub(id, 1, dash - 1)) or 0, tonumber(string.sub(id, dash + 1)) or 0
end
local lo, hi = ARGV[6], ARGV[6]
local lms, lseq = parse(lo)
local hms, hseq = lms, lseq
for i = 7, #ARGV do
  local ms, seq = parse(ARGV[i])
  if ms < lms or (ms == lms and seq < lseq) then lo, lms, lseq = ARGV[i], ms, seq end
  if ms > hms or (ms == hms and seq > hseq) then hi, hms, hseq = ARGV[i], ms, seq end
end
local n = #ARGV - 5
local mine = {}
for _, row in ipairs(redis.call('XPENDING', KEYS[1], group, lo, hi, 2 * n + 64, me)) do
  mine[row[1]] = true
end
local acks, refused = {}, {}
for i = 6, #ARGV do
  local id = ARGV[i]
  if mine[id] then
    acks[#acks + 1] = id
  else
    local row = redis.call('XPENDING', KEYS[1], group, id, id, 1)[1]
    if row and row[2] ~= me then
      refused[#refused + 1] = id
    elseif row then
      acks[#acks + 1] = id
    end
  end
end
if #acks > 0 then
  redis.call('XACK', KEYS[1], group, unpack(acks))
  if ARGV[3] == '1' then redis.call('XDEL', KEYS[1], unpack(acks)) end
end
return refused
`;

/**
 * Dead-letters one entry this consumer still owns: `XADD <dead> * <entry's fields…> <sluice
 * fields…>`, then `XACK` (and `XDEL` when asked). The dead letter is a copy of the whole entry,
 * read here with `XRANGE`: every field the producer wrote (`traceparent`, `tenant`, a payload
 * under another name — a malformed entry too) is kept, since with `deleteOnAck` the dead letter
 * is the only copy left. Only when the entry itself is gone (deleted or trimmed while pending)
 * is the delivered payload written instead. Returns 0, writing nothing, when another consumer
 * owns the entry now (or it is no longer pending): the late dead letter is refused, as a late
 * ack is. A MULTI would not do: Redis runs the rest of a transaction after a command fails, so a
 * failed XADD (say the dead-letter key holds a string) would still ack the entry away, and the
 * message would exist nowhere. In a script the failed XADD aborts before the ack; the entry
 * stays pending and comes back after the lease, past maxDeliveries, so consume() dead-letters it
 * again on arrival without running the handler.
 * KEYS[1] = stream, KEYS[2] = dead-letter stream; ARGV = group, id, '1' to XDEL, consumer,
 * n (0 or 2), n fallback args (payload field, payload), sluice fields…
 */
export const DEAD_LETTER = `
local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)[1]
if not row or row[2] ~= ARGV[4] then return 0 end
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])[1]
local n = tonumber(ARGV[5])
local fields = {}
if entry then
  fields = entry[2]
else
  for i = 6, 5 + n do fields[#fields + 1] = ARGV[i] end
end
for i = 6 + n, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end
return 1
`;

/**
 * Removes this consumer from the group if, and only if, it has no pending entries: `XGROUP
 * DELCONSUMER` would drop a consumer's pending entries with it (they would never be delivered
 * again), so the check and the delete run in one script.
 * KEYS[1] = stream; ARGV = group, consumer. Returns 1 when deleted.
 */
export const DELETE_IF_EMPTY = `
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`;

/**
 * Deletes the group's consumers that own no pending entry and were not seen for `idle` ms — what
 * crashed (or killed) processes leave behind. Safe for a live consumer too: with nothing pending
 * there is nothing to lose, and its next `XREADGROUP`/`XAUTOCLAIM` creates it again (a live
 * consumer is seen at every read anyway, so it is never this idle).
 * KEYS[1] = stream; ARGV = group, idle ms. Returns the number deleted.
 */
export const REAP_EMPTY_CONSUMERS = `
local deleted = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    deleted = deleted + 1
  end
end
return deleted
`;
