-- One request, repeated: method, path, bearer token and JSON body from the environment
-- (BENCH_METHOD, BENCH_PATH, BENCH_TOKEN, BENCH_BODY), set by bench/run.py.
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
