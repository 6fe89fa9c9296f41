-- wrk script for bench/rooms.py: POST /api/v1/room-bookings from every connection.
-- Environment (set by bench/rooms.py):
--   RUANG_BENCH_TOKEN   bearer token (dev admin)
--   RUANG_BENCH_MODE    "spread": each request its own (room, hour) slot, so nearly all
--                       succeed (throughput of the constraint-checked write path);
--                       "race": every request the same room and slot (exactly one may win)
--   RUANG_BENCH_ROOMS   how many rooms (R0000..) the layout has
--   RUANG_BENCH_PER_THREAD  answers after which a thread stops sending (the race: each
--                       connection's first request is the one that counts)
--   RUANG_BENCH_DAY0    first day (YYYY-MM-DD, UTC) the spread slots use
local token = os.getenv("RUANG_BENCH_TOKEN")
local mode = os.getenv("RUANG_BENCH_MODE") or "spread"
local rooms = tonumber(os.getenv("RUANG_BENCH_ROOMS") or "1")
local per_thread = tonumber(os.getenv("RUANG_BENCH_PER_THREAD") or "100")
local day0 = os.getenv("RUANG_BENCH_DAY0")

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  thread:set("nthreads", 0)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  sent, received, created, conflicts, other = 0, 0, 0, 0, 0
  nthreads = counter
end

local function slot(n)
  -- n -> (room, day, hour): rooms first, then hours 00..09 UTC, then days.
  local room = n % rooms
  local k = math.floor(n / rooms)
  local hour = k % 10
  local day = math.floor(k / 10)
  return room, day, hour
end

local function iso(day, hour)
  local y, m, d = day0:match("(%d+)-(%d+)-(%d+)")
  local t = os.time({ year = tonumber(y), month = tonumber(m), day = tonumber(d) + day, hour = hour })
  return os.date("%Y-%m-%dT%H:00:00Z", t)
end

function request()
  local room, day, hour
  if mode == "race" then
    room, day, hour = 0, 0, 1
  else
    room, day, hour = slot(sent * 64 + id)  -- threads interleave: never the same slot
  end
  sent = sent + 1
  local body = string.format(
    '{"room_id":"R%04d","person_id":"bench-org","starts_at":"%s","ends_at":"%s"}',
    room, iso(day, hour), iso(day, hour + 1))
  return wrk.format("POST", "/api/v1/room-bookings",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end

function response(status, headers, body)
  received = received + 1
  if status == 201 then created = created + 1
  elseif status == 409 then conflicts = conflicts + 1
  else other = other + 1 end
  if mode == "race" and received >= per_thread then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local c, x, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    c = c + thread:get("created")
    x = x + thread:get("conflicts")
    o = o + thread:get("other")
  end
  io.write(string.format(
    'RUANG_BENCH {"created":%d,"conflicts":%d,"other":%d,"requests":%d,"duration_us":%d,'
    .. '"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    c, x, o, summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    -- errors.status counts every non-2xx answer (the 409s among them): not an error here.
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
