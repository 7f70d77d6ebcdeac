# Sourced by compare.sh, metrics_overhead.sh and timers.sh, from the repository's root, after they set TERN (and SERVER_CPU,
# LOAD_CPU): builds TERN if it is target/release/tern and finds (building it) the load tool as
# LOAD; server_pin and load_pin (taskset commands: servers on SERVER_CPU, the load tool on
# LOAD_CPU, unless PIN=0); free loopback ports, waiting for a server to accept, and a temp
# directory plus the servers' pids, all cleaned up at exit (append a started server's pid to
# `pids`).

if [ "$TERN" = target/release/tern ]; then cargo build --release --quiet; fi
if [ -z "${LOAD:-}" ]; then
  LOAD=$(cargo bench --bench load --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*load-[^)]*\)).*/\1/p' | tail -1)
fi
[ -x "$LOAD" ] || { echo "could not build the load tool" >&2; exit 1; }

server_pin=(); load_pin=()
if [ "${PIN:-1}" != 0 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  server_pin=(taskset -c "${SERVER_CPU:-0}"); load_pin=(taskset -c "${LOAD_CPU:-1}")
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
