"""Lua run inside Redis by the Redis window store: one round trip, atomic.

A batch is applied by one script so that the batch mark moves with the
data or not at all, whichever worker writes and whatever fails. Frames
and process records are msgpack blobs merged in Lua (``cmsgpack`` ships
with Redis): a frame is ~60 numbers, and a hash field per number costs
several times the bytes of one packed value. Frames of 60 consecutive
buckets share one hash, so the ~90 bytes Redis spends on every key are
paid once a minute per group rather than once a second. The merge rules are those of
``ingest.model.frames.merge_into`` and ``batch.merge_record``.

Numbers going into keys or range arguments go through ``num``: Lua's own
number-to-string conversion keeps only 14 digits, which would cut epoch
stamps to milliseconds.

Redis does not roll a script back: what it wrote before an error stays.
So each script runs in two phases. The first only reads and computes: it
checks the type of every key it will write, decodes and merges every
stored frame and record it will replace (a value that is not a finite
number is an error there), and checks every number it will use as a
score. The second only writes, with commands that cannot fail on keys and
arguments so checked. An error therefore leaves nothing written and the
batch mark where it was; it comes back as a ``BADDATA``, ``WRONGTYPE`` or
script error, which the store raises as InvalidSample (the batch is
refused), never as an outage. (Out of memory is refused by Redis at a
script's first write, so it too leaves nothing behind.)
"""

PRELUDE = r"""
local function num(x) return string.format('%.17g', x) end

local function fail(message) error({err = 'BADDATA ' .. message}) end

-- a finite number (not NaN, not +-inf): what every frame value and score must be
local function finite(x, what)
  if type(x) ~= 'number' or x - x ~= 0 then fail(what .. ' is not a finite number') end
  return x
end

-- every key a script writes must be absent or of the type it writes
local function want(key, kind)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= kind then
    error({err = 'WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a ' .. kind})
  end
end

local function unpack_table(blob, what)
  local ok, value = pcall(cmsgpack.unpack, blob)
  if not ok or type(value) ~= 'table' then fail(what .. ' is not a packed map') end
  return value
end

local function merge_frame(cur, d)
  for k, v in pairs(d) do
    finite(v, 'frame value ' .. k)
    local c = cur[k]
    if c == nil then cur[k] = v
    else
      finite(c, 'stored frame value ' .. k)
      local first = string.byte(k, 1)
      if first == 60 then if v < c then cur[k] = v end        -- '<' min
      elseif first == 62 then if v > c then cur[k] = v end    -- '>' max
      else cur[k] = c + v end
    end
  end
  return cur
end

-- phase 1 of a frame: its hash (type checked by HGET) merged with the delta, packed
local function merged_frame(key, field, delta)
  local cur = redis.call('HGET', key, field)
  if cur then return cmsgpack.pack(merge_frame(unpack_table(cur, key .. ' ' .. field), delta)) end
  return cmsgpack.pack(merge_frame({}, delta))
end

local function see_groups(key, groups, now, ttl_ms)
  for _, g in ipairs(groups) do redis.call('ZADD', key, 'GT', g[2], g[1]) end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. num(now - ttl_ms / 1000))
  redis.call('PEXPIRE', key, ttl_ms)
end

local function merge_record(cur, d)
  for _, k in ipairs({'first_seen', 'last_seen', 'rank'}) do
    if cur[k] ~= nil then finite(cur[k], 'stored record ' .. k) end
  end
  local newer = (d.last_seen or 0) >= (cur.last_seen or 0)
  for k, v in pairs(d) do
    local old = cur[k]
    if k == 'first_seen' then if old == nil or v < old then cur[k] = v end
    elseif k == 'last_seen' or k == 'rank' then if old == nil or v > old then cur[k] = v end
    elseif newer or old == nil then cur[k] = v end
  end
  return cur
end

-- phase 1 of the agent hash: the last_seen it holds, as a number
local function agent_seen(agent)
  local last = redis.call('HGET', agent, 'last_seen')
  if last == false then return 0 end
  return finite(tonumber(last), agent .. ' last_seen')
end
"""

