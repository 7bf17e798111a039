-- PUT of SIZE-byte bodies (default 100) to random keys among KEYS named
-- PREFIX<n>: each is a durable write in SYNC_MODE=always.
local prefix = os.getenv("PREFIX") or "/blobs/w100-"
local keys = tonumber(os.getenv("KEYS") or "10000")
local body = string.rep("x", tonumber(os.getenv("SIZE") or "100"))
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("seed", counter)
end

function init(args)
    math.randomseed(seed * 104729)
end

function request()
    return wrk.format("PUT", prefix .. math.random(0, keys - 1), nil, body)
end

-- With DELAY_MS, each connection waits that long before each request: a
-- steady rate of at most connections * 1000 / DELAY_MS a second.
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
    function delay()
        return delay_ms
    end
end
