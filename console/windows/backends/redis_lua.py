"""Lua run inside Redis by the Redis window store: one round trip, atomic.

A batch is applied by one script so that the batch mark moves with the
data or not at all, whichever worker writes and whatever fails. Frames
and process records are msgpack blobs merged in Lua (``cmsgpack`` ships
with Redis): a frame is ~60 numbers, and a hash field per number costs
several times the bytes of one packed value. Frames of 60 consecutive
buckets share one hash, so the ~90 bytes Redis spends on every key are
paid once a minute per group rather than once a second. The merge rules are those of
``ingest.frames.merge_into`` and ``batch.merge_record``.

Numbers going into keys or range arguments go through ``num``: Lua's own
number-to-string conversion keeps only 14 digits, which would cut epoch
stamps to milliseconds.
"""

PRELUDE = r"""
local function num(x) return string.format('%.17g', x) end

local function merge_frame(cur, d)
  for k, v in pairs(d) do
    local c = cur[k]
    if c == nil then cur[k] = v
    else
      local first = string.byte(k, 1)
      if first == 60 then if v < c then cur[k] = v end        -- '<' min
      elseif first == 62 then if v > c then cur[k] = v end    -- '>' max
      else cur[k] = c + v end
    end
  end
  return cur
end

-- frames live in one hash per block of buckets, field = the bucket's offset
local function put_frame(key, field, delta, ttl_ms)
  local cur = redis.call('HGET', key, field)
  if cur then delta = merge_frame(cmsgpack.unpack(cur), delta) end
  redis.call('HSET', key, field, cmsgpack.pack(delta))
  redis.call('PEXPIRE', key, ttl_ms)
end

local function see_groups(key, groups, now, ttl_ms)
  for _, g in ipairs(groups) do redis.call('ZADD', key, 'GT', g[2], g[1]) end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. num(now - ttl_ms / 1000))
  redis.call('PEXPIRE', key, ttl_ms)
end

local function merge_record(cur, d)
  local newer = (d.last_seen or 0) >= (cur.last_seen or 0)
  for k, v in pairs(d) do
    local old = cur[k]
    if k == 'first_seen' then if old == nil or v < old then cur[k] = v end
    elseif k == 'last_seen' or k == 'rank' then if old == nil or v > old then cur[k] = v end
    elseif newer or old == nil then cur[k] = v end
  end
  return cur
end

local function touch_agent(agent, field, now, ttl_ms)
  local last = tonumber(redis.call('HGET', agent, 'last_seen') or '0')
  redis.call('HSET', agent, field, num(now), 'last_seen', num(math.max(now, last)))
  redis.call('PEXPIRE', agent, ttl_ms)
end
"""