#: KEYS[1] host prefix; ARGV instance, batch id, now, payload (msgpack, see
#: ``backends.redis._payload``). Returns the samples written, -1 for a duplicate.
WRITE = PRELUDE + r"""
local base = KEYS[1]
local batch_id, now = tonumber(ARGV[2]), tonumber(ARGV[3])
local mark_key = base .. 'hwm:' .. ARGV[1]
local mark = redis.call('GET', mark_key)
if mark and not tonumber(mark) then fail(mark_key .. ' is not a batch id') end
if batch_id <= tonumber(mark or '0') then return -1 end
local b = cmsgpack.unpack(ARGV[4])

-- phase 1: read, check and compute; nothing is written until every part is known to apply
local raw_key, groups_key, agent = base .. 'raw', base .. 'groups', base .. 'agent'
local procs, pseen = base .. 'procs', base .. 'procs:seen'
local act, aseen, done = base .. 'slow:active', base .. 'slow:seen', base .. 'slow:done'
local ended, slow_at = base .. 'slow:ended', base .. 'slow:at'
local life, bad_key = base .. 'life', base .. 'bad'
want(raw_key, 'stream'); want(groups_key, 'zset'); want(agent, 'hash'); want(procs, 'hash')
want(pseen, 'zset'); want(act, 'hash'); want(aseen, 'zset'); want(done, 'zset'); want(life, 'zset')
want(ended, 'hash'); want(slow_at, 'string'); want(bad_key, 'list')

local raw_ms = math.floor(now * 1000)
if #b.raw > 0 then  -- stream ids by arrival never go backwards
  local last = redis.call('XREVRANGE', raw_key, '+', '-', 'COUNT', 1)
  if #last > 0 then raw_ms = math.max(raw_ms, tonumber(string.match(last[1][1], '^%d+'))) end
end
local frames = {}
for i, f in ipairs(b.frames) do frames[i] = merged_frame(base .. f[1], f[2], f[4]) end
for _, g in ipairs(b.groups) do finite(g[2], 'group time') end
local records = {}
for i, p in ipairs(b.procs) do
  local rec, cur = p[2], redis.call('HGET', procs, p[1])
  finite(rec.last_seen, 'record last_seen'); finite(rec.first_seen, 'record first_seen')
  if cur then rec = merge_record(unpack_table(cur, procs .. ' ' .. p[1]), rec) end
  records[i] = cmsgpack.pack(rec)
  p[2] = rec.last_seen
end
-- requests whose completion is stored: a late active record of theirs is not news
local finished = {}
for _, s in ipairs(b.sact) do
  finite(s[2], 'slow request stamp')
  local cur = redis.call('HGET', ended, s[1])
  if cur and string.sub(cur, 1, 1) == 'c' then finished[s[1]] = true end
end
for _, s in ipairs(b.sdone) do finite(s[2], 'slow request stamp') end
if b.latest then finite(b.latest, 'batch stamp') end
for _, e in ipairs(b.life) do finite(e[1], 'lifecycle stamp') end
local last_seen = agent_seen(agent)
local bad_samples = 0
if b.bad_n > 0 then
  local stored = redis.call('HGET', agent, 'c:bad_samples')
  bad_samples = stored and finite(tonumber(stored), agent .. ' c:bad_samples') or 0
end

-- phase 2: write

-- raw samples: one stream entry per batch (the packed samples concatenated,
-- field 'z' when zlib-compressed), trimmed by MINID
if #b.raw > 0 then
  redis.call('XADD', raw_key, string.format('%d-*', raw_ms), b.raw_field, b.raw)
  redis.call('XTRIM', raw_key, 'MINID', string.format('%d', math.floor((now - b.raw_ret) * 1000)))
  redis.call('PEXPIRE', raw_key, math.floor(b.raw_ret * 1000))
end

for i, f in ipairs(b.frames) do
  redis.call('HSET', base .. f[1], f[2], frames[i])
  redis.call('PEXPIRE', base .. f[1], f[3])
end
see_groups(groups_key, b.groups, now, b.agent_ttl)

-- process registry: hash of records, and a zset by last seen for trimming
for i, p in ipairs(b.procs) do
  redis.call('HSET', procs, p[1], records[i])
  redis.call('ZADD', pseen, p[2], p[1])
end
local cutoff = '(' .. num(now - b.proc_ret)
for _, f in ipairs(redis.call('ZRANGEBYSCORE', pseen, '-inf', cutoff)) do redis.call('HDEL', procs, f) end
redis.call('ZREMRANGEBYSCORE', pseen, '-inf', cutoff)
local over = redis.call('ZCARD', pseen) - b.proc_max
if over > 0 then  -- the least recently seen go first
  for _, f in ipairs(redis.call('ZRANGE', pseen, 0, over - 1)) do redis.call('HDEL', procs, f) end
  redis.call('ZREMRANGEBYRANK', pseen, 0, over - 1)
end
redis.call('PEXPIRE', procs, math.floor(b.proc_ret * 1000))
redis.call('PEXPIRE', pseen, math.floor(b.proc_ret * 1000))

-- slow requests: active by request key (+ zset by last seen); ended ones (one per request,
-- completed 'c' or expired 'x' before the packed record) by key, in a zset by stamp
local function end_request(f, score, state, blob)
  redis.call('HSET', ended, f, state .. blob)
  redis.call('ZADD', done, score, f)
end
for _, s in ipairs(b.sact) do
  if not finished[s[1]] then
    redis.call('HSET', act, s[1], s[3])
    redis.call('ZADD', aseen, s[2], s[1])
    redis.call('HDEL', ended, s[1])  -- repeated again: it had not expired after all
    redis.call('ZREM', done, s[1])
  end
end
for _, s in ipairs(b.sdone) do
  redis.call('HDEL', act, s[1])
  redis.call('ZREM', aseen, s[1])
  end_request(s[1], s[2], 'c', s[3])
end
local function expire_active(f)
  local blob = redis.call('HGET', act, f)
  if blob then end_request(f, redis.call('ZSCORE', aseen, f) or num(now), 'x', blob) end
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
if b.latest then  -- stale: the agent's stream went on this far without the request
  for _, f in ipairs(redis.call('ZRANGEBYSCORE', aseen, '-inf', '(' .. num(b.latest - b.slow_stale))) do
    expire_active(f)
  end
  redis.call('SET', slow_at, num(b.latest))
end
local function drop_ended(fields)
  for _, f in ipairs(fields) do redis.call('HDEL', ended, f) end
end
local slow_cutoff = '(' .. num(now - b.slow_ret)
drop_ended(redis.call('ZRANGEBYSCORE', done, '-inf', slow_cutoff))
redis.call('ZREMRANGEBYSCORE', done, '-inf', slow_cutoff)
local slow_over = redis.call('ZCARD', done) - b.slow_kept
if slow_over > 0 then
  drop_ended(redis.call('ZRANGE', done, 0, slow_over - 1))
  redis.call('ZREMRANGEBYRANK', done, 0, slow_over - 1)
end
for _, key in ipairs({act, aseen, done, ended, slow_at}) do
  redis.call('PEXPIRE', key, math.floor(b.slow_ret * 1000))
end

-- lifecycle events by stamp
for _, e in ipairs(b.life) do redis.call('ZADD', life, e[1], e[2]) end
redis.call('ZREMRANGEBYSCORE', life, '-inf', '(' .. num(now - b.life_ret))
redis.call('PEXPIRE', life, math.floor(b.life_ret * 1000))

-- samples the checks dropped: counted with the agent's counters, latest reasons in a list
if b.bad_n > 0 then
  redis.call('HSET', agent, 'c:bad_samples', num(bad_samples + b.bad_n))
  for i = #b.bad, 1, -1 do redis.call('LPUSH', bad_key, b.bad[i]) end
  redis.call('LTRIM', bad_key, 0, b.bad_kept - 1)
  redis.call('PEXPIRE', bad_key, b.agent_ttl)
end

redis.call('HSET', agent, 'last_batch', num(now), 'last_seen', num(math.max(now, last_seen)))
redis.call('PEXPIRE', agent, b.agent_ttl)
redis.call('SET', mark_key, batch_id, 'PX', b.mark_ttl)
return b.n
"""

