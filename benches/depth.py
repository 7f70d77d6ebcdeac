#!/usr/bin/env python3
"""Memory, disk and start-up time versus queue depth: the measuring tool for issue 12's
targets 5 (RSS), 6 (start-up), 7 (disk after a drain) and 9 (many queues).

    cargo build --release
    python3 benches/depth.py                       # everything, full size (4 GiB + 1 GiB of payload)
    python3 benches/depth.py --only 6 --items 262144 --small-items 0   # one target, smaller

Python 3, standard library only. Every scenario gets a fresh temporary data directory and a
server started as `tern --listen 127.0.0.1:<free port> --data <dir> [--sync never]
--log-level warn`, pinned to CPU 0 with `taskset -c 0` while this script pins itself (and the
processes it forks) to CPU 1, when `taskset` exists and there are two CPUs (`--no-pin` turns it
off). RSS is VmRSS from /proc/<pid>/status; the data directory's size is the sum of its files'
sizes, and it is judged by the larger of that and their allocated blocks (`du`).

Scenarios (`--only 5,6,7,9` chooses the targets; a scenario runs when a chosen target uses it):

(a) deep queue, targets 5, 6 and 7: one queue `q` filled with `--items` items of `--item-size`
    bytes (default 4 Mi x 1 KiB = 4 GiB), `--sync never`, pipelined `--batch` deep; RSS and
    directory at 1/16, 1/4 and all of the fill (the table this script always printed), and RSS
    again after `--fill-settle` seconds idle (the figure judged against target 5). Then:
    graceful stop (SIGTERM, wait for exit) and the first start after the fill; `kill -9` of
    that restarted, idle server and a start; a graceful restart again (so the drain runs on a
    server started as usual, as it always did here). Each start is timed from
    spawning the process to the first served item (connect in a loop, then `get q` until it
    returns a VALUE), and RSS is read once that item is served and `--settle` seconds later
    (the RSS figure). Then a full drain, `get q` pipelined `--batch` deep, RSS sampled every
    50 ms by a thread (the peak is target 5's drain figure). Then the directory size every
    second for `--watch` seconds. Target 7's latency: the drain's server runs with `--metrics`
    and its own timing of every `get` (the `tern_command_duration_seconds` histogram, scraped
    before the drain and after the watch) counts those that took longer than 10 ms (its bound
    of 10.24 ms); beside it, a second process (`--sampler-cpu`) sends one timed `get q` every
    10 ms on its own connection through the drain and the watch (its figures include its own
    wake-up and the server's on CPUs the drain keeps busy).
(a') unless `--no-kill-after-fill`: the same fill in a fresh directory, `--kill-delay` seconds
    of rest, `kill -9`, then a timed start (the worst case for recovery), RSS, and a verified
    drain with RSS sampled.
(b) target 5: the same as (a) and (a') with `--small-items` items of `--small-size` bytes
    (default 8 Mi x 128 B), without the latency sampler and the directory watch.
(t) target 5, trickle: `--trickle-items` items of `--trickle-size` bytes (default 1 Mi x 128 B),
    one connection, one `set` at a time (waiting for STORED), at the server's default sync
    (`always`); RSS after, then a verified drain.
(m) target 9: `--queues` queues (default 10 000) holding one `--queue-item-size`-byte item each
    (default sync); RSS and directory after the fill and after a graceful restart, then every
    queue read back; then `--queue-rounds` times filled and drained again (RSS after each).

Every item carries its sequence number (`%015d:` then filler that depends on it); each drain
checks every item against the bytes it was written with, that each connection sees them in
order, and counts lost (never read), duplicated (read twice: allowed after a `kill -9`, since a
removal is at-least-once), corrupt and out-of-order items. The exit status is 1 if any item was
lost, corrupt or out of order.

Prints Markdown tables, each figure beside its target; progress goes to standard error.
Full size needs about 11 GB of free disk in the temporary directory (`--tmp`).
"""
import argparse
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

MIB = 1024 * 1024
KIB = 1024

# issue 12's targets
T5_RSS = 32 * MIB          # after a fill and after restarts
T5_DRAIN_RSS = 48 * MIB    # peak during a full drain
T6_GRACEFUL = 0.5          # s, start-up to the first served item after a graceful stop
T6_KILL = 1.0              # s, the same after kill -9
T7_DISK = 64 * MIB         # data directory after draining (a)
T7_GET = 0.010             # s, no get waits longer during the drain and the reclaim after it
T9_RSS = 32 * MIB
T9_DISK = 64 * MIB

HEAD = 16  # b"%015d:"
LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_fills = {}


