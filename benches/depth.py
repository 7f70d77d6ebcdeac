#!/usr/bin/env python3
"""Memory, disk and start-up time versus queue depth (issue: performance).

    cargo build --release && python3 benches/depth.py [--max-gib 4] [--item-size 1024] \
        [--binary target/release/tern]

Fills one queue with 256Ki, 1Mi and 4Mi items (256 MiB, 1 GiB and 4 GiB of payload at the
default 1 KiB; --max-gib stops after the step of that many GiB at 1 KiB, i.e. Mi items), with
--sync never, pipelined, and at each depth records tern's RSS and the data directory's size. At the deepest
point it restarts tern gracefully and times the start-up (until it accepts a connection),
then drains the queue and records RSS and disk right after the drain and once compaction has
run. Prints a Markdown table (recorded in benches/README.md).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ITEM = 1024
BATCH = 256


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, data, port):
    began = time.time()
    proc = subprocess.Popen(
        [binary, "--listen", f"127.0.0.1:{port}", "--data", data, "--sync", "never", "--log-level", "warn"],
    )
    while True:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return proc, time.time() - began
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("tern exited at start-up")
            time.sleep(0.005)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    if proc.wait(timeout=60) != 0:
        raise SystemExit("tern did not stop cleanly")


def rss(proc):
    with open(f"/proc/{proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def disk(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")

    def fill(self, count, size):
        request = (b"set depth 0 0 %d\r\n" % size + b"x" * size + b"\r\n")
        done = 0
        while done < count:
            n = min(BATCH, count - done)
            self.sock.sendall(request * n)
            for _ in range(n):
                line = self.file.readline()
                if line != b"STORED\r\n":
                    raise SystemExit(f"set failed: {line!r}")
            done += n

    def drain(self):
        taken = 0
        while True:
            self.sock.sendall(b"get depth\r\n" * BATCH)
            got = 0
            for _ in range(BATCH):
                line = self.file.readline()
                if line.startswith(b"VALUE"):
                    self.file.read(int(line.split()[3]) + 2)
                    self.file.readline()
                    got += 1
            taken += got
            if got == 0:
                return taken


def mib(n):
    return f"{n / 1048576:.0f} MiB" if n >= 1048576 else f"{n / 1024:.0f} KiB"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/tern")
    parser.add_argument("--max-gib", type=float, default=4)
    parser.add_argument("--item-size", type=int, default=ITEM)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="tern-depth-")
    port = free_port()
    proc, _ = start(args.binary, data, port)
    client = Client(port)
    rows = []
    filled = 0
    empty = disk(data)
    rows.append(("empty", "0", mib(rss(proc)), mib(empty), ""))
    for gib in (0.25, 1, 4):
        if gib > args.max_gib:
            break
        target = int(gib * 1024 * 1024 * 1024 / ITEM)
        began = time.time()
        client.fill(target - filled, args.item_size)
        filled = target
        rows.append((f"filled {mib(filled * args.item_size)}", f"{filled}", mib(rss(proc)), mib(disk(data)), f"fill {time.time() - began:.0f} s"))
    client.sock.close()
    stop(proc)
    proc, startup = start(args.binary, data, port)
    rows.append(("restarted", f"{filled}", mib(rss(proc)), mib(disk(data)), f"start-up {startup:.2f} s"))
    client = Client(port)
    began = time.time()
    drained = client.drain()
    rows.append(("drained", "0", mib(rss(proc)), mib(disk(data)), f"drain of {drained} items {time.time() - began:.0f} s"))
    time.sleep(25)  # the compaction watcher looks every 10 s
    rows.append(("drained + 25 s", "0", mib(rss(proc)), mib(disk(data)), f"empty directory was {mib(empty)}"))
    client.sock.close()
    stop(proc)
    shutil.rmtree(data)
    print("| state | items | RSS | data directory | note |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
