#!/usr/bin/env python3
"""Memory with many deep queues: what RSS costs per queue, not per item (issue 12, beside
target 9, which holds one item per queue).

    cargo build --release
    python3 benches/breadth.py                                  # 2 000 queues x 400 items of 128 B
    python3 benches/breadth.py --binary other/tern --queues 1000 --items 1000

Python 3, standard library only. A fresh temporary data directory; the server is started as
`tern --listen 127.0.0.1:<free port> --data <dir> --sync <--sync> --log-level warn`, pinned to
CPU 0 with `taskset -c 0` when there are two CPUs (this script then runs on CPU 1). Steps, each
followed by VmRSS of the server:

1. fill: `--items` rounds of one `set` to every queue (`q0` ... `q<N-1>`), each round sent in
   one write and its replies read back (so a queue's items arrive one per round, as a trickle
   over many queues); RSS right after and `--settle` seconds later;
2. graceful restart (SIGTERM, wait, start), RSS once it serves;
3. one `stats`, RSS; one `get` of every queue, three times, RSS; then `--idle` seconds idle
   (the connection threads hand free pages back after 10-20 s without input), RSS;
4. a drain of every queue, each item checked: its payload names its queue and its place, so
   a lost, duplicated, corrupt or out-of-order item is counted.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, data, sync, pin):
        self.port = free_port()
        command = [binary, "--listen", f"127.0.0.1:{self.port}", "--data", data,
                   "--sync", sync, "--log-level", "warn"]
        if pin:
            command = ["taskset", "-c", "0"] + command
        self.process = subprocess.Popen(command)
        for _ in range(500):
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port))
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the server did not start")

    def rss_mib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def roundtrip(self, request, replies, token):
        """Sends `request`, reads until `replies` occurrences of `token` came back."""
        self.sock.sendall(request)
        got = bytearray()
        while got.count(token) < replies:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            got += chunk
        return bytes(got)

    def stop(self):
        self.sock.close()
        self.process.terminate()
        self.process.wait()


def payload(queue, index, size):
    head = b"%d:%d:" % (queue, index)
    return head + b"x" * (size - len(head))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default="target/release/tern")
    parser.add_argument("--queues", type=int, default=2000)
    parser.add_argument("--items", type=int, default=400, help="items per queue")
    parser.add_argument("--size", type=int, default=128, help="payload bytes")
    parser.add_argument("--sync", default="never")
    parser.add_argument("--settle", type=float, default=12)
    parser.add_argument("--idle", type=float, default=25)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    pin = not args.no_pin and shutil.which("taskset") and os.cpu_count() == 2
    if pin:
        os.sched_setaffinity(0, {1})
    data = tempfile.mkdtemp(prefix="tern-breadth-")
    queues, items, size = args.queues, args.items, args.size
    report = []
    try:
        server = Server(args.binary, data, args.sync, pin)
        began = time.time()
        for index in range(items):
            request = b"".join(b"set q%d 0 0 %d\r\n%s\r\n" % (q, size, payload(q, index, size))
                               for q in range(queues))
            server.roundtrip(request, queues, b"STORED\r\n")
        report.append(("filled (%d sets in %.1f s)" % (queues * items, time.time() - began),
                       server.rss_mib()))
        time.sleep(args.settle)
        report.append(("%g s later" % args.settle, server.rss_mib()))
        server.stop()
        server = Server(args.binary, data, args.sync, pin)
        report.append(("restarted", server.rss_mib()))
        server.roundtrip(b"stats\r\n", 1, b"END\r\n")
        report.append(("after stats", server.rss_mib()))
        gets = b"".join(b"get q%d\r\n" % q for q in range(queues))
        checks = {"lost": 0, "corrupt": 0, "out of order": 0}
        def take_round(index):
            reply = server.roundtrip(gets, queues, b"END\r\n")
            values = reply.split(b"VALUE ")[1:]
            checks["lost"] += queues - len(values)
            for q, value in enumerate(values):
                data_start = value.index(b"\r\n") + 2
                got = value[data_start:data_start + size]
                if got != payload(q, index, size):
                    key = "out of order" if got.startswith(b"%d:" % q) else "corrupt"
                    checks[key] += 1
        for index in range(3):
            take_round(index)
        report.append(("after 3 gets of every queue", server.rss_mib()))
        time.sleep(args.idle)
        report.append(("%g s idle" % args.idle, server.rss_mib()))
        for index in range(3, items):
            take_round(index)
        report.append(("drained", server.rss_mib()))
        server.roundtrip(gets, queues, b"END\r\n")
        server.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    print("breadth: %d queues x %d items of %d B, --sync %s, binary %s"
          % (queues, items, size, args.sync, args.binary))
    for what, rss in report:
        print("  %-40s RSS %7.1f MiB" % (what, rss))
    print("  every item read back: %s" % ", ".join("%d %s" % (n, k) for k, n in checks.items()))
    return 0 if not any(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