def payload(seq, size):
    """The bytes of item `seq`: its number, then filler that depends on it."""
    fill = _fills.get(size)
    if fill is None:
        rest = max(size - HEAD, 0)
        line = LETTERS * (rest // len(LETTERS) + 2)
        fill = _fills[size] = [line[k:k + rest] for k in range(len(LETTERS))]
    return b"%015d:" % seq + fill[seq % len(LETTERS)]


def log(*parts):
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def stolen_seconds(cpu):
    """Time the hypervisor ran something else while CPU `cpu` had work (steal, /proc/stat)."""
    with open("/proc/stat") as stat:
        for line in stat:
            fields = line.split()
            if fields[0] == f"cpu{cpu}":
                return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def cpu_seconds(pid):
    """User plus system CPU time the process has used, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_parts(pid):
    """RssAnon / RssFile, for the log."""
    parts = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("RssAnon:", "RssFile:")):
                    parts[line.split(":")[0]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return f"anon {mib(parts.get('RssAnon'))}, file {mib(parts.get('RssFile'))}"


def disk(path):
    """(apparent size, allocated bytes) of every file under path."""
    size = blocks = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            size += st.st_size
            blocks += st.st_blocks * 512
    return size, blocks


def disk_judged(path):
    return max(disk(path))


def mib(n):
    if n is None:
        return "n/a"
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n / KIB:.0f} KiB"


def size_str(pair):
    apparent, allocated = pair
    if abs(apparent - allocated) <= max(apparent, allocated) * 0.1:
        return mib(apparent)
    return f"{mib(apparent)} (du {mib(allocated)})"


def secs(s):
    return "n/a" if s is None else f"{s:.3f} s"


def verdict(value, target):
    if value is None:
        return "not measured"
    return "met" if value <= target else f"**missed** ({value / target:.2f}x)"


class Peak(threading.Thread):
    """Samples a process's RSS every `every` seconds until stopped; keeps the maximum."""

    def __init__(self, pid, every=0.05):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.samples = pid, every, 0, 0
        self.done = threading.Event()
        self.start()

    def run(self):
        while True:
            value = rss(self.pid)
            self.peak = max(self.peak, value)
            self.samples += 1
            if self.done.wait(self.every):
                return

    def stop(self):
        self.done.set()
        self.join()
        self.peak = max(self.peak, rss(self.pid))
        return self.peak


class Client:
    def __init__(self, port, sock=None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb", buffering=1 << 16)

    def close(self):
        self.file.close()
        self.sock.close()

    def reply(self):
        """One get reply: the payload, or None for an empty queue."""
        line = self.file.readline()
        if line.startswith(b"VALUE "):
            n = int(line.split()[3])
            data = self.file.read(n + 2)
            if len(data) != n + 2 or data[-2:] != b"\r\n":
                raise SystemExit(f"bad data block after {line!r}")
            end = self.file.readline()
            if end != b"END\r\n":
                raise SystemExit(f"expected END, got {end!r}")
            return data[:-2]
        if line == b"END\r\n":
            return None
        raise SystemExit(f"get failed: {line!r}")

    def stored(self, n):
        for _ in range(n):
            line = self.file.readline()
            if line != b"STORED\r\n":
                raise SystemExit(f"set failed: {line!r}")

    def fill(self, queue, first, count, size, batch):
        """Pipelined sets of items first .. first+count-1."""
        q = queue.encode()
        done = 0
        while done < count:
            n = min(batch, count - done)
            parts = []
            for seq in range(first + done, first + done + n):
                parts.append(b"set %s 0 0 %d\r\n%s\r\n" % (q, size, payload(seq, size)))
            self.sock.sendall(b"".join(parts))
            self.stored(n)
            done += n

    def drain(self, queue, check, stream, batch):
        """Pipelined `get queue` until a whole batch comes back empty; returns items read."""
        request = b"get %s\r\n" % queue.encode() * batch
        taken = 0
        while True:
            self.sock.sendall(request)
            got = 0
            for _ in range(batch):
                data = self.reply()
                if data is not None:
                    check.item(stream, data)
                    got += 1
            taken += got
            if got == 0:
                return taken


class Check:
    """Every item read back once, in order, with the bytes it was written with."""

    def __init__(self, count, size):
        self.count, self.size = count, size
        self.seen = bytearray(count)
        self.last = {}
        self.duplicated = self.corrupt = self.out_of_order = 0

    def item(self, stream, data):
        try:
            seq = int(data[:HEAD - 1])
        except ValueError:
            seq = -1
        if not 0 <= seq < self.count or data != payload(seq, self.size):
            self.corrupt += 1
            return
        if self.seen[seq]:
            self.duplicated += 1
        else:
            self.seen[seq] = 1
        if self.last.get(stream, -1) >= seq:
            self.out_of_order += 1
        self.last[stream] = seq

    @property
    def read(self):
        return self.count - self.seen.count(0)

    @property
    def lost(self):
        return self.seen.count(0)

    def bad(self):
        return self.lost or self.corrupt or self.out_of_order

    def summary(self):
        return (f"{self.read}/{self.count} read, lost {self.lost}, duplicated {self.duplicated}, "
                f"corrupt {self.corrupt}, out of order {self.out_of_order}")


RUNNING = []  # every Server, so that an interrupted run leaves no tern behind


class Server:
    def __init__(self, args, data, sync):
        self.args, self.data, self.sync = args, data, sync
        self.port = free_port()
        self.metrics = None   # a port for `--metrics`, when set
        self.proc = None
        RUNNING.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def start(self, probe=None, check=None, stream=None):
        """Spawn tern; returns (seconds to accept a connection, seconds to the first item
        `get probe` returns or None without a probe, RSS once served, peak RSS meanwhile).
        The probe's item goes to `check`."""
        command = [self.args.binary, "--listen", f"127.0.0.1:{self.port}", "--data", self.data,
                   "--log-level", "warn"]
        if self.sync:
            command += ["--sync", self.sync]
        if self.metrics:
            command += ["--metrics", f"127.0.0.1:{self.metrics}"]
        if self.args.pin:
            command = ["taskset", "-c", "0"] + command
        began = time.perf_counter()
        self.proc = subprocess.Popen(command)
        peak = Peak(self.proc.pid, 0.01)
        deadline = began + self.args.start_timeout
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.args.start_timeout)
                sock.settimeout(None)
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"tern exited at start-up with status {self.proc.returncode}")
                if time.perf_counter() > deadline:
                    raise SystemExit("tern did not accept a connection in time")
                time.sleep(0.002)
        accepted = time.perf_counter() - began
        served = None
        client = Client(self.port, sock)
        if probe:
            request = b"get %s\r\n" % probe.encode()
            while True:
                client.sock.sendall(request)
                data = client.reply()
                if data is not None:
                    served = time.perf_counter() - began
                    check.item(stream, data)
                    break
                if time.perf_counter() > deadline:
                    log(f"no item from `get {probe}` within {self.args.start_timeout} s")
                    break
                time.sleep(0.001)
        client.close()
        return accepted, served, rss(self.pid), peak.stop()

    def stop(self):
        """SIGTERM, wait for the exit; returns the seconds it took."""
        began = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=self.args.stop_timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise SystemExit("tern did not stop after SIGTERM")
        if status != 0:
            raise SystemExit(f"tern exited with status {status} after SIGTERM")
        return time.perf_counter() - began

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def get_histogram(port):
    """The server's own timing of every `get` it served (`tern_command_duration_seconds`,
    command "get": from the command's start until its reply is ready), scraped from
    `--metrics`: {upper bound in seconds: cumulative count}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    buckets = {}
    for line in text.splitlines():
        if line.startswith("tern_command_duration_seconds_bucket{") and 'command="get"' in line:
            bound = line.split('le="')[1].split('"')[0]
            buckets[float(bound)] = int(float(line.rsplit(" ", 1)[1]))
    return buckets


def histogram_delta(before, after):
    """Gets served between two scrapes: (count, the smallest bound that holds all of them,
    how many took longer than T7_GET's nearest bound at or above it, that bound)."""
    delta = {bound: after[bound] - before.get(bound, 0) for bound in after}
    count = delta.get(float("inf"), 0)
    longest = min((b for b, n in delta.items() if n == count), default=None)
    judged = min(b for b in delta if b >= T7_GET)
    return count, longest, count - delta[judged], judged


def latency_sampler(port, queue, every, stop, conn, cpu):
    """Child process: one timed `get queue` every `every` seconds on its own connection until
    `stop` is set; sends back [(when sent, seconds, payload or None)]."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    client = Client(port)
    request = b"get %s\r\n" % queue.encode()
    out = []
    next_at = time.perf_counter()
    while not stop.is_set():
        began = time.perf_counter()
        client.sock.sendall(request)
        data = client.reply()
        out.append((began, time.perf_counter() - began, data))
        next_at += every
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.perf_counter()
    client.close()
    conn.send(out)
    conn.close()


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


class Bench:
    def __init__(self, args):
        self.args = args
        self.dirs = []
        self.failed = False
        self.depth_rows = []     # the table depth.py always printed, for (a)
        self.t5 = []             # (case, state, RSS, peak, target)
        self.t6 = []             # (case, start, accept, first item, target)
        self.t7 = {}
        self.t9 = []
        self.checks = []         # (scenario, Check, note)
        self.fills = []          # (scenario, items, size, seconds, drain seconds, drain CPU seconds)

    def fresh(self, name):
        d = tempfile.mkdtemp(prefix=f"tern-depth-{name}-", dir=self.args.tmp)
        self.dirs.append(d)
        return d

    def done_with(self, d):
        if not self.args.keep:
            shutil.rmtree(d, ignore_errors=True)

    def restart_row(self, case, server, state, how, check, target):
        if how == "kill":
            server.kill()
            stopped = None
        else:
            stopped = server.stop()
        accepted, served, served_rss, peak = server.start("q", check, f"{state}")
        time.sleep(self.args.settle)
        settled = rss(server.pid)
        log(f"{case}: {state}: stop {secs(stopped)}, accept {secs(accepted)}, first item {secs(served)}, "
            f"RSS {mib(served_rss)} when served, {mib(settled)} after {self.args.settle} s ({rss_parts(server.pid)}), "
            f"peak {mib(peak)}")
        self.t5.append((case, state, settled, max(peak, settled)))
        self.t6.append((case, state, accepted, served, target,
                        f"graceful stop took {secs(stopped)}" if stopped is not None else ""))
        return settled, served

    def deep(self, case, count, size, t7):
        """Scenario (a) or (b): fill, restarts, drain."""
        args = self.args
        data = self.fresh(case)
        server = Server(args, data, "never")
        server.start()
        client = Client(server.port)
        empty = disk(data)
        if t7:
            self.depth_rows.append(("empty", "0", mib(rss(server.pid)), size_str(empty), ""))
        steps = sorted({s for s in (count // 16, count // 4, count) if s > 0})
        filled = 0
        began_all = time.perf_counter()
        peak = Peak(server.pid)
        for step in steps:
            began = time.perf_counter()
            client.fill("q", filled, step - filled, size, args.batch)
            took = time.perf_counter() - began
            filled = step
            r, d = rss(server.pid), disk(data)
            log(f"{case}: filled {filled} x {size} B in {took:.1f} s: RSS {mib(r)}, directory {size_str(d)}")
            if t7:
                self.depth_rows.append((f"filled {mib(filled * size)}", f"{filled}", mib(r), size_str(d),
                                        f"fill {took:.1f} s"))
        fill_time = time.perf_counter() - began_all
        fill_peak = peak.stop()
        after_fill = rss(server.pid)
        # Right after the last STORED, the write buffers (up to 4 MiB of items waiting to be
        # written, the commit's block) are still full: shown, not judged. Judged: the idle server
        # once they are written out and its idle release ran.
        self.t5.append((case, f"right after the fill ({count} x {size} B, {count / fill_time:.0f} items/s; "
                              f"peak during the fill {mib(fill_peak)})", after_fill, None))
        time.sleep(args.fill_settle)
        settled = rss(server.pid)
        self.t5.append((case, f"after the fill, + {args.fill_settle:g} s idle", settled, max(settled, fill_peak)))
        client.close()
        check = Check(count, size)
        first_rss, first_served = self.restart_row(case, server, "first start after the fill (graceful stop)",
                                                   "term", check, T6_GRACEFUL)
        if t7:
            self.depth_rows.append(("restarted", f"{count - 1}", mib(first_rss), size_str(disk(data)),
                                    f"first item served {secs(first_served)} after spawning"))
        self.restart_row(case, server, "kill -9 of the restarted, idle server", "kill", check, T6_KILL)
        if t7:
            # the drain's server times its gets (target 7); its HTTP listener costs a few KiB
            server.metrics = free_port()
        self.restart_row(case, server, "graceful restart after that", "term", check, T6_GRACEFUL)

        # the drain
        stop = sampler = parent = before = stolen = None
        if t7:
            before = get_histogram(server.metrics)
            stolen = stolen_seconds(0)
            ctx = multiprocessing.get_context("fork")
            stop = ctx.Event()
            parent, child = ctx.Pipe(duplex=False)
            sampler = ctx.Process(target=latency_sampler,
                                  args=(server.port, "q", 0.01, stop, child, args.sampler_cpu))
            sampler.start()
            child.close()
        peak = Peak(server.pid)
        client = Client(server.port)
        began, cpu_before = time.perf_counter(), cpu_seconds(server.pid)
        taken = client.drain("q", check, "drain", args.batch)
        drained_at = time.perf_counter()
        drain_time = drained_at - began
        drain_cpu = cpu_seconds(server.pid) - cpu_before
        drain_peak = peak.stop()
        after_drain = rss(server.pid)
        log(f"{case}: drained {taken} items in {drain_time:.1f} s (server CPU {drain_cpu:.2f} s): "
            f"peak RSS {mib(drain_peak)}, "
            f"RSS {mib(after_drain)}, {check.summary()}")
        self.t5.append((case, f"peak during the drain (pipelined {args.batch} deep, sampled every 50 ms, "
                              f"{peak.samples} samples)", None, drain_peak))
        self.t5.append((case, "right after the drain", after_drain, None))
        self.fills.append((case, count, size, fill_time, drain_time, drain_cpu))
        if t7:
            # the directory while the server reclaims, the sampler still timing its gets
            d0 = disk(data)
            self.depth_rows.append(("drained", "0", mib(after_drain), size_str(d0),
                                    f"drain of {taken} items {drain_time:.1f} s"))
            series = []
            dropped = 0.0 if max(d0) <= T7_DISK else None
            for second in range(1, args.watch + 1):
                time.sleep(max(0.0, drained_at + second - time.perf_counter()))
                d = disk(data)
                series.append((second, d, rss(server.pid)))
                if dropped is None and max(d) <= T7_DISK:
                    dropped = float(second)
                if second == 25:
                    self.depth_rows.append(("drained + 25 s", "0", mib(series[-1][2]), size_str(d),
                                            f"empty directory was {size_str(empty)}"))
            stop.set()
            samples = parent.recv()
            sampler.join()
            served = histogram_delta(before, get_histogram(server.metrics))
            stolen = stolen_seconds(0) - stolen
            for _, _, got in samples:
                if got is not None:
                    check.item("latency sampler", got)
            # anything left after both stopped (the sampler may have raced the last batch)
            taken += client.drain("q", check, "drain, after the sampler", args.batch)
            during = [s for at, s, _ in samples if at < drained_at]
            after = [s for at, s, _ in samples if at >= drained_at]
            self.t7 = dict(at0=d0, series=series, dropped=dropped, during=during, after=after, drain_time=drain_time,
                           served=served, stolen=stolen)
            log(f"{case}: directory {size_str(d0)} after the drain, {size_str(series[-1][1]) if series else 'n/a'} "
                f"after {args.watch} s; sampled get max {max(during, default=0) * 1000:.1f} ms during the "
                f"drain, {max(after, default=0) * 1000:.1f} ms after; server-side: {served}; CPU 0 stolen "
                f"{stolen:.2f} s")
        client.close()
        server.stop()
        self.checks.append((case, check, "restarts: graceful, kill -9 of an idle server, graceful"))
        self.failed |= bool(check.bad())
        self.done_with(data)

        if args.kill_after_fill:
            self.kill_after_fill(case + "'", count, size)

    def kill_after_fill(self, case, count, size):
        """Scenario (a') or (b'): fill, rest, kill -9, timed start, verified drain."""
        args = self.args
        data = self.fresh(case)
        server = Server(args, data, "never")
        server.start()
        client = Client(server.port)
        began = time.perf_counter()
        client.fill("q", 0, count, size, args.batch)
        log(f"{case}: filled {count} x {size} B in {time.perf_counter() - began:.1f} s, "
            f"RSS {mib(rss(server.pid))}; kill -9 in {args.kill_delay} s")
        client.close()
        time.sleep(args.kill_delay)
        check = Check(count, size)
        self.restart_row(case, server, f"first start after the fill (kill -9 {args.kill_delay:g} s after it)",
                         "kill", check, T6_KILL)
        peak = Peak(server.pid)
        client = Client(server.port)
        began = time.perf_counter()
        taken = client.drain("q", check, "drain", args.batch)
        drain_peak = peak.stop()
        client.close()
        log(f"{case}: drained {taken} items in {time.perf_counter() - began:.1f} s: peak RSS {mib(drain_peak)}, "
            f"{check.summary()}")
        self.t5.append((case, "peak during the drain after the kill -9", None, drain_peak))
        server.stop()
        self.checks.append((case, check, f"kill -9 {args.kill_delay:g} s after a --sync never fill"))
        self.failed |= bool(check.bad())
        self.done_with(data)

    def trickle(self):
        args = self.args
        count, size = args.trickle_items, args.trickle_size
        data = self.fresh("trickle")
        server = Server(args, data, None)  # the server's default: --sync always
        server.start()
        client = Client(server.port)
        q = b"q"
        peak = Peak(server.pid)
        began = time.perf_counter()
        for seq in range(count):
            client.sock.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (q, size, payload(seq, size)))
            client.stored(1)
        took = time.perf_counter() - began
        fill_peak = peak.stop()
        after = rss(server.pid)
        d = disk(data)
        log(f"trickle: {count} x {size} B one at a time in {took:.1f} s ({count / took:.0f}/s): "
            f"RSS {mib(after)}, peak {mib(fill_peak)}, directory {size_str(d)}")
        self.t5.append(("trickle", f"after {count} x {size} B, one connection, pipeline 1, default sync "
                                   f"({args.default_sync}, {count / took:.0f} items/s, directory {size_str(d)})", after, fill_peak))
        check = Check(count, size)
        client.drain("q", check, "drain", args.batch)
        client.close()
        server.stop()
        log(f"trickle: {check.summary()}")
        self.checks.append(("trickle", check, "default sync, no restart"))
        self.failed |= bool(check.bad())
        self.done_with(data)

    def many_queues(self):
        args = self.args
        count, size = args.queues, args.queue_item_size
        width = len(str(count - 1))
        names = [b"q%0*d" % (width, i) for i in range(count)]
        data = self.fresh("queues")
        server = Server(args, data, None)
        server.start()

        def fill_all():
            client = Client(server.port)
            for first in range(0, count, args.batch):
                part = range(first, min(count, first + args.batch))
                client.sock.sendall(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (names[i], size, payload(i, size))
                                             for i in part))
                client.stored(len(part))
            client.close()

        def drain_all(check):
            client = Client(server.port)
            for first in range(0, count, args.batch):
                part = range(first, min(count, first + args.batch))
                client.sock.sendall(b"".join(b"get %s\r\n" % names[i] for i in part))
                for i in part:
                    got = client.reply()
                    if got is not None:
                        check.item(i, got)
            client.close()

        began = time.perf_counter()
        fill_all()
        took = time.perf_counter() - began
        time.sleep(args.settle)
        r, d = rss(server.pid), disk(data)
        log(f"queues: {count} queues x 1 item of {size} B in {took:.1f} s: RSS {mib(r)}, directory {size_str(d)}")
        self.t9.append((f"after filling {count} queues (1 x {size} B each, {took:.1f} s), + {args.settle:g} s",
                        r, d))
        server.stop()
        accepted, _, _, peak = server.start()
        time.sleep(args.settle)
        r, d = rss(server.pid), disk(data)
        log(f"queues: restarted (accepting after {accepted:.3f} s): RSS {mib(r)}, peak {mib(peak)}, directory {size_str(d)}")
        self.t9.append((f"after a graceful restart (accepting after {accepted:.3f} s), + {args.settle:g} s", r, d))
        check = Check(count, size)
        drain_all(check)
        log(f"queues: {check.summary()}")
        self.checks.append(("queues", check, "one item per queue, graceful restart"))
        self.failed |= bool(check.bad())
        # The same queues filled and drained again: memory must not grow round by round.
        for round_ in range(1, args.queue_rounds + 1):
            fill_all()
            time.sleep(args.settle)
            filled = rss(server.pid)
            check = Check(count, size)
            drain_all(check)
            time.sleep(args.settle)
            drained, d = rss(server.pid), disk(data)
            log(f"queues: round {round_}: RSS {mib(filled)} filled, {mib(drained)} drained, {check.summary()}")
            self.t9.append((f"filled again (round {round_} of {args.queue_rounds}), + {args.settle:g} s",
                            filled, None))
            self.t9.append((f"drained again (round {round_}), + {args.settle:g} s", drained, d))
            self.checks.append((f"queues, round {round_}", check, "filled and drained again"))
            self.failed |= bool(check.bad())
        server.stop()
        self.done_with(data)

    def report(self, only):
        a = self.args
        out = []
        p = out.append
        if self.depth_rows:
            p(f"### Memory and disk versus depth, (a): {a.items} x {a.item_size} B, --sync never\n")
            p("| state | items | RSS | data directory | note |")
            p("|---|---|---|---|---|")
            for row in self.depth_rows:
                p("| " + " | ".join(row) + " |")
            p("")
        if 5 in only and self.t5:
            p(f"### Target 5: RSS (≤ {mib(T5_RSS)} after fills and restarts, ≤ {mib(T5_DRAIN_RSS)} during a drain)\n")
            p("| case | state | RSS | peak RSS in the phase | target | verdict |")
            p("|---|---|---|---|---|---|")
            for case, state, value, peak in self.t5:
                if peak is None:  # right after a fill or a drain: not one of the target's states
                    target, judged = "", "for information"
                elif value is None:  # during a drain
                    target, judged = f"≤ {mib(T5_DRAIN_RSS)}", verdict(peak, T5_DRAIN_RSS)
                else:
                    target, judged = f"≤ {mib(T5_RSS)}", verdict(value, T5_RSS)
                p(f"| {case} | {state} | {mib(value) if value is not None else ''} | "
                  f"{mib(peak) if peak is not None else ''} | {target} | {judged} |")
            p("")
        if 6 in only and self.t6:
            p(f"### Target 6: start-up with the deep queue, spawn to the first served item "
              f"(≤ {T6_GRACEFUL} s graceful, ≤ {T6_KILL} s kill -9)\n")
            p("| case | start | accepting a connection | first item served | target | verdict | note |")
            p("|---|---|---|---|---|---|---|")
            for case, state, accepted, served, target, note in self.t6:
                informational = not case.startswith("(a)")
                p(f"| {case} | {state} | {secs(accepted)} | {secs(served)} | "
                  f"{'(' if informational else ''}≤ {target} s{')' if informational else ''} | "
                  f"{verdict(served, target) if not informational else 'for information'} | {note} |")
            p("")
        if 7 in only and self.t7:
            t = self.t7
            at60 = t["series"][-1][1] if t["series"] else t["at0"]
            p(f"### Target 7: disk after draining (a), and get latency during the drain\n")
            p("| measure | value | target | verdict |")
            p("|---|---|---|---|")
            p(f"| data directory right after the drain | {size_str(t['at0'])} | ≤ {mib(T7_DISK)} | "
              f"{verdict(max(t['at0']), T7_DISK)} |")
            p(f"| seconds until the directory is ≤ {mib(T7_DISK)} (checked every second) | "
              f"{'not within %d s' % a.watch if t['dropped'] is None else '%.0f s' % t['dropped']} | | |")
            p(f"| data directory {len(t['series'])} s after the drain | {size_str(at60)} | ≤ {mib(T7_DISK)} | "
              f"{verdict(max(at60), T7_DISK)} |")
            count, longest, over, bound = t["served"]
            p(f"| `get`s the server served during the drain and the {a.watch} s after it, timed by the server "
              f"(its `tern_command_duration_seconds` histogram, start of the command to reply ready), "
              f"taking longer than {bound * 1000:g} ms (the histogram's bound nearest {T7_GET * 1000:g} ms) | "
              f"{over} of {count} (all within {longest * 1000:g} ms) | 0 | {'met' if over == 0 else '**missed**'} |")
            for name, lat in (("during the drain", t["during"]), (f"in the {a.watch} s after it", t["after"])):
                if lat:
                    p(f"| a single `get q` on a second connection, one every 10 ms, {name} "
                      f"({len(lat)} samples): longest, p50 / p99 | {max(lat) * 1000:.2f} ms, "
                      f"{percentile(lat, 0.5) * 1000:.2f} / {percentile(lat, 0.99) * 1000:.2f} ms | "
                      f"(≤ {T7_GET * 1000:g} ms) | {'for information' if max(lat) > T7_GET else 'met'} |")
            p(f"| time the hypervisor ran something else while CPU 0 (the server's) had work, over the "
              f"same span (steal, /proc/stat) | {t['stolen']:.2f} s | | |")
            p("")
            cpu = "the load's CPU" if a.sampler_cpu is None else f"CPU {a.sampler_cpu}"
            p(f"(The sampler is a process of its own on {cpu}; its latency includes its own wake-up and the "
              "server's, on CPUs that the drain keeps busy, so the server's own timing is what is judged.)")
            p("")
            p("Directory and RSS every 5 s after the drain: " + ", ".join(
                f"{s} s {mib(max(d))} / {mib(r)}" for s, d, r in t["series"] if s % 5 == 0 or s == 1))
            p("")
        if 9 in only and self.t9:
            p(f"### Target 9: {a.queues} queues, one item each (RSS ≤ {mib(T9_RSS)}, directory ≤ {mib(T9_DISK)})\n")
            p("| state | RSS | verdict | data directory | verdict |")
            p("|---|---|---|---|---|")
            for state, r, d in self.t9:
                disk_cells = "– | –" if d is None else f"{size_str(d)} | {verdict(max(d), T9_DISK)}"
                p(f"| {state} | {mib(r)} | {verdict(r, T9_RSS)} | {disk_cells} |")
            p("")
        if self.fills:
            p("Fill and drain rates: " + "; ".join(
                f"{case} {n} x {size} B filled at {n / f:.0f} items/s, drained at {n / dr:.0f} items/s "
                f"(the server's CPU over the drain {cpu:.2f} s)"
                for case, n, size, f, dr, cpu in self.fills))
            p("")
        if self.checks:
            p("### Correctness (every item read back, in order, with its bytes)\n")
            p("| case | items | read | lost | duplicated | corrupt | out of order | note |")
            p("|---|---|---|---|---|---|---|---|")
            for case, c, note in self.checks:
                p(f"| {case} | {c.count} | {c.read} | {c.lost} | {c.duplicated} | {c.corrupt} | "
                  f"{c.out_of_order} | {note} |")
            p("")
            p("(Duplicates are allowed after a kill -9: a removal is at-least-once.)")
        print("\n".join(out), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="target/release/tern")
    parser.add_argument("--only", default="5,6,7,9", help="targets to measure, e.g. 5,6,7,9 or 6")
    parser.add_argument("--items", type=int, default=4 * 1024 * 1024, help="(a): items in the deep queue")
    parser.add_argument("--item-size", type=int, default=1024, help="(a): bytes per item")
    parser.add_argument("--max-gib", type=float, help="(a): as before, --items = this many Mi")
    parser.add_argument("--small-items", type=int, default=8 * 1024 * 1024, help="(b): items; 0 skips (b)")
    parser.add_argument("--small-size", type=int, default=128)
    parser.add_argument("--trickle-items", type=int, default=1024 * 1024, help="0 skips the trickle")
    parser.add_argument("--trickle-size", type=int, default=128)
    parser.add_argument("--queues", type=int, default=10000, help="target 9's queue count")
    parser.add_argument("--queue-item-size", type=int, default=32)
    parser.add_argument("--queue-rounds", type=int, default=3,
                        help="target 9: times the queues are filled and drained again after the check")
    parser.add_argument("--no-kill-after-fill", dest="kill_after_fill", action="store_false",
                        help="skip (a') and (b'): a second fill killed with kill -9")
    parser.add_argument("--kill-delay", type=float, default=1.0,
                        help="seconds between the end of the fill and its kill -9 in (a') and (b')")
    parser.add_argument("--watch", type=int, default=60, help="seconds the directory is watched after the drain")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds after a start (or target 9's fill) before RSS is read")
    parser.add_argument("--fill-settle", type=float, default=12.0,
                        help="seconds idle after a deep fill before RSS is read again (the server "
                             "hands freed memory back after 10 s without requests)")
    parser.add_argument("--batch", type=int, default=256, help="pipeline depth of fills and drains")
    parser.add_argument("--sampler-cpu", type=int,
                        help="CPU of target 7's latency sampler (default: the load's, CPU 1 when pinned)")
    parser.add_argument("--start-timeout", type=float, default=300)
    parser.add_argument("--stop-timeout", type=float, default=300)
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no taskset / affinity")
    parser.add_argument("--tmp", help="where the data directories go (default: the system's temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args()
    if args.max_gib is not None:
        args.items = int(args.max_gib * 1024 * 1024)
    only = {int(x) for x in args.only.split(",") if x.strip()}
    if not only <= {5, 6, 7, 9}:
        parser.error("--only takes targets among 5, 6, 7, 9")
    for size in (args.item_size, args.small_size, args.trickle_size, args.queue_item_size):
        if size < HEAD:
            parser.error(f"item sizes must be at least {HEAD} bytes (the sequence number)")
    if not os.access(args.binary, os.X_OK):
        parser.error(f"{args.binary} is not an executable: build it with cargo build --release")
    if args.pin and not (shutil.which("taskset") and hasattr(os, "sched_setaffinity")
                         and {0, 1} <= os.sched_getaffinity(0)):
        log("no taskset or fewer than 2 CPUs: not pinning")
        args.pin = False
    if args.pin:
        os.sched_setaffinity(0, {1})

    helptext = subprocess.run([args.binary, "--help"], capture_output=True, text=True).stdout
    default_sync = "unknown"
    for line in helptext.splitlines():
        if "--sync" in line or (default_sync == "" and "[default:" in line):
            default_sync = line.split("[default: ")[1].split("]")[0] if "[default: " in line else ""
    args.default_sync = default_sync or "unknown"
    bench = Bench(args)
    log(f"binary {args.binary}, targets {sorted(only)}, pinned: {args.pin}, default sync: {args.default_sync}")
    try:
        if only & {5, 6, 7} and args.items > 0:
            bench.deep("(a)", args.items, args.item_size, t7=7 in only)
        if 5 in only and args.small_items > 0:
            bench.deep("(b)", args.small_items, args.small_size, t7=False)
        if 5 in only and args.trickle_items > 0:
            bench.trickle()
        if 9 in only and args.queues > 0:
            bench.many_queues()
    finally:
        for server in RUNNING:
            if server.proc and server.proc.poll() is None:
                server.kill()
        bench.report(only)
        if not args.keep:
            for d in bench.dirs:
                shutil.rmtree(d, ignore_errors=True)
    sys.exit(1 if bench.failed else 0)


if __name__ == "__main__":
    main()
