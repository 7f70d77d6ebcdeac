"""A live tern checked by real Prometheus tooling (run by .ci/run; Debian's `prometheus` package):

1. `promtool check metrics` accepts a scrape of its --metrics address;
2. a real Prometheus server, scraping it every second, answers a query for a queue's depth
   through its HTTP API with the depth the test set up.

Usage: python3 scrape_check.py MEMCACHE_HOST:PORT METRICS_HOST:PORT
Every wait is for a condition, bounded by a safety net; the Prometheus server is stopped at exit.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SAFETY_NET_S = 120
QUEUE = "prometheus_check"
DEPTH = 7


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.status, reply.read().decode()


def wait_for(what, condition):
    deadline = time.monotonic() + SAFETY_NET_S
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            sys.exit(f"waited {SAFETY_NET_S} s for {what}")
        time.sleep(0.2)


def fill_queue(memcache):
    """Empties QUEUE, then stores DEPTH items in it."""
    with socket.create_connection(memcache) as conn:
        lines = [f"flush {QUEUE}\r\n"] + [f"set {QUEUE} 0 0 1\r\nx\r\n"] * DEPTH
        conn.sendall("".join(lines).encode())
        want = b"END\r\n" + b"STORED\r\n" * DEPTH
        got = b""
        while len(got) < len(want):
            chunk = conn.recv(4096)
            if not chunk:
                break
            got += chunk
        assert got == want, got


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    memcache, metrics = addr(sys.argv[1]), sys.argv[2]
    fill_queue(memcache)

    status, scrape = fetch(f"http://{metrics}/metrics")
    assert status == 200, status
    check = subprocess.run(["promtool", "check", "metrics"], input=scrape, text=True,
                           capture_output=True)
    if check.returncode != 0:
        sys.exit(f"promtool check metrics failed ({check.returncode}):\n"
                 f"{check.stdout}{check.stderr}\n--- scrape ---\n{scrape}")
    print("promtool check metrics: ok")

    work = tempfile.mkdtemp(prefix="tern-prometheus-")
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n"
                "scrape_configs:\n  - job_name: tern\n"
                f"    static_configs:\n      - targets: ['{metrics}']\n")
    port = free_port()
    log = open(os.path.join(work, "prometheus.log"), "w")
    server = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={work}/data",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        query = urllib.parse.quote(f'tern_queue_items{{queue="{QUEUE}"}}')
        url = f"http://127.0.0.1:{port}/api/v1/query?query={query}"

        def depth():
            if server.poll() is not None:
                sys.exit(f"prometheus exited with {server.returncode}; see {work}/prometheus.log")
            try:
                _, body = fetch(url)
            except OSError:
                return None
            result = json.loads(body)["data"]["result"]
            return result[0]["value"][1] if result else None

        got = wait_for(f"Prometheus to report the depth of {QUEUE}", depth)
        assert got == str(DEPTH), f"Prometheus says {QUEUE} holds {got}, expected {DEPTH}"
        print(f"Prometheus server scraped tern: tern_queue_items{{queue=\"{QUEUE}\"}} = {got}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    main()
