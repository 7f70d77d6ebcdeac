#!/usr/bin/env bash
# tern versus memcached, per core: starts tern (--sync never and --sync always, temp data dirs)
# and memcached on free loopback ports, every server pinned to one core (taskset -c 0) and the
# load tool (benches/load/) to the other (taskset -c 1); runs every cell on tern and then on
# memcached (alternating cell by cell), ROUNDS times over, stops the servers, and prints the raw
# lines plus markdown tables of medians with tern/memcached ratios.
#
#   bash benches/compare.sh                 # whole matrix, one round (about 8 minutes on 2 cores)
#   ROUNDS=3 bash benches/compare.sh        # medians of 3
#   COUNT=20000 CURSOR_ITEMS=100000 bash benches/compare.sh   # quicker, noisier
#   BASE=/path/to/older/tern bash benches/compare.sh          # also an older build, same cells
#
# Environment: COUNT (items per set/get cell, default 100000), ALWAYS_SECS (duration of the
# --sync always cells, default 5), CURSOR_ITEMS (default 1000000), ROUNDS (default 1), TERN
# (server binary, default target/release/tern), BASE (a second tern binary run in the same cells,
# label "base"), LOAD (load tool binary, default: built by `cargo bench --bench load --no-run`),
# TERN_ARGS (more tern options, e.g. "--threads 1"), MEMCACHED (default memcached), SERVER_CPU
# and LOAD_CPU (defaults 0 and 1; PIN=0 runs unpinned), OUT (raw results file). Each raw line
# ends with the 1-minute load average before the run: anything else running on the machine
# skews the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-100000}
ALWAYS_SECS=${ALWAYS_SECS:-5}
CURSOR_ITEMS=${CURSOR_ITEMS:-1000000}
ROUNDS=${ROUNDS:-1}
BASE=${BASE:-}
TERN=${TERN:-target/release/tern}
read -r -a TERN_ARGS <<<"${TERN_ARGS:-}"
MEMCACHED=${MEMCACHED:-memcached}
OUT=${OUT:-$(mktemp /tmp/tern-compare.XXXXXX.txt)}

command -v "$MEMCACHED" >/dev/null || { echo "memcached not found (apt-get install -y memcached)" >&2; exit 1; }
# TERN built, LOAD found, server_pin and load_pin; free_port, wait_port, $tmp, pids.
. benches/servers.sh

start_tern() { # binary port dir sync
  "${server_pin[@]}" "$1" --listen 127.0.0.1:"$2" --data "$tmp/$3" --sync "$4" --log-level warn \
    "${TERN_ARGS[@]}" >"$tmp/$3.log" 2>&1 &
  pids+=($!)
  wait_port "$2"
}
P_NEVER=$(free_port); P_ALWAYS=$(free_port); P_MC=$(free_port)
start_tern "$TERN" "$P_NEVER" never never
start_tern "$TERN" "$P_ALWAYS" always always
if [ -n "$BASE" ]; then
  P_BNEVER=$(free_port); P_BALWAYS=$(free_port)
  start_tern "$BASE" "$P_BNEVER" base-never never
  start_tern "$BASE" "$P_BALWAYS" base-always always
fi
"${server_pin[@]}" "$MEMCACHED" -l 127.0.0.1 -p "$P_MC" -U 0 -t 4 -m 4096 $( [ "$(id -u)" = 0 ] && echo -u root ) &
pids+=($!)
wait_port "$P_MC"

{
  echo "# $(date -u +%FT%TZ) $(uname -srm); $(nproc) CPUs: $(lscpu | sed -n 's/^Model name: *//p')"
  echo "# pinned: servers ${server_pin[*]:-no}, load ${load_pin[*]:-no}; rounds $ROUNDS"
  [ -z "$BASE" ] || echo "# base: $("$BASE" --version)"
  echo "# $("$TERN" --version) ${TERN_ARGS[*]} ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo '+local changes')); $("$MEMCACHED" -V)"
} | tee "$OUT"

fail=0
load() { # label addr args...
  local label=$1 addr=$2; shift 2
  echo "+ load --addr $addr --label $label $*" >&2
  local la; la=$(cut -d' ' -f1 /proc/loadavg)
  if ! "${load_pin[@]}" "$LOAD" --addr "$addr" --label "$label" "$@" | sed "s/\$/ loadavg=$la/" | tee -a "$OUT"; then
    fail=1
  fi
}

# Every tern cell: on TERN, then on BASE if given. tern_cell never|always args...
tern_cell() {
  local sync=$1; shift
  if [ "$sync" = never ]; then
    load never 127.0.0.1:$P_NEVER --target tern "$@"
    [ -z "$BASE" ] || load base-never 127.0.0.1:$P_BNEVER --target tern "$@"
  else
    load always 127.0.0.1:$P_ALWAYS --target tern "$@"
    [ -z "$BASE" ] || load base-always 127.0.0.1:$P_BALWAYS --target tern "$@"
  fi
}

