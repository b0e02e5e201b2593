"""The Lua scripts `RedisState` runs on the server, each atomic there."""

from __future__ import annotations

__all__ = ["RELEASE_PROBE", "SETTLE_BUDGET", "TAKE_BUDGET"]

#: Delete the probe lease only if this process still holds it (its token is the value).
RELEASE_PROBE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


#: Prune both logs of a budget to the window, then count the request if it fits; else say in
#: how many ms it would. KEYS: requests, tokens; ARGV: window ms, rpm, tpm (0: none), tokens,
#: member. A token log member is "tokens:member".
TAKE_BUDGET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local member = ARGV[5]
if tpm > 0 and tokens > tpm then return {0, -1} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local wait = 0
if rpm > 0 then
  local n = redis.call('ZCARD', KEYS[1])
  if n >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
    wait = tonumber(oldest[2]) + window - now
  end
end
if tpm > 0 then
  local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  local used = 0
  for i = 1, #entries, 2 do used = used + tonumber(string.match(entries[i], '^(%d+):')) end
  local over = used + tokens - tpm
  local freed = 0
  for i = 1, #entries, 2 do
    if over <= 0 then break end
    freed = freed + tonumber(string.match(entries[i], '^(%d+):'))
    if freed >= over then
      wait = math.max(wait, tonumber(entries[i + 1]) + window - now)
      break
    end
  end
end
if wait > 0 then return {0, wait} end
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], window)
if tpm > 0 then
  redis.call('ZADD', KEYS[2], now, tokens .. ':' .. member)
  redis.call('PEXPIRE', KEYS[2], window)
end
return {1, 0}
"""

#: Replace a reservation's tokens by those used, keeping its time. KEYS: tokens log;
#: ARGV: old member, new member.
SETTLE_BUDGET = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[1], score, ARGV[2])
end
return 0
"""
