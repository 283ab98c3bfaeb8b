-- The requests of one wrk run, set by bench/run.py through the environment:
--   BENCH_METHOD, BENCH_PATH   method and path of every request
--   BENCH_TOKEN, BENCH_BODY    one bearer token and JSON body, repeated (a single user)
--   BENCH_POOL                 or a Lua file returning { {token, body}, ... }: each request
--                              picks one entry at random, so the load spreads over many users
wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.path = os.getenv("BENCH_PATH") or "/"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local pool_file = os.getenv("BENCH_POOL")
if pool_file and pool_file ~= "" then
  local threads = 0

  function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
  end

  local requests = {}

  function init(args)
    -- Each thread has a Lua state of its own: its own copy of the pool and its own random
    -- sequence, formatted once so that request() costs one table lookup.
    math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
    for _, entry in ipairs(dofile(pool_file)) do
      local headers = { ["Authorization"] = "Bearer " .. entry[1] }
      if entry[2] ~= "" then
        headers["Content-Type"] = "application/json"
      end
      requests[#requests + 1] = wrk.format(wrk.method, wrk.path, headers,
                                           entry[2] ~= "" and entry[2] or nil)
    end
  end

  function request()
    return requests[math.random(#requests)]
  end
end
