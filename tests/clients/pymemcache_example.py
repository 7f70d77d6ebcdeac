"""tern with a stock pymemcache client: producer, reliable consumer, admin commands.

Run against a live server:  python3 tests/clients/pymemcache_example.py 127.0.0.1:22133
Exits non-zero (with a message) if tern does not answer as SPEC.md says.
"""
import sys

from pymemcache.client.base import Client

host, port = sys.argv[1].rsplit(":", 1) if len(sys.argv) > 1 else ("127.0.0.1", "22133")
client = Client((host, int(port)), connect_timeout=5, timeout=5)


def check(what, got, expected):
    if got != expected:
        sys.exit(f"FAIL {what}: got {got!r}, expected {expected!r}")
    print(f"ok   {what}: {got!r}")


check("version", client.version().startswith(b"1.6.0 tern-"), True)
check("flush_all", client.flush_all(noreply=False), True)

# Producer: set appends to the tail of queue `work`.
check("set", client.set("work", b"hello", noreply=False), True)
check("set", client.set("work", b"world", noreply=False), True)

# Plain consumer: get removes the head item.
check("get", client.get("work"), b"hello")

# Reliable consumer: open, then close to confirm.
check("get work/open", client.get("work/open"), b"world")
check("get work/close", client.get("work/close"), None)
check("get (empty)", client.get("work"), None)

# Flags round-trip, so serde-style clients keep their types.
client.set("typed", b"42", flags=5, noreply=False)
check("raw get with flags", client.raw_command(b"get typed", b"END\r\n"), b"VALUE typed 5 2\r\n42\r\n")

stats = client.stats()
check("stats curr_connections", stats[b"curr_connections"] >= 1, True)
check("stats has queue_work_items", b"queue_work_items" in stats, True)

check("delete existing", client.delete("work", noreply=False), True)
check("delete missing", client.delete("work", noreply=False), False)
client.close()
print("pymemcache example: all ok")
