-- GET of random keys among KEYS (default 10000) named PREFIX<n>; for nginx,
-- PREFIX is a file path prefix.
local prefix = os.getenv("PREFIX") or "/blobs/k100-"
local keys = tonumber(os.getenv("KEYS") or "10000")
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("seed", counter)
end

function init(args)
    math.randomseed(seed * 7919)
end

function request()
    return wrk.format("GET", prefix .. math.random(0, keys - 1))
end