#: KEYS[1] host prefix; ARGV instance, batch id, now, payload (msgpack, see
#: ``backends.redis._payload``). Returns the samples written, -1 for a duplicate.
WRITE = PRELUDE + r"""
local base = KEYS[1]
local batch_id, now = tonumber(ARGV[2]), tonumber(ARGV[3])
local mark_key = base .. 'hwm:' .. ARGV[1]
if batch_id <= tonumber(redis.call('GET', mark_key) or '0') then return -1 end
local b = cmsgpack.unpack(ARGV[4])

-- raw samples: one stream entry per batch (the packed samples concatenated,
-- field 'z' when zlib-compressed), ids by arrival and never going backwards,
-- trimmed by MINID
if #b.raw > 0 then
  local key = base .. 'raw'
  local ms = math.floor(now * 1000)
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if #last > 0 then ms = math.max(ms, tonumber(string.match(last[1][1], '^%d+'))) end
  redis.call('XADD', key, string.format('%d-*', ms), b.raw_field, b.raw)
  redis.call('XTRIM', key, 'MINID', string.format('%d', math.floor((now - b.raw_ret) * 1000)))
  redis.call('PEXPIRE', key, math.floor(b.raw_ret * 1000))
end

for _, f in ipairs(b.frames) do put_frame(base .. f[1], f[2], f[4], f[3]) end
see_groups(base .. 'groups', b.groups, now, b.agent_ttl)

-- process registry: hash of records, and a zset by last seen for trimming
local procs, pseen = base .. 'procs', base .. 'procs:seen'
for _, p in ipairs(b.procs) do
  local rec, cur = p[2], redis.call('HGET', procs, p[1])
  if cur then rec = merge_record(cmsgpack.unpack(cur), rec) end
  redis.call('HSET', procs, p[1], cmsgpack.pack(rec))
  redis.call('ZADD', pseen, rec.last_seen, p[1])
end
local cutoff = '(' .. num(now - b.proc_ret)
for _, f in ipairs(redis.call('ZRANGEBYSCORE', pseen, '-inf', cutoff)) do redis.call('HDEL', procs, f) end
redis.call('ZREMRANGEBYSCORE', pseen, '-inf', cutoff)
redis.call('PEXPIRE', procs, math.floor(b.proc_ret * 1000))
redis.call('PEXPIRE', pseen, math.floor(b.proc_ret * 1000))

-- slow requests: active by request key (+ zset by last seen), ended in a zset by stamp
local act, aseen, done = base .. 'slow:active', base .. 'slow:seen', base .. 'slow:done'
for _, s in ipairs(b.sact) do
  redis.call('HSET', act, s[1], s[3])
  redis.call('ZADD', aseen, s[2], s[1])
end
for _, s in ipairs(b.sdone) do
  redis.call('HDEL', act, s[1])
  redis.call('ZREM', aseen, s[1])
  redis.call('ZADD', done, s[2], s[3])
end
local function expire_active(f)
  local blob = redis.call('HGET', act, f)
  if blob then redis.call('ZADD', done, redis.call('ZSCORE', aseen, f) or num(now), blob) end
  redis.call('HDEL', act, f)
  redis.call('ZREM', aseen, f)
end
if #b.stop > 0 then
  for _, f in ipairs(redis.call('HKEYS', act)) do
    for _, prefix in ipairs(b.stop) do
      if string.sub(f, 1, #prefix) == prefix then expire_active(f); break end
    end
  end
end
for _, f in ipairs(redis.call('ZRANGEBYSCORE', aseen, '-inf', '(' .. num(now - b.slow_stale))) do
  expire_active(f)
end
redis.call('ZREMRANGEBYSCORE', done, '-inf', '(' .. num(now - b.slow_ret))
redis.call('ZREMRANGEBYRANK', done, 0, -(b.slow_kept + 1))
for _, key in ipairs({act, aseen, done}) do redis.call('PEXPIRE', key, math.floor(b.slow_ret * 1000)) end

-- lifecycle events by stamp
local life = base .. 'life'
for _, e in ipairs(b.life) do redis.call('ZADD', life, e[1], e[2]) end
redis.call('ZREMRANGEBYSCORE', life, '-inf', '(' .. num(now - b.life_ret))
redis.call('PEXPIRE', life, math.floor(b.life_ret * 1000))

touch_agent(base .. 'agent', 'last_batch', now, b.agent_ttl)
redis.call('SET', mark_key, batch_id, 'PX', b.mark_ttl)
return b.n
"""

#: KEYS[1] host prefix; ARGV now, payload {counters, frames = {{key, field, ttl ms}}, agent_ttl}.
COUNTERS = PRELUDE + r"""
local base = KEYS[1]
local now = tonumber(ARGV[1])
local b = cmsgpack.unpack(ARGV[2])
local agent = base .. 'agent'
local previous = tonumber(redis.call('HGET', agent, 'c:lost') or '0')
local lost = b.counters.lost or 0
local grown = lost - previous
if lost < previous then grown = lost end   -- a restarted agent counts from 0
if grown > 0 then
  for _, f in ipairs(b.frames) do put_frame(base .. f[1], f[2], {loss = grown}, f[3]) end
  see_groups(base .. 'groups', {{'*', now}}, now, b.agent_ttl)
end
for k, v in pairs(b.counters) do redis.call('HSET', agent, 'c:' .. k, v) end
touch_agent(agent, 'last_heartbeat', now, b.agent_ttl)
return grown
"""
