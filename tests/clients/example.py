# Producer, reliable consumer, cursor consumer and fanout, with the stock pymemcache client.
import sys
from pymemcache.client.base import Client

host, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:22133").rsplit(":", 1)
tern = Client((host, int(port)))

# Producer: each set appends to the tail of a queue; STORED means it is on disk.
tern.set("jobs", b"resize photo 1", noreply=False)
tern.set("jobs", b"resize photo 2", noreply=False)

# Fanout: one item into several queues at once, all or none.
tern.set("jobs+audit", b"resize photo 3", noreply=False)

# Cursor consumer: reads the queue without taking anything; "billing" keeps its own place.
assert tern.get("jobs.billing") == b"resize photo 1"
assert tern.get("jobs.billing") == b"resize photo 2"

# Reliable consumer: open, work, close. A consumer that dies before closing loses nothing:
# its item goes back to the head of the queue.
assert tern.get("jobs/open") == b"resize photo 1"
tern.get("jobs/close")
assert tern.get("jobs/open") == b"resize photo 2"
tern.get("jobs/abort")  # give it back: it is the next one served
assert tern.get("jobs") == b"resize photo 2"

# Blocking read: wait up to 500 ms for an item.
assert tern.get("audit/t=500") == b"resize photo 3"
print("python example: ok")
