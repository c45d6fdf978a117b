"""The Lua scripts the Redis backend runs (state/redis.py): each is one atomic step in Redis, so
counts, journal batches and the replicas' heartbeats are exact across replicas."""

DIRECTIVE_TTL = 86_400  # counters of content-id directives are forgotten after a day unused
KEYED_STATES = 10_000  # sequence steps per rule: past this many ids they all start again

# One round trip per request that matches rules: counts every matching rule atomically.
# ARGV: prefix, seed, content id, client, then 8 per rule: name, key, first, every, probability,
# sequence length, rate-limit requests, rate-limit window (ms). 0 means "not set".
# The draw is faults.draw(): the first 13 hex digits of SHA-1 over "seed:name:count:p".
COUNT_SCRIPT = """
local prefix, seed, id, client = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out = {}
local now = nil
for i = 5, #ARGV, 8 do
  local name, key = ARGV[i], ARGV[i + 1]
  local first, every = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local probability, seqlen = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  local rl_requests, rl_ms = tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7])
  local directive = string.sub(key, 1, 2) == 'd:'
  local count = redis.call('INCR', prefix .. 'c:' .. key)
  if directive then redis.call('EXPIRE', prefix .. 'c:' .. key, __TTL__) end
  local fired = 1
  if first > 0 and count > first then fired = 0 end
  if fired == 1 and every > 0 and count % every ~= 0 then fired = 0 end
  if fired == 1 and probability < 1 then
    local hex = redis.sha1hex(seed .. ':' .. name .. ':' .. string.format('%d', count) .. ':p')
    if tonumber(string.sub(hex, 1, 13), 16) / 4503599627370496 >= probability then fired = 0 end
  end
  local step, wait = -1, 0
  if fired == 1 and seqlen > 0 then
    local seq = prefix .. 'seq:' .. key
    step = redis.call('HINCRBY', seq, id, 1) - 1
    if redis.call('HLEN', seq) > __KEYED__ then
      redis.call('DEL', seq)
      redis.call('HSET', seq, id, step + 1)
    end
    if directive then redis.call('EXPIRE', seq, __TTL__) end
  end
  if fired == 1 and rl_requests > 0 then
    if now == nil then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    local window = prefix .. 'rl:' .. key .. ':' .. client
    redis.call('ZREMRANGEBYSCORE', window, '-inf', now - rl_ms)
    if redis.call('ZCARD', window) >= rl_requests then
      local oldest = tonumber(redis.call('ZRANGE', window, 0, 0, 'WITHSCORES')[2])
      wait = math.max(1, math.ceil((oldest + rl_ms - now) / 1000))
    else
      redis.call('ZADD', window, now, string.format('%d', now) .. ':' .. string.format('%d', count))
      redis.call('PEXPIRE', window, rl_ms + 1000)
    end
  end
  out[#out + 1] = fired
  out[#out + 1] = count
  out[#out + 1] = step
  out[#out + 1] = wait
end
return out
""".replace("__TTL__", str(DIRECTIVE_TTL)).replace("__KEYED__", str(KEYED_STATES))

# A batch of journal entries, one command for all: KEYS: the stream; ARGV: its cap, then the
# entries (Entry.packed() as JSON). Exact trimming, so the journal holds admin.journal_size.
JOURNAL_SCRIPT = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'e', ARGV[i])
end
return #ARGV - 1
"""

# The lowest version applied and journal flush done among live replicas (the dead are forgotten).
# KEYS: replicas hash; ARGV: prefix of the alive keys.
REPLICAS_SCRIPT = """
local entries = redis.call('HGETALL', KEYS[1])
local low_version, low_flush, live = -1, -1, 0
for i = 1, #entries, 2 do
  if redis.call('EXISTS', ARGV[1] .. entries[i]) == 1 then
    local sep = string.find(entries[i + 1], ' ')
    local version = tonumber(string.sub(entries[i + 1], 1, sep - 1))
    local flush = tonumber(string.sub(entries[i + 1], sep + 1))
    if live == 0 or version < low_version then low_version = version end
    if live == 0 or flush < low_flush then low_flush = flush end
    live = live + 1
  else
    redis.call('HDEL', KEYS[1], entries[i])
  end
end
return {low_version, low_flush, live}
"""
