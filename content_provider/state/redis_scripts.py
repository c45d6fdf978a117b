"""The Lua scripts the Redis backend runs (state/redis.py): each is one atomic step in Redis, so
counts, journal batches and the replicas' heartbeats are exact across replicas.

Anyone who can reach Redis can write any key, so no script trusts what it reads: a count that is
none, a key of another type or a heartbeat of another shape is said in the answer (the backend
logs it once and shows it in /healthz) and never stops the step. What a script writes anyway (a
counter, the journal, the heartbeats, the uploaded images) replaces a value it cannot use; what it
only reads is skipped.
"""

DIRECTIVE_TTL = 86_400  # counters of content-id directives are forgotten after a day unused
KEYED_STATES = 10_000  # sequence steps per rule: past this many ids they all start again

# The generation: a random id that Redis holds beside the change counters, made when there is none.
# A Redis that restarted empty or was emptied has none, and a new one tells every replica to take
# everything up again: the change numbers (``version``, ``flush``) count within a generation, so
# no replica skips a change because it saw that number before. A bad id or a count that is none
# also starts a new generation (the counts cannot be trusted, so nothing is compared with them).
# generation(keys of generation, version, flush; a fresh id) -> id, version, flush, {key, problem, ...}
GENERATION = """
local function count_at(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' then return 0 end
  if kind ~= 'string' then return nil, 'a ' .. kind .. ', not a count' end
  local value = redis.call('GET', key)
  if string.len(value) > 15 or not string.match(value, '^%d+$') then return nil, 'not a count' end
  return tonumber(value)
end

local function generation(gen_key, version_key, flush_key, fresh)
  local bad = {}
  local gen = nil
  local kind = redis.call('TYPE', gen_key)['ok']
  if kind == 'string' then
    gen = redis.call('GET', gen_key)
    if string.len(gen) > 64 or not string.match(gen, '^[0-9a-f]+$') then
      bad[#bad + 1] = 'generation'
      bad[#bad + 1] = 'not a generation id (hex digits)'
      gen = nil
    end
  elseif kind ~= 'none' then
    bad[#bad + 1] = 'generation'
    bad[#bad + 1] = 'a ' .. kind .. ', not a generation id'
  end
  local version, why_version = count_at(version_key)
  if version == nil then
    bad[#bad + 1] = 'version'
    bad[#bad + 1] = why_version
  end
  local flush, why_flush = count_at(flush_key)
  if flush == nil then
    bad[#bad + 1] = 'flush'
    bad[#bad + 1] = why_flush
  end
  if gen and version and flush then return gen, version, flush, bad end
  redis.call('DEL', gen_key, version_key, flush_key)
  redis.call('SET', gen_key, fresh)
  return fresh, 0, 0, bad
end
"""

# What each replica reads every poll, and a journal read counts its flush with.
# KEYS: generation, version, flush. ARGV: a fresh generation id, 1 to count a flush (else 0).
# -> {generation, version, flush, then (key, problem) pairs}
STATE_SCRIPT = (
    GENERATION
    + """
local gen, version, flush, bad = generation(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
if ARGV[2] == '1' then flush = redis.call('INCR', KEYS[3]) end
local out = {gen, version, flush}
for i = 1, #bad do out[#out + 1] = bad[i] end
return out
"""
)

# An uploaded (or deleted: empty data) image, and the change it is, in one step.
# KEYS: generation, version, flush, images, imagever. ARGV: a fresh generation id, path, data.
# imagever holds "<generation>:<version>" per path: a change that no replica has seen before.
# -> {generation, version, then (key, problem) pairs}
IMAGE_SCRIPT = (
    GENERATION
    + """
local gen, version, flush, bad = generation(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
for i = 4, 5 do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= 'hash' and kind ~= 'none' then
    redis.call('DEL', KEYS[4], KEYS[5])  -- the two mean something only together
    bad[#bad + 1] = i == 4 and 'images' or 'imagever'
    bad[#bad + 1] = 'a ' .. kind .. ', not a hash: replaced (the replicas keep the images they have)'
  end
end
version = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[2], gen .. ':' .. string.format('%d', version))
local out = {gen, version}
for i = 1, #bad do out[#out + 1] = bad[i] end
return out
"""
)

