# Sourced by compare.sh and timers.sh, from the repository's root: finds or builds the load
# tool ($LOAD), pins servers to SERVER_CPU and the load tool to LOAD_CPU ($server_pin,
# $load_pin; PIN=0 runs unpinned), defines free_port and wait_port, and makes a temp dir
# ($tmp) removed on exit once the servers whose pids are in $pids are stopped.
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
if [ -z "${LOAD:-}" ]; then
  LOAD=$(cargo bench --bench load --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*load-[^)]*\)).*/\1/p' | tail -1)
fi
[ -x "$LOAD" ] || { echo "could not build the load tool" >&2; exit 1; }

# Per core: servers on SERVER_CPU, the load tool on LOAD_CPU.
server_pin=(); load_pin=()
if [ "${PIN:-1}" != 0 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  server_pin=(taskset -c "$SERVER_CPU"); load_pin=(taskset -c "$LOAD_CPU")
else
  echo "$(basename "$0"): running unpinned (PIN=0, no taskset or one CPU)" >&2
fi

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
