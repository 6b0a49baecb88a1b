/**
 * Lua for delayed and deduplicated jobs on Redis (internal). Names derived from the stream
 * `<s>`: the delayed set `<s>:delayed` (a sorted set of tokens scored by due time, ms since
 * the epoch by the server's clock), their entries `<s>:delayed:data` (a hash token → the
 * entry's fields, MessagePack), and one string per held key, `<s>:key:<key>` → the pending
 * job's entry id, or `d:<token>` while it waits in the delayed set. In Redis Cluster these keys
 * must share the stream's slot: give the stream a hash tag (`{jobs}`).
 *
 * @module
 */

/**
 * Adds one job: to the stream at once, or to the delayed set when ARGV[3] > 0. With a key
 * (ARGV[4] non-empty), first checks whether the job holding it is still pending — its entry is
 * still in the stream (acked entries release their key; an entry deleted or trimmed does too)
 * or its token still in the delayed set — and if so adds nothing.
 * KEYS = stream, delayed set, delayed data, key string (the stream again when no key);
 * ARGV = payload field, payload, delay ms, key, token, header name/value pairs…
 * Returns { id, 1 if deduplicated else 0 }.
 */
export const ENQUEUE = `
local key = ARGV[4]
if key ~= '' then
  local held = redis.call('GET', KEYS[4])
  if held then
    local live
    if string.sub(held, 1, 2) == 'd:' then
      live = redis.call('ZSCORE', KEYS[2], string.sub(held, 3))
    else
      live = #redis.call('XRANGE', KEYS[1], held, held) > 0
    end
    if live then return {held, 1} end
  end
end
local fields = {ARGV[1], ARGV[2]}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
if key ~= '' then
  fields[#fields + 1] = 'sluice-key'
  fields[#fields + 1] = key
end
local delay = tonumber(ARGV[3])
if delay > 0 then
  local t = redis.call('TIME')
  local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + delay
  redis.call('HSET', KEYS[3], ARGV[5], cmsgpack.pack(fields))
  redis.call('ZADD', KEYS[2], due, ARGV[5])
  if key ~= '' then redis.call('SET', KEYS[4], 'd:' .. ARGV[5]) end
  return {'d:' .. ARGV[5], 0}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
if key ~= '' then redis.call('SET', KEYS[4], id) end
return {id, 0}
`;

/**
 * Moves up to ARGV[1] due jobs from the delayed set into the stream (a key held by a moved job
 * now names its entry id). KEYS = stream, delayed set, delayed data; ARGV = max, key prefix.
 * Returns ms until the next job is due: 0 when more are due now, -1 when none waits.
 */
export const PROMOTE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, max)
for _, token in ipairs(due) do
  local packed = redis.call('HGET', KEYS[3], token)
  if packed then
    local fields = cmsgpack.unpack(packed)
    local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
    for i = 1, #fields, 2 do
      if fields[i] == 'sluice-key' then
        local k = ARGV[2] .. fields[i + 1]
        if redis.call('GET', k) == 'd:' .. token then redis.call('SET', k, id) end
      end
    end
  end
  redis.call('HDEL', KEYS[3], token)
  redis.call('ZREM', KEYS[2], token)
end
if #due == max then return 0 end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if nxt[2] then return math.max(1, tonumber(nxt[2]) - now) end
return -1
`;

/** Frees a key if the job `ARGV[1]` still holds it. KEYS = key string. Returns 1 when freed. */
export const RELEASE_KEY = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** The names of the delayed set, its data hash and the key strings of `stream`. */
export function delayKeys(stream: string): { delayed: string; data: string; keyPrefix: string } {
  return {
    delayed: `${stream}:delayed`,
    data: `${stream}:delayed:data`,
    keyPrefix: `${stream}:key:`,
  };
}
