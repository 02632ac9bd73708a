#!/usr/bin/env bash
# Instructions per inquiry, counted by callgrind: unlike time, the count repeats for the same
# binary and load whatever else the shared machine is doing, so two builds can be compared one
# lever at a time. The gateway runs as `serve --sandbox` (the simulator in the same process,
# counted too) on a fresh SQLite file (or Postgres: second argument `pg`, a fresh database
# `callgrind` on 127.0.0.1:5432), under valgrind; wrk sends inquiries over 8 connections for
# DURATION seconds (default 10) after 3 s of warm-up, with instrumentation on only meanwhile.
#
#   bench/callgrind/inquiries.sh target/release/mpospay-gateway [sqlite|pg]
#
# Prints the requests, the instructions and their ratio. Needs valgrind and wrk.
set -euo pipefail
bin=$(realpath "$1")
db=${2:-sqlite}
dir=$(mktemp -d)
trap 'pkill -f "$dir" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
if [[ $db == pg ]]; then
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS callgrind" -c "CREATE DATABASE callgrind"
  url=postgres://postgres@127.0.0.1:5432/callgrind
else
  url=sqlite://$dir/gateway.db
fi
port=18099
env GATEWAY_DATABASE_URL="$url" GATEWAY_LISTEN=127.0.0.1:$port GATEWAY_LOG_FORMAT=json \
  GATEWAY_RATE_LIMIT_REQUESTS_PER_SECOND=10000000 GATEWAY_RATE_LIMIT_BURST=10000000 \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/callgrind.out" \
  "$bin" serve --sandbox >"$dir/stdout" 2>"$dir/stderr" &
for _ in $(seq 300); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.2; done
key=$(grep -m1 '^  operator' "$dir/stderr" | awk '{print $2}')
cat >"$dir/inquiry.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"product":"1501"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, string.format("/v1/bills/8888%09d/inquiry", n))
end
LUA
wrk -t1 -c8 -d3s -s "$dir/inquiry.lua" http://127.0.0.1:$port >/dev/null
callgrind_control -i on >/dev/null
out=$(wrk -t1 -c8 -d"${DURATION:-10}"s -s "$dir/inquiry.lua" http://127.0.0.1:$port)
callgrind_control -i off >/dev/null
if grep -q "Non-2xx" <<<"$out"; then echo "inquiries failed: $out" >&2; exit 1; fi
requests=$(grep "requests in" <<<"$out" | awk '{print $1}')
pkill -f "$bin serve --sandbox" || true
for _ in $(seq 50); do pgrep -f "callgrind-out-file=$dir" >/dev/null || break; sleep 0.2; done
instructions=$(grep -h '^totals:' "$dir/callgrind.out" | awk '{print $2}')
echo "$(basename "$bin") $db: $requests inquiries, $instructions instructions, $((instructions / requests)) per inquiry"
