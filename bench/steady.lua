-- wrk script for bench/soak.sh: chat.lua's request and summary line, with
-- each connection pausing BENCH_DELAY_MS (default 10) between requests, so
-- the load is a steady rate rather than as fast as the server answers.
--   BENCH_DIR     the bench directory (where chat.lua is)
dofile(os.getenv("BENCH_DIR") .. "/chat.lua")

local pause_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "10")

function delay()
  return pause_ms
end
