"""tern with a libmemcached-based client: pylibmc.

Producer, reliable consumer (/open + /close, /abort), cursor consumer and fanout, as in the
README, then a multi-get, delete, stats and flush_all.

Run against a live server:  python3 tests/clients/pylibmc_example.py 127.0.0.1:22133
Exits non-zero (with a message) on the first reply that is not what SPEC.md says.

Known limits: libmemcached's stats call keeps only memcached's own stat names, so the
`queue_<q>_…` figures of `stats` do not reach `get_stats()` (read them with a raw `stats`);
pylibmc has no call for `version`.
"""
import sys

import pylibmc

address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:22133"
# One pylibmc.Client is one connection per server: give each worker its own (a Client is not
# thread-safe anyway), so that its /open and /close go over the same connection.
tern = pylibmc.Client([address], binary=False, behaviors={"tcp_nodelay": True})


def check(what, got, expected):
    if got != expected:
        sys.exit(f"FAIL {what}: got {got!r}, expected {expected!r}")
    print(f"ok   {what}: {got!r}")


check("flush_all", tern.flush_all(), True)

# Producer: each set appends to the tail of a queue; True means STORED, on disk.
check("set jobs", tern.set("jobs", b"resize photo 1"), True)
check("set jobs", tern.set("jobs", b"resize photo 2"), True)

# Fanout: one item into several queues at once, all or none.
check("set jobs+audit", tern.set("jobs+audit", b"resize photo 3"), True)

# Cursor consumer: reads the queue without taking anything; "billing" keeps its own place.
check("get jobs.billing", tern.get("jobs.billing"), b"resize photo 1")
check("get jobs.billing", tern.get("jobs.billing"), b"resize photo 2")

# Reliable consumer: open, work, close; abort gives the item back to the head of the queue.
check("get jobs/open", tern.get("jobs/open"), b"resize photo 1")
check("get jobs/close", tern.get("jobs/close"), None)
check("get jobs/open", tern.get("jobs/open"), b"resize photo 2")
check("get jobs/abort", tern.get("jobs/abort"), None)
check("get jobs", tern.get("jobs"), b"resize photo 2")

# Blocking read: wait up to 500 ms for an item (well below libmemcached's 5 s poll timeout).
check("get audit/t=500", tern.get("audit/t=500"), b"resize photo 3")
check("get audit/t=100 (nothing came)", tern.get("audit/t=100"), None)

# Flags round-trip, so pylibmc gets back the type it stored.
check("set typed (int)", tern.set("typed", 42), True)
check("get typed", tern.get("typed"), 42)

# Multi-get: one `get a b c`; the empty queue is simply absent from the result.
for queue, item in (("a", b"first"), ("b", b"second")):
    tern.set(queue, item)
check("get_multi", tern.get_multi(["a", "empty", "b"]), {"a": b"first", "b": b"second"})

# Stats: libmemcached parses the reply, and tern's version comes through.
stats = tern.get_stats()
check("get_stats: one server", len(stats), 1)
server, figures = stats[0]
check("get_stats: server", server.decode().startswith(address), True)
check("get_stats: version", figures["version"].startswith(b"tern-"), True)
check("get_stats: cmd_set", int(figures["cmd_set"]) >= 6, True)

# Delete: True, then a NOT_FOUND is False.
check("delete jobs.billing (cursor)", tern.delete("jobs.billing"), True)
check("delete jobs", tern.delete("jobs"), True)
check("delete jobs (gone)", tern.delete("jobs"), False)
tern.disconnect_all()
print(f"pylibmc {pylibmc.__version__} (libmemcached {pylibmc.libmemcached_version}) example: all ok")
