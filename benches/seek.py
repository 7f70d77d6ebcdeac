#!/usr/bin/env python3
"""Seek and rewind latency on a deep queue (issue 14: a seek on 8M items answers in < 10 ms).

    cargo build --release && nice -n 19 python3 benches/seek.py [--items 8388608] \
        [--item-size 128] [--probes 50] [--binary target/release/tern]

Fills queue `depth` with --items items of --item-size bytes (--sync never, pipelined, one
client; enqueue times spread over the fill), then, with tern pinned to one core and this
client to the other when taskset is there, times round trips (from the request's send to
its whole reply) of:

- `get depth.c/seek=<ms>` to random times inside the fill, `seek=0`, and past the newest (the
  first one after tern starts apart: its probes read sled pages from disk);
- `get depth.c/rewind`;
- the first `stats` after a seek back to the oldest items, which counts what is left after
  the cursor (a seek does not count it), a `set` on another connection sent 50 ms into that
  `stats`, and the `stats` right after it; and the first `stats` after a seek to the middle,
  the worst case of that count (half the queue on either side);
- `get depth.c` after a seek (the item found there).

It does so under --sync never, then restarts tern gracefully with --sync always on the same
directory and does it again (there a seek also waits for its write to be durable). Prints a
Markdown table of medians, p90 and max in ms.
"""
import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time

from depth import Client, free_port, stop


def start(binary, data, port, sync, pin):
    cmd = [binary, "--listen", f"127.0.0.1:{port}", "--data", data, "--sync", sync, "--log-level", "warn"]
    if pin:
        cmd = ["taskset", "-c", "0"] + cmd
    proc = subprocess.Popen(cmd)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("tern exited at start-up")
            time.sleep(0.01)


def roundtrip(client, request, end):
    """Seconds from sending `request` to reading a reply that ends with `end`."""
    began = time.perf_counter()
    client.sock.sendall(request)
    reply = b""
    while not reply.endswith(end):
        line = client.file.readline()
        if not line:
            raise SystemExit("connection closed")
        reply += line
    return time.perf_counter() - began, reply


def ms(seconds):
    return seconds * 1000


def summary(name, samples, target):
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    return "| %s | %d | %.2f | %.2f | %.2f | %s |" % (
        name, len(samples), ms(statistics.median(samples)), ms(p90), ms(samples[-1]), target)


def measure(client, setter, first_ms, last_ms, probes, stats_probes, rng):
    rows = []
    seeks, rewinds, stats_first, stats_again, reads, sets = [], [], [], [], [], []
    # The first seek after a start reads its probes' pages from disk (sled's cache is cold).
    took, _ = roundtrip(client, b"get depth.c/seek=%d\r\n" % rng.randint(first_ms, last_ms), b"END\r\n")
    rows.append(summary("first `get depth.c/seek=<ms>` after the start (cold cache)", [took], "< 10 ms"))
    for _ in range(probes):
        at = rng.randint(first_ms, last_ms)
        took, reply = roundtrip(client, b"get depth.c/seek=%d\r\n" % at, b"END\r\n")
        if reply != b"END\r\n":
            raise SystemExit(f"seek: {reply!r}")
        seeks.append(took)
        took, reply = roundtrip(client, b"get depth.c\r\n", b"END\r\n")
        if not reply.startswith(b"VALUE depth.c "):
            raise SystemExit(f"get after seek: {reply!r}")
        reads.append(took)
    for at in (0, last_ms + 60_000):
        took, _ = roundtrip(client, b"get depth.c/seek=%d\r\n" % at, b"END\r\n")
        seeks.append(took)
    for _ in range(max(3, probes // 10)):
        took, _ = roundtrip(client, b"get depth.c/rewind\r\n", b"END\r\n")
        rewinds.append(took)
    for _ in range(stats_probes):
        # A long seek back, then the first stats counts what is left after it, holding the
        # queue meanwhile: a set on another connection sent just after it waits as long.
        roundtrip(client, b"get depth.c/seek=%d\r\n" % last_ms, b"END\r\n")
        roundtrip(client, b"get depth.c/seek=%d\r\n" % first_ms, b"END\r\n")
        result = {}
        other = threading.Thread(target=lambda: result.update(set=roundtrip(
            setter, b"set depth 0 0 1\r\nx\r\n", b"\r\n")[0]))
        began = time.perf_counter()
        client.sock.sendall(b"stats\r\n")
        time.sleep(0.05)
        other.start()
        reply = b""
        while not reply.endswith(b"END\r\n"):
            reply += client.file.readline()
        stats_first.append(time.perf_counter() - began)
        other.join()
        sets.append(result["set"])
        took, _ = roundtrip(client, b"stats\r\n", b"END\r\n")
        stats_again.append(took)
    items = [line for line in reply.split(b"\r\n") if b"depth.c_items" in line]
    # The worst case of that count: a seek to the middle, half the queue on each side.
    stats_middle = []
    for _ in range(stats_probes):
        roundtrip(client, b"get depth.c/seek=%d\r\n" % last_ms, b"END\r\n")
        roundtrip(client, b"get depth.c/seek=%d\r\n" % ((first_ms + last_ms) // 2), b"END\r\n")
        took, _ = roundtrip(client, b"stats\r\n", b"END\r\n")
        stats_middle.append(took)
    rows.append(summary("`get depth.c/seek=<ms>`", seeks, "< 10 ms"))
    rows.append(summary("`get depth.c/rewind`", rewinds, "< 10 ms"))
    rows.append(summary("`get depth.c` right after a seek", reads, "-"))
    rows.append(summary("first `stats` after a seek back to the oldest", stats_first, "(reported)"))
    rows.append(summary("a `set` sent 50 ms into that `stats`", sets, "-"))
    rows.append(summary("first `stats` after a seek to the middle", stats_middle, "(reported)"))
    rows.append(summary("`stats` again", stats_again, "-"))
    return rows, items


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/tern")
    parser.add_argument("--items", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--item-size", type=int, default=128)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--stats", type=int, default=1, help="stats timed after a seek back")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    pin = shutil.which("taskset") is not None
    if pin:
        subprocess.run(["taskset", "-p", "-c", "1", str(os.getpid())],
                       check=True, stdout=subprocess.DEVNULL)
    rng = random.Random(args.seed)
    data = tempfile.mkdtemp(prefix="tern-seek-")
    port = free_port()
    proc = start(args.binary, data, port, "never", pin)
    client = Client(port)
    first_ms = int(time.time() * 1000)
    began = time.time()
    client.fill(args.items, args.item_size)
    fill = time.time() - began
    last_ms = int(time.time() * 1000)
    print(f"filled {args.items} items of {args.item_size} B in {fill:.0f} s; "
          f"enqueue times from {first_ms} to {last_ms}")
    print("\n| round trip | n | median ms | p90 ms | max ms | target |")
    print("|---|---|---|---|---|---|")
    for sync in ("never", "always"):
        if sync == "always":
            client.sock.close()
            stop(proc)
            proc = start(args.binary, data, port, sync, pin)
            client = Client(port)
        setter = Client(port)
        rows, items = measure(client, setter, first_ms, last_ms, args.probes, args.stats, rng)
        setter.sock.close()
        print(f"| **--sync {sync}** | | | | | |")
        for row in rows:
            print(row)
    print(f"\n(last stats after a seek to the oldest: {items[0].decode() if items else '?'})")
    client.sock.close()
    stop(proc)
    shutil.rmtree(data)


if __name__ == "__main__":
    main()
