/**
 * Lua run by the Redis source. Kept apart so the protocol code in `redis.ts` reads top-down.
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
 * Dead-letters one entry: `XADD <dead> * <fields…>`, then `XACK` (and `XDEL` when asked). A
 * MULTI would not do: Redis runs the rest of a transaction after a command fails, so a failed
 * XADD (say the dead-letter key holds a string) would still ack the entry away, and the message
 * would exist nowhere. In a script the failed XADD aborts before the ack; the entry stays pending
 * and comes back after claimIdle, past maxDeliveries, so consume() dead-letters it again on
 * arrival without running the handler.
 * KEYS[1] = stream, KEYS[2] = dead-letter stream; ARGV = group, id, '1' to XDEL, fields…
 */
export const DEAD_LETTER = `
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end
return 1
`;
