"""tern with a meta-protocol client: the Python `meta-memcache` package (ms / mg / md / mn).

Producer, reliable consumer (/open + /close, /abort), cursor consumer and fanout, as in the
README, then delete and a quiet multi-get ended by `mn`.

Run against a live server:  python3 tests/clients/meta_memcache_example.py 127.0.0.1:22133
Exits non-zero (with a message) on the first reply that is not what SPEC.md says.

Known to break: the package's high-level `get()` asks for memcached's `l` (last access) and `h`
(hit before) flags (`mg <key> f v t l h`), which tern does not know; so this example reads with
`meta_get` and explicit flags (`mg <key> f v`). Its `multi_get` sends plain `mg` lines (no `q`,
no `mn`), and its socket layer has no way to read an `MN` back: the quiet multi-get at the end is
done with a raw socket.
"""
import socket
import sys

from meta_memcache import (
    CacheClient,
    Key,
    Miss,
    RequestFlags,
    ServerAddress,
    Success,
    Value,
    connection_pool_factory_builder,
)

host, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:22133").rsplit(":", 1)
server = ServerAddress(host, int(port))

# One connection, never more: an open read belongs to the TCP connection that opened it, so a
# pool that could hand `/close` to another connection than `/open` would break reliable reads.
tern = CacheClient.cache_client_from_servers(
    [server],
    connection_pool_factory_builder(initial_pool_size=1, max_pool_size=1, recv_timeout=5),
)
pool = tern.router.pool_provider.get_pool(Key("jobs"))


def check(what, got, expected):
    if got != expected:
        sys.exit(f"FAIL {what}: got {got!r}, expected {expected!r}")
    print(f"ok   {what}: {got!r}")


VALUE = RequestFlags(return_value=True, return_client_flag=True)  # mg <key> f v


def take(key):
    """`mg <key> f v`: the item's bytes, or None on EN."""
    reply = tern.meta_get(Key(key), flags=VALUE)
    if isinstance(reply, Miss):
        return None
    if not isinstance(reply, Value):
        sys.exit(f"FAIL mg {key}: unexpected reply {reply!r}")
    return reply.value


def raw(command):
    """One raw command on the client's own connection, through the package's socket layer."""
    conn = pool.pop_connection()
    try:
        return conn.raw_cmd(command)
    finally:
        pool.release_connection(conn, error=False)


check("flush_all", raw(b"flush_all"), b"OK")

# Producer: each ms appends to the tail of a queue (ms jobs 14 T0 F16).
check("ms jobs", tern.set("jobs", b"resize photo 1", ttl=0), True)
check("ms jobs", tern.set("jobs", b"resize photo 2", ttl=0), True)

# Fanout: one item into several queues at once, all or none (ms jobs+audit).
check("ms jobs+audit", tern.set("jobs+audit", b"resize photo 3", ttl=0), True)

# Cursor consumer: reads the queue without taking anything; "billing" keeps its own place.
check("mg jobs.billing", take("jobs.billing"), b"resize photo 1")
check("mg jobs.billing", take("jobs.billing"), b"resize photo 2")

# Reliable consumer: open, work, close; abort gives the item back to the head of the queue.
check("mg jobs/open", take("jobs/open"), b"resize photo 1")
check("mg jobs/close", take("jobs/close"), None)
check("mg jobs/open", take("jobs/open"), b"resize photo 2")
check("mg jobs/abort", take("jobs/abort"), None)
check("mg jobs (plain take)", take("jobs"), b"resize photo 2")

# An mg without v never takes an item: it answers HD and the item stays at the head.
hd = tern.meta_get(Key("jobs"), flags=RequestFlags(return_size=True))
check("mg jobs s (no v) is HD, no value", (isinstance(hd, Success), isinstance(hd, Value)), (True, False))
check("mg jobs s (no v): size", hd.flags.size, len(b"resize photo 3"))
check("mg jobs/peek", take("jobs/peek"), b"resize photo 3")
check("mg jobs (still there)", take("jobs"), b"resize photo 3")
check("mg jobs (empty)", take("jobs"), None)

# Blocking read: wait up to 500 ms for an item.
check("mg audit/t=500", take("audit/t=500"), b"resize photo 3")

# A quiet ms (ms … q): the package follows it with mn and reads the MN back.
check("ms audit q", tern.set("audit", b"quiet", ttl=0, no_reply=True), True)
check("mg audit", take("audit"), b"quiet")

# Delete: HD, then NF once the queue is gone.
check("md jobs.billing (cursor)", tern.delete("jobs.billing"), True)
check("md audit", tern.delete("audit"), True)
check("md audit (gone)", tern.delete("audit"), False)

# Quiet multi-get ended by mn, on a raw socket (the package cannot express it): the EN of the
# empty queue is suppressed, the hits come back with their keys and opaques, then MN.
check("ms q1", tern.set("q1", b"one", ttl=0), True)
check("ms q2", tern.set("q2", b"two", ttl=0), True)
with socket.create_connection((host, int(port)), timeout=5) as s:
    s.sendall(b"mg q1 q v k O1\r\nmg empty q v k O2\r\nmg q2 q v k O3\r\nmn\r\n")
    expected = b"VA 3 kq1 O1\r\none\r\nVA 3 kq2 O3\r\ntwo\r\nMN\r\n"
    got = b""
    while not got.endswith(b"MN\r\n") and len(got) < 4 * len(expected):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    check("quiet multi-get + mn", got, expected)
check("mg q1 (taken)", take("q1"), None)

print("meta-memcache example: all ok")
