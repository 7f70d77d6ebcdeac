#!/usr/bin/env bash
# Smoke test of the archive dist/release.sh wrote for this host, used as a new user would: check
# it against SHA256SUMS, extract it, run `tern --version`, start the extracted server (with the
# example config, its examples uncommented) on a free loopback port and a fresh data directory,
# store and take one item over the memcache protocol, stop it with SIGTERM and require status 0.
#
# Usage: dist/smoke.sh [ARCHIVE]   (default: tern-<version>-<host>.tar.gz in dist/ of cargo's target
#                                    directory, where dist/release.sh writes it: target/dist/ unless
#                                    CARGO_TARGET_DIR or a cargo config moves it)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

# metadata CODE: runs the Python CODE with m, cargo's metadata of this package (parsed JSON).
metadata() {
    cargo metadata --no-deps --format-version 1 | python3 -c "import json, sys; m = json.load(sys.stdin); $1"
}
version=$(metadata 'print(next(p["version"] for p in m["packages"] if p["name"] == "tern"))')
# Where cargo builds: CARGO_TARGET_DIR, a cargo config's build.target-dir, or ./target.
target_dir=$(metadata 'print(m["target_directory"])')
host=$(rustc -vV | sed -n 's/^host: //p')
archive=${1:-$target_dir/dist/tern-$version-$host.tar.gz}
[ -f "$archive" ] || fail "no $archive: run dist/release.sh first"
name=$(basename "$archive" .tar.gz)

work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill -9 "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "smoke: $archive"
sums=$(dirname "$archive")/SHA256SUMS
if [ -f "$sums" ] && grep -q " $name.tar.gz\$" "$sums"; then
    expected=$(grep " $name.tar.gz\$" "$sums" | cut -d' ' -f1)
    if command -v sha256sum >/dev/null; then
        actual=$(sha256sum "$archive" | cut -d' ' -f1)
    else
        actual=$(shasum -a 256 "$archive" | cut -d' ' -f1)
    fi
    [ "$expected" = "$actual" ] || fail "checksum mismatch: SHA256SUMS has $expected, archive is $actual"
    echo "smoke: checksum ok ($actual)"
else
    fail "$name.tar.gz is not in $sums"
fi

tar -xzf "$archive" -C "$work"
dir=$work/$name
for file in tern README.md LICENSE tern.toml tern.service; do
    [ -f "$dir/$file" ] || fail "$file missing from the archive"
done
[ -x "$dir/tern" ] || fail "tern is not executable"

reported=$("$dir/tern" --version)
echo "smoke: tern --version: $reported"
[ "$reported" = "tern $version" ] || fail "expected 'tern $version'"

# The example config with its examples (lines `#key = …`, `#[table]`) turned on must be accepted.
sed 's/^#\([a-z[]\)/\1/' "$dir/tern.toml" >"$work/tern.toml"
grep -q '^max_items' "$work/tern.toml" || fail "no examples found in tern.toml"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$dir/tern" --listen "127.0.0.1:$port" --data "$work/data" --config "$work/tern.toml" \
    --pid-file "$work/tern.pid" --log-level info >"$work/tern.log" 2>&1 &
server=$!

python3 - "$port" "$version" <<'EOF' || { cat "$work/tern.log" >&2; fail "protocol check"; }
import socket, sys, time

port, version = int(sys.argv[1]), sys.argv[2]
deadline = time.monotonic() + 15
while True:
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("server did not accept connections within 15 s")
        time.sleep(0.1)

reader = conn.makefile("rb")

def exchange(request, lines):
    conn.sendall(request)
    return [reader.readline() for _ in range(lines)]

item = b"hello from the smoke test"
replies = [
    (b"version\r\n", [b"VERSION 1.6.0 tern-%s\r\n" % version.encode()]),
    (b"set smoke 5 0 %d\r\n%s\r\n" % (len(item), item), [b"STORED\r\n"]),
    (b"get smoke\r\n", [b"VALUE smoke 5 %d\r\n" % len(item), item + b"\r\n", b"END\r\n"]),
    (b"get smoke\r\n", [b"END\r\n"]),
]
for request, expected in replies:
    got = exchange(request, len(expected))
    if got != expected:
        sys.exit(f"sent {request!r}: expected {expected!r}, got {got!r}")
    print(f"smoke: {request.split(b' ')[0].strip().decode()}: {b''.join(got)!r}")
conn.close()
EOF

[ "$(cat "$work/tern.pid" 2>/dev/null)" = "$server" ] || fail "pid file does not hold $server"
kill -TERM "$server"
status=0
wait "$server" || status=$?
server=
sed 's/^/smoke: log: /' "$work/tern.log"
[ "$status" -eq 0 ] || fail "tern exited with status $status after SIGTERM"
[ ! -e "$work/tern.pid" ] || fail "pid file left behind"
echo "smoke: stopped by SIGTERM with status 0"
echo "smoke: PASS"