round() {
  for size in 128 1024; do
    for conns in 1 8 32; do
      for depth in 1 16; do
        for wl in produce consume; do
          common=(--workload $wl --connections $conns --pipeline $depth --item-size $size --count "$COUNT")
          tern_cell never "${common[@]}"
          load mc 127.0.0.1:$P_MC --target memcached "${common[@]}"
        done
      done
    done
  done

  # --sync always: sets at 8 and 32 connections (group commit), next to memcached's same cell.
  for conns in 8 32; do
    for depth in 1 16; do
      common=(--workload produce --connections $conns --pipeline $depth --item-size 128)
      tern_cell always "${common[@]}" --duration "$ALWAYS_SECS"
      load mc 127.0.0.1:$P_MC --target memcached "${common[@]}" --count "$COUNT"
    done
  done

  # Fanout `set a+b+c` at 4 connections, against memcached's plain set at 4 connections.
  tern_cell never --workload fanout --queues 3 --connections 4 --item-size 128 --count "$COUNT"
  tern_cell always --workload fanout --queues 3 --connections 4 --item-size 128 --duration "$ALWAYS_SECS"
  load mc 127.0.0.1:$P_MC --target memcached --workload produce --connections 4 --item-size 128 --count "$COUNT"

  # Mixed: 8 producers and 8 consumers on one queue at once, against memcached's set at 8.
  tern_cell never --workload mixed --connections 16 --item-size 128 --count "$COUNT"
  tern_cell always --workload mixed --connections 16 --item-size 128 --duration "$ALWAYS_SECS"
  load mc 127.0.0.1:$P_MC --target memcached --workload produce --connections 8 --item-size 128 --count "$COUNT"

  # Cursors: 4 cursors reading the whole queue at once, then a plain consumer alone (same run).
  for depth in 1 16; do
    tern_cell never --workload cursor --cursors 4 --connections 8 \
      --pipeline $depth --item-size 128 --count "$CURSOR_ITEMS"
  done
}

for r in $(seq "$ROUNDS"); do
  echo "# round $r of $ROUNDS" | tee -a "$OUT"
  round
done

echo "raw results: $OUT" >&2
python3 - "$OUT" <<'EOF'
import statistics, sys
rows = []
for line in open(sys.argv[1]):
    if line.startswith("target="):
        rows.append(dict(kv.split("=", 1) for kv in line.split() if "=" in kv))
def key(r): return (r["label"], r["workload"], r["size"], r["conns"], r["pipeline"])
cells = {}
for r in rows:
    cells.setdefault(key(r), []).append(r)
def med(rs, field):
    vals = [float(r[field]) for r in rs if field in r]
    return statistics.median(vals) if vals else float("nan")
def verified(rs): return "ok" if all(r["verify"] == "ok" for r in rs) else "FAILED"
def mc_of(workload, size, conns, pipeline):
    return cells.get(("mc", workload, size, conns, pipeline))
n = sum(1 for line in open(sys.argv[1]) if line.startswith("# round "))
print("\nMedians of %d round(s); ratio = tern / memcached in the same run (memcached's set at 4 and 8\nconnections also serves the fanout, mixed and --sync always rows: its median pools those runs)." % n)
print("\n| tern | op | size | conns | depth | tern ops/s | memcached ops/s | ratio | tern p50/p99 µs | memcached p50/p99 µs | verify |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for k, rs in cells.items():
    label, wl, size, conns, depth = k
    if label == "mc" or wl not in ("produce", "consume", "fanout", "mixed"):
        continue
    if wl == "fanout":
        m, op = mc_of("produce", size, "4", "1"), "fanout a+b+c (vs set at 4)"
    elif wl == "mixed":
        m, op = mc_of("produce", size, "8", "1"), "mixed 8+8 (vs set at 8)"
    else:
        m, op = mc_of(wl, size, conns, depth), ("set" if wl == "produce" else "get")
    t = med(rs, "ops/s")
    mo = med(m, "ops/s") if m else float("nan")
    lat = "%.0f / %.0f" % (med(rs, "p50_us"), med(rs, "p99_us"))
    if wl == "mixed":
        t = min(med(rs, "produce_ops/s"), med(rs, "consume_ops/s"))
        op += ": slower side; consumer p50/p99"
        lat = "%.0f / %.0f" % (med(rs, "consumer_p50_us"), med(rs, "consumer_p99_us"))
    mlat = "%.0f / %.0f" % (med(m, "p50_us"), med(m, "p99_us")) if m else "-"
    print("| %s | %s | %s | %s | %s | %.0f | %.0f | %.2f | %s | %s | %s |" % (
        label, op, size, conns, depth, t, mo, t / mo, lat, mlat, verified(rs)))
for k, rs in cells.items():
    if k[1] == "cursor":
        print("\n%s cursor depth %s: %s items; 4 cursors at once: slowest %.0f ops/s; one alone %.0f; plain consumer alone %.0f; slowest/plain %.2f, alone/plain %.2f; verify %s" % (
            k[0], k[4], rs[0]["items"], med(rs, "cursor_min_ops/s"), med(rs, "solo_cursor_ops/s"),
            med(rs, "plain_ops/s"), med(rs, "min_cursor/plain"), med(rs, "solo_cursor/plain"), verified(rs)))
EOF
exit $fail
