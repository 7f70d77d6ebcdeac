#!/usr/bin/env bash
# tern versus memcached, the matrix of issue 5, in one session: starts tern (--sync never and
# --sync always, temp data dirs) and memcached on free loopback ports, runs every cell with the
# load tool (benches/load/), tern and memcached alternating cell by cell, stops the servers,
# and prints the raw lines plus a markdown table with tern/memcached ratios.
#
#   bash benches/compare.sh                 # whole matrix (about 5-8 minutes on 2 cores)
#   COUNT=20000 CURSOR_ITEMS=100000 bash benches/compare.sh   # quicker, noisier
#
# Environment: COUNT (items per set/get cell, default 100000), ALWAYS_SECS (duration of the
# --sync always cells, default 5), CURSOR_ITEMS (default 1000000), TERN (server binary, default
# target/release/tern), LOAD (load tool binary, default: built by `cargo bench --bench load
# --no-run`), TERN_ARGS (more tern options, e.g. "--threads 1"), MEMCACHED (default memcached),
# OUT (raw results file). Each raw line ends with the
# 1-minute load average before the run: anything else running on the machine skews the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-100000}
ALWAYS_SECS=${ALWAYS_SECS:-5}
CURSOR_ITEMS=${CURSOR_ITEMS:-1000000}
TERN=${TERN:-target/release/tern}
read -r -a TERN_ARGS <<<"${TERN_ARGS:-}"
MEMCACHED=${MEMCACHED:-memcached}
OUT=${OUT:-$(mktemp /tmp/tern-compare.XXXXXX.txt)}

command -v "$MEMCACHED" >/dev/null || { echo "memcached not found (apt-get install -y memcached)" >&2; exit 1; }
if [ "$TERN" = target/release/tern ]; then cargo build --release --quiet; fi
if [ -z "${LOAD:-}" ]; then
  LOAD=$(cargo bench --bench load --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*load-[^)]*\)).*/\1/p' | tail -1)
fi
[ -x "$LOAD" ] || { echo "could not build the load tool" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2; exit 1
}

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

P_NEVER=$(free_port); P_ALWAYS=$(free_port); P_MC=$(free_port)
"$TERN" --listen 127.0.0.1:$P_NEVER --data "$tmp/never" --sync never --log-level warn "${TERN_ARGS[@]}" >"$tmp/never.log" 2>&1 &
pids+=($!)
"$TERN" --listen 127.0.0.1:$P_ALWAYS --data "$tmp/always" --sync always --log-level warn "${TERN_ARGS[@]}" >"$tmp/always.log" 2>&1 &
pids+=($!)
"$MEMCACHED" -l 127.0.0.1 -p $P_MC -U 0 -t 2 -m 4096 $( [ "$(id -u)" = 0 ] && echo -u root ) &
pids+=($!)
wait_port $P_NEVER; wait_port $P_ALWAYS; wait_port $P_MC

{
  echo "# $(date -u +%FT%TZ) $(uname -srm); $(nproc) CPUs: $(lscpu | sed -n 's/^Model name: *//p')"
  echo "# $("$TERN" --version) ${TERN_ARGS[*]} ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo '+local changes')); $("$MEMCACHED" -V)"
} | tee "$OUT"

fail=0
load() { # label addr args...
  local label=$1 addr=$2; shift 2
  echo "+ load --addr $addr --label $label $*" >&2
  local la; la=$(cut -d' ' -f1 /proc/loadavg)
  if ! "$LOAD" --addr "$addr" --label "$label" "$@" | sed "s/\$/ loadavg=$la/" | tee -a "$OUT"; then
    fail=1
  fi
}

for size in 128 1024; do
  for conns in 1 8 32; do
    for depth in 1 16; do
      for wl in produce consume; do
        common=(--workload $wl --connections $conns --pipeline $depth --item-size $size --count "$COUNT")
        load never 127.0.0.1:$P_NEVER --target tern "${common[@]}"
        load mc 127.0.0.1:$P_MC --target memcached "${common[@]}"
      done
    done
  done
done

# --sync always: sets at 32 connections (group commit), next to memcached's same cell.
for size in 128 1024; do
  for depth in 1 16; do
    common=(--workload produce --connections 32 --pipeline $depth --item-size $size)
    load always 127.0.0.1:$P_ALWAYS --target tern "${common[@]}" --duration "$ALWAYS_SECS"
    load mc 127.0.0.1:$P_MC --target memcached "${common[@]}" --count "$COUNT"
  done
done

# Cursors: 4 cursors reading the whole queue at once, then a plain consumer alone (same run).
for depth in 1 16; do
  load never 127.0.0.1:$P_NEVER --target tern --workload cursor --cursors 4 --connections 8 \
    --pipeline $depth --item-size 128 --count "$CURSOR_ITEMS"
done

echo "raw results: $OUT" >&2
python3 - "$OUT" <<'EOF'
import sys
rows = []
for line in open(sys.argv[1]):
    if line.startswith("target="):
        rows.append(dict(kv.split("=", 1) for kv in line.split() if "=" in kv))
def key(r): return (r["workload"], r["size"], r["conns"], r["pipeline"])
mc = {key(r): r for r in rows if r["label"] == "mc"}
f = lambda x: float(x)
print("\n| op | size | conns | depth | tern ops/s | memcached ops/s | ratio | tern p50/p99/p99.9 µs | memcached p50/p99/p99.9 µs | p99 ratio | verify tern/mc | loadavg tern/mc |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if r["label"] not in ("never", "always") or r["workload"] not in ("produce", "consume"):
        continue
    m = mc.get(key(r))
    op = ("set" if r["workload"] == "produce" else "get") + (" (sync always)" if r["label"] == "always" else "")
    lat = lambda x: "%s / %s / %s" % (x["p50_us"], x["p99_us"], x["p999_us"])
    if m:
        print("| %s | %s | %s | %s | %.0f | %.0f | %.2f | %s | %s | %.2f | %s/%s | %s/%s |" % (
            op, r["size"], r["conns"], r["pipeline"], f(r["ops/s"]), f(m["ops/s"]),
            f(r["ops/s"]) / f(m["ops/s"]), lat(r), lat(m), f(r["p99_us"]) / f(m["p99_us"]),
            r["verify"], m["verify"], r.get("loadavg", "?"), m.get("loadavg", "?")))
for r in rows:
    if r["workload"] == "cursor":
        print("\ncursor depth %s: %s items; 4 cursors at once: slowest %s ops/s; one cursor alone %s ops/s; plain consumer alone %s ops/s; slowest/plain %s, alone/plain %s; verify %s" % (
            r["pipeline"], r["items"], r["cursor_min_ops/s"], r["solo_cursor_ops/s"], r["plain_ops/s"],
            r["min_cursor/plain"], r["solo_cursor/plain"], r["verify"]))
EOF
exit $fail