#: KEYS[1] host prefix; ARGV now, payload {counters, instance, kinds (LOSS_KINDS), kept
#: (INSTANCES_KEPT), frames = {{key, field, ttl ms}}, agent_ttl}. The loss rule is
#: ``loss.loss_growth``. Two phases like WRITE: reads and merges first, then only writes.
#: Returns the host's loss totals, flat: kind, total, kind, total...
COUNTERS = PRELUDE + r"""
local base = KEYS[1]
local now = tonumber(ARGV[1])
local b = cmsgpack.unpack(ARGV[2])
local agent, groups_key = base .. 'agent', base .. 'groups'
local loss_key, loss_seen = base .. 'loss', base .. 'loss:seen'
want(agent, 'hash'); want(groups_key, 'zset'); want(loss_key, 'hash'); want(loss_seen, 'zset')
local stored = redis.call('HGET', loss_key, b.instance)
local previous = stored and unpack_table(stored, loss_key .. ' ' .. b.instance) or {}
local mine, totals, changed, lost = {}, {}, {}, 0
for _, kind in ipairs(b.kinds) do
  local total = redis.call('HGET', agent, 't:' .. kind)
  if total then totals[kind] = finite(tonumber(total), agent .. ' t:' .. kind) end
  local value = b.counters[kind]
  if value ~= nil then
    local before = finite(previous[kind] or 0, loss_key .. ' ' .. kind)
    local grown = value - before
    if value < before then grown = value end   -- the instance counts from 0 again
    totals[kind] = (totals[kind] or 0) + grown
    mine[kind], changed[kind] = value, true
    if kind == 'lost' then lost = grown end
  end
end
local frames = {}
if lost > 0 then
  for i, f in ipairs(b.frames) do frames[i] = merged_frame(base .. f[1], f[2], {loss = lost}) end
end
local last_seen = agent_seen(agent)

if lost > 0 then
  for i, f in ipairs(b.frames) do
    redis.call('HSET', base .. f[1], f[2], frames[i])
    redis.call('PEXPIRE', base .. f[1], f[3])
  end
  see_groups(groups_key, {{'*', now}}, now, b.agent_ttl)
end
for k, v in pairs(b.counters) do redis.call('HSET', agent, 'c:' .. k, num(v)) end
for kind in pairs(changed) do redis.call('HSET', agent, 't:' .. kind, num(totals[kind])) end
redis.call('HSET', agent, 'last_heartbeat', num(now), 'last_seen', num(math.max(now, last_seen)))
redis.call('PEXPIRE', agent, b.agent_ttl)
redis.call('HSET', loss_key, b.instance, cmsgpack.pack(mine))
redis.call('ZADD', loss_seen, now, b.instance)
local over = redis.call('ZCARD', loss_seen) - b.kept
if over > 0 then  -- the least recently heard instances go first
  for _, old in ipairs(redis.call('ZRANGE', loss_seen, 0, over - 1)) do redis.call('HDEL', loss_key, old) end
  redis.call('ZREMRANGEBYRANK', loss_seen, 0, over - 1)
end
redis.call('PEXPIRE', loss_key, b.agent_ttl)
redis.call('PEXPIRE', loss_seen, b.agent_ttl)
local reply = {}
for kind, total in pairs(totals) do reply[#reply + 1] = kind; reply[#reply + 1] = num(total) end
return reply
"""
