#!/usr/bin/env bash
# The cost of issue 14's timers: set/get throughput of tern with --open-timeout and --max-age
# against the same build without them, same run. Two tern servers (--sync never, temp data
# dirs) pinned to one core (taskset -c 0), the load tool (benches/load/) to the other
# (taskset -c 1); every cell runs on both servers, alternating which goes first, ROUNDS times
# over; prints the raw lines and a markdown table of medians with the ratio timers/plain
# (target >= 0.95).
#
#   bash benches/timers.sh                     # 3 rounds (about 4 minutes on 2 cores)
#   ROUNDS=5 COUNT=200000 bash benches/timers.sh
#
# Environment: COUNT (items per cell, default 100000), ROUNDS (default 3), TIMERS (the
# options of the timed server, default "--open-timeout 30000 --max-age 3600000"), TERN,
# LOAD, SERVER_CPU, LOAD_CPU, PIN and OUT as in compare.sh. Cells: set (produce) and get
# (consume) of 128 B at 8 connections, depth 1 and 16, and reliable reads (`get q/open` +
# `get q/close` pairs, where the open-read deadlines are kept) at 8 connections.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-100000}
ROUNDS=${ROUNDS:-3}
TERN=${TERN:-target/release/tern}
read -r -a TIMERS <<<"${TIMERS:---open-timeout 30000 --max-age 3600000}"
OUT=${OUT:-$(mktemp /tmp/tern-timers.XXXXXX.txt)}

# TERN built, LOAD found, server_pin and load_pin; free_port, wait_port, $tmp, pids.
. benches/servers.sh

start_tern() { # port dir options...
  local port=$1 dir=$2; shift 2
  "${server_pin[@]}" "$TERN" --listen 127.0.0.1:"$port" --data "$tmp/$dir" --sync never \
    --log-level warn "$@" >"$tmp/$dir.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
}
P_PLAIN=$(free_port); P_TIMERS=$(free_port)
start_tern "$P_PLAIN" plain
start_tern "$P_TIMERS" timers "${TIMERS[@]}"
PID_PLAIN=${pids[0]}; PID_TIMERS=${pids[1]}
# CPU time a process has used, in clock ticks (user + system).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

{
  echo "# $(date -u +%FT%TZ) $(uname -srm); $(nproc) CPUs: $(lscpu | sed -n 's/^Model name: *//p')"
  echo "# pinned: servers ${server_pin[*]:-no}, load ${load_pin[*]:-no}; rounds $ROUNDS"
  echo "# $("$TERN" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')); timers: ${TIMERS[*]}"
} | tee "$OUT"

fail=0
load() { # label port pid args...: the load tool's line, plus the server's CPU ticks for the
  # whole cell (timed phase, pre-fill and verification alike: the same work on both servers).
  local label=$1 port=$2 pid=$3; shift 3
  local la; la=$(cut -d' ' -f1 /proc/loadavg)
  local before line; before=$(cpu_ticks "$pid")
  line=$("${load_pin[@]}" "$LOAD" --target tern --addr 127.0.0.1:"$port" --label "$label" "$@") || fail=1
  echo "$line loadavg=$la server_cpu_ticks=$(($(cpu_ticks "$pid") - before))" | tee -a "$OUT"
}
cell() { # round args...
  local r=$1; shift
  if [ $((r % 2)) = 1 ]; then
    load plain "$P_PLAIN" "$PID_PLAIN" "$@"; load timers "$P_TIMERS" "$PID_TIMERS" "$@"
  else
    load timers "$P_TIMERS" "$PID_TIMERS" "$@"; load plain "$P_PLAIN" "$PID_PLAIN" "$@"
  fi
}

for r in $(seq "$ROUNDS"); do
  echo "# round $r of $ROUNDS" | tee -a "$OUT"
  for depth in 1 16; do
    for wl in produce consume; do
      cell "$r" --workload $wl --connections 8 --pipeline $depth --item-size 128 --count "$COUNT"
    done
  done
  cell "$r" --workload reliable --reliable-mode pair --connections 8 --item-size 128 --count "$COUNT"
done

echo "raw results: $OUT" >&2
python3 - "$OUT" "$(getconf CLK_TCK)" <<'EOF'
import statistics, sys
rows = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        for line in open(sys.argv[1]) if line.startswith("target=")]
cells = {}
for r in rows:
    cells.setdefault((r["workload"], r["pipeline"]), {}).setdefault(r["label"], []).append(r)
print("\nMedians of the rounds; 'pairs' is the median of each round's timers/plain (the two runs")
print("of a cell are back to back, so drift on the machine cancels more), with its range; 'CPU' is")
print("each server's CPU time per op over the whole cell, and plain/timers of it the throughput a")
print("core of its own would give, less sensitive to other load on the machine.")
print("\n| op | size | conns | depth | plain ops/s | timers ops/s | timers/plain | pairs (min-max) "
      "| CPU µs/op plain / timers | CPU plain/timers | target | verify |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
tick_us = 1e6 / int(sys.argv[2])
for (wl, depth), by in cells.items():
    ops = {k: [float(r["ops/s"]) for r in v] for k, v in by.items()}
    med = {k: statistics.median(v) for k, v in ops.items()}
    pairs = [t / p for t, p in zip(ops["timers"], ops["plain"])]
    cpu = {k: sum(float(r["server_cpu_ticks"]) for r in v) * tick_us / sum(float(r["ops"]) for r in v)
           for k, v in by.items()}
    ok = all(r["verify"] == "ok" for v in by.values() for r in v)
    op = {"produce": "set", "consume": "get", "reliable-pair": "open+close"}.get(wl, wl)
    ratio = statistics.median(pairs)
    print("| %s | 128 | 8 | %s | %.0f | %.0f | %.3f | %.3f (%.2f-%.2f) | %.1f / %.1f | %.3f | >= 0.95 %s | %s |" % (
        op, depth, med["plain"], med["timers"], med["timers"] / med["plain"], ratio,
        min(pairs), max(pairs), cpu["plain"], cpu["timers"], cpu["plain"] / cpu["timers"],
        "met" if ratio >= 0.95 else "NOT met", "ok" if ok else "FAILED"))
EOF
exit $fail