# The requests that matched counted rules while the last call was under way, in one round trip:
# counts every matching rule of each request atomically, the requests in the order they came (so
# the counts are those one call per request would give). ARGV: prefix, the number of rules R,
# then 8 per rule: name, key, first, every, probability, sequence length, rate-limit requests,
# rate-limit window (ms), 0 meaning "not set"; then 4 per request: seed, content id, client, and
# the rules it matched as their places in that list ("1,3"). Few arguments per request, and one
# text back, because each argument and each number of the answer costs the mock's client CPU.
# The draw is faults.draw(): the first 13 hex digits of SHA-1 over "seed:name:count:p".
# -> {"fired count step wait ..." per request, joined by newlines; {key, problem, ...}}: a counter
# Redis cannot count (a string, another type) starts again at 0 (as after Redis lost it), and is named.
COUNT_SCRIPT = """
local prefix = ARGV[1]
local results, bad = {}, {}
local now = nil
local function failed(reply) return type(reply) == 'table' and reply['err'] ~= nil end
local function counted(key, field)
  local reply
  if field then reply = redis.pcall('HINCRBY', key, field, 1) else reply = redis.pcall('INCR', key) end
  if failed(reply) then
    bad[#bad + 1] = key
    bad[#bad + 1] = reply['err'] .. ': counted again from the start'
    if field and redis.call('TYPE', key)['ok'] == 'hash' then
      redis.call('HDEL', key, field)
      return redis.call('HINCRBY', key, field, 1)
    end
    redis.call('DEL', key)
    if field then return redis.call('HINCRBY', key, field, 1) end
    return redis.call('INCR', key)
  end
  return reply
end
local rules = tonumber(ARGV[2])
local r = 3 + rules * 8
while r <= #ARGV do
  local seed, id, client = ARGV[r], ARGV[r + 1], ARGV[r + 2]
  local out = {}
  for place in string.gmatch(ARGV[r + 3], '%d+') do
    local i = 3 + (tonumber(place) - 1) * 8
    local name, key = ARGV[i], ARGV[i + 1]
    local first, every = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
    local probability, seqlen = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
    local rl_requests, rl_ms = tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7])
    local directive = string.sub(key, 1, 2) == 'd:'
    local count = counted(prefix .. 'c:' .. key)
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
      step = counted(seq, id) - 1
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
      if failed(redis.pcall('ZREMRANGEBYSCORE', window, '-inf', now - rl_ms)) then
        bad[#bad + 1] = window
        bad[#bad + 1] = 'not a sorted set: its window starts again'
        redis.call('DEL', window)
      end
      if redis.call('ZREMRANGEBYSCORE', window, '(' .. string.format('%d', now), '+inf') > 0 then
        bad[#bad + 1] = window
        bad[#bad + 1] = 'requests from the future: dropped'
      end
      if redis.call('ZCARD', window) >= rl_requests then
        local oldest = tonumber(redis.call('ZRANGE', window, 0, 0, 'WITHSCORES')[2])
        wait = math.max(1, math.ceil((oldest + rl_ms - now) / 1000))
      else
        redis.call('ZADD', window, now, string.format('%d', now) .. ':' .. string.format('%d', count))
        redis.call('PEXPIRE', window, rl_ms + 1000)
      end
    end
    out[#out + 1] = string.format('%d %d %d %d', fired, count, step, wait)
  end
  results[#results + 1] = table.concat(out, ' ')
  r = r + 4
end
return {table.concat(results, '\\n'), bad}
""".replace("__TTL__", str(DIRECTIVE_TTL)).replace("__KEYED__", str(KEYED_STATES))

# A batch of journal entries, one command for all: KEYS: the stream; ARGV: its cap, then the
# entries (Entry.packed() as JSON). Exact trimming, so the journal holds admin.journal_size.
# A key that takes no entry (another type; a stream whose last id is the largest) is replaced.
# -> {entries written, why the key was replaced, or ''}
JOURNAL_SCRIPT = """
local replaced = ''
for i = 2, #ARGV do
  local reply = redis.pcall('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'e', ARGV[i])
  if type(reply) == 'table' and reply['err'] ~= nil then
    replaced = reply['err']
    redis.call('DEL', KEYS[1])
    redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'e', ARGV[i])
  end
end
return {#ARGV - 1, replaced}
"""

# This replica's heartbeat. KEYS: the heartbeats hash, this replica's alive key.
# ARGV: its id, "<generation> <version> <flush>", the alive key's life (ms).
# -> the type of what stood where the hash should be and was replaced, or ''
BEAT_SCRIPT = """
local kind = redis.call('TYPE', KEYS[1])['ok']
local replaced = ''
if kind ~= 'hash' and kind ~= 'none' then
  redis.call('DEL', KEYS[1])
  replaced = kind
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return replaced
"""

# The lowest version applied and journal flush done among live replicas (the dead are forgotten).
# A replica still on an earlier generation has applied nothing of this one. A heartbeat that no
# replica writes (an alive key without expiry or living longer than ours, a value of another
# shape) is not waited for, and counted.
# KEYS: heartbeats hash, generation; ARGV: prefix of the alive keys, their life (ms).
# -> {lowest version, lowest flush, live replicas, heartbeats skipped}
REPLICAS_SCRIPT = """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return {-1, -1, 0, 0} end
local gen = redis.pcall('GET', KEYS[2])
if type(gen) ~= 'string' then gen = nil end
local entries = redis.call('HGETALL', KEYS[1])
local low_version, low_flush, live, skipped = -1, -1, 0, 0
for i = 1, #entries, 2 do
  local ttl = redis.call('PTTL', ARGV[1] .. entries[i])
  local g, v, f = string.match(entries[i + 1], '^(%x+) (%-?%d+) (%d+)$')
  if ttl == -2 then
    redis.call('HDEL', KEYS[1], entries[i])
  elseif ttl < 0 or ttl > tonumber(ARGV[2]) or g == nil or string.len(v) > 15 or string.len(f) > 15 then
    skipped = skipped + 1
  else
    local version, flush = tonumber(v), tonumber(f)
    if g ~= gen then version, flush = -1, -1 end
    if live == 0 or version < low_version then low_version = version end
    if live == 0 or flush < low_flush then low_flush = flush end
    live = live + 1
  end
end
return {low_version, low_flush, live, skipped}
"""
