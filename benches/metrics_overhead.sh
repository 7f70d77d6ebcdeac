#!/usr/bin/env bash
# What --metrics costs (issue #15's budget: throughput with metrics on and scraped every second
# stays >= 0.98x of the same run without; a scrape of 10 000 queues answers in under 100 ms).
#
# 1. Two tern servers on the same core (taskset -c SERVER_CPU), one plain, one with --metrics
#    scraped every second by a background loop; the load tool (other core) runs compare.sh's
#    32-connection cells on each, alternating cell by cell (which goes first alternates by
#    round), ROUNDS times; prints medians and the ratio metrics/plain.
# 2. A third server with 10 000 queues (and a cursor on every tenth): times SCRAPES scrapes.
#
#   bash benches/metrics_overhead.sh             # ROUNDS=3 COUNT=100000 ALWAYS_SECS=5
#
# Environment: ROUNDS, COUNT, ALWAYS_SECS, SCRAPES (default 20), QUEUES (default 10000), TERN
# (default target/release/tern, built), LOAD (default: built by `cargo bench --bench load
# --no-run`), SERVER_CPU and LOAD_CPU (0 and 1; PIN=0 unpinned). Each raw line ends with the
# 1-minute load average before the run: anything else running skews the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-100000}
ALWAYS_SECS=${ALWAYS_SECS:-5}
SCRAPES=${SCRAPES:-20}
QUEUES=${QUEUES:-10000}
TERN=${TERN:-target/release/tern}
# TERN built, LOAD found, server_pin and load_pin; free_port, wait_port, $tmp, pids.
. benches/servers.sh
start_tern() { # name port sync args...
  local name=$1 port=$2 sync=$3; shift 3
  "${server_pin[@]}" "$TERN" --listen 127.0.0.1:"$port" --data "$tmp/$name" --sync "$sync" \
    --log-level warn "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
}

OUT=$tmp/raw.txt
echo "# $(date -u +%FT%TZ) $("$TERN" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')); pinned: ${server_pin[*]:-no}"
for sync in never always; do
  P_PLAIN=$(free_port); P_MET=$(free_port); M_PORT=$(free_port)
  start_tern "plain-$sync" "$P_PLAIN" "$sync"
  start_tern "metrics-$sync" "$P_MET" "$sync" --metrics 127.0.0.1:"$M_PORT"
  # The scraper: one GET /metrics a second, as Prometheus would (on the load tool's core).
  "${load_pin[@]}" python3 -c "
import time, urllib.request
while True:
    urllib.request.urlopen('http://127.0.0.1:$M_PORT/metrics', timeout=10).read()
    time.sleep(1)" &
  pids+=($!)
  if [ "$sync" = never ]; then
    cells=("produce 1" "produce 16" "consume 1" "consume 16")
    amount=(--count "$COUNT")
  else
    cells=("produce 1" "produce 16")
    amount=(--duration "$ALWAYS_SECS")
  fi
  for r in $(seq "$ROUNDS"); do
    # Which server goes first alternates by round: a run leaves background work (sled's
    # flushes) on the shared core that the next run pays for.
    order=(plain metrics)
    [ $((r % 2)) = 1 ] || order=(metrics plain)
    for cell in "${cells[@]}"; do
      read -r wl depth <<<"$cell"
      for which in "${order[@]}"; do
        port=$P_PLAIN; [ $which = metrics ] && port=$P_MET
        la=$(cut -d' ' -f1 /proc/loadavg)
        "${load_pin[@]}" "$LOAD" --target tern --addr 127.0.0.1:$port --label "$which-$sync" \
          --workload "$wl" --connections 32 --pipeline "$depth" --item-size 128 "${amount[@]}" \
          | sed "s/\$/ loadavg=$la/" | tee -a "$OUT"
      done
    done
  done
done

python3 - "$OUT" <<'EOF'
import statistics, sys
cells = {}
for line in open(sys.argv[1]):
    if line.startswith("target="):
        r = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        which, sync = r["label"].split("-")
        cells.setdefault((sync, r["workload"], r["pipeline"]), {}).setdefault(which, []).append(r)
print("\n| sync | op | conns | depth | plain ops/s | --metrics, scraped 1/s, ops/s | ratio | verify |")
print("|---|---|---|---|---|---|---|---|")
for (sync, wl, depth), by in cells.items():
    med = {w: statistics.median(float(r["ops/s"]) for r in rs) for w, rs in by.items()}
    ok = all(r["verify"] == "ok" for rs in by.values() for r in rs)
    print("| %s | %s | 32 | %s | %.0f | %.0f | %.3f | %s |" % (
        sync, "set" if wl == "produce" else "get", depth, med["plain"], med["metrics"],
        med["metrics"] / med["plain"], "ok" if ok else "FAILED"))
EOF

# 2. A scrape of QUEUES queues.
P_BIG=$(free_port); M_BIG=$(free_port)
start_tern big "$P_BIG" never --metrics 127.0.0.1:"$M_BIG"
python3 - "$P_BIG" "$M_BIG" "$QUEUES" "$SCRAPES" <<'EOF'
import socket, statistics, sys, time, urllib.request
port, metrics, queues, scrapes = (int(a) for a in sys.argv[1:])
with socket.create_connection(("127.0.0.1", port)) as conn:
    batch = []
    for i in range(queues):
        batch.append(b"set bench_%05d 0 0 1\r\nx\r\n" % i)
        if i % 10 == 0:
            batch.append(b"get bench_%05d.reader/peek\r\n" % i)
    conn.sendall(b"".join(batch) + b"mn\r\n")
    got = b""
    while not got.endswith(b"MN\r\n"):
        got += conn.recv(1 << 16)
times, size = [], 0
for _ in range(scrapes):
    start = time.perf_counter()
    size = len(urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics, timeout=30).read())
    times.append((time.perf_counter() - start) * 1000)
print("\nscrape of %d queues (%d cursors): %d bytes; median %.1f ms, max %.1f ms over %d scrapes"
      % (queues, (queues + 9) // 10, size, statistics.median(times), max(times), scrapes))
EOF
