<?php
// tern with PHP's `memcached` extension (libmemcached-based).
//
// Producer, reliable consumer (/open + /close, /abort), cursor consumer and fanout, as in the
// README, then a multi-get, delete, getVersion(), getStats() and flush().
//
// Run against a live server:  php tests/clients/php_memcached_example.php 127.0.0.1:22133
// Exits non-zero (with a message) on the first reply that is not what SPEC.md says.
//
// Known to break before tern 0.2: libmemcached refuses a `VERSION` whose first token is not a
// number 1-255, so getVersion() and getStats() returned false against `VERSION tern-0.1.0`.
// libmemcached's stats keep only memcached's own stat names: the `queue_<q>_...` figures do not
// reach getStats().

[$host, $port] = explode(':', $argv[1] ?? '127.0.0.1:22133');
$server = "$host:$port";

// One Memcached object is one connection per server: give each worker its own (no persistent_id
// shared between workers), so that its /open and /close go over the same connection.
$tern = new Memcached();
$tern->addServer($host, (int) $port);

function check(string $what, $got, $expected): void
{
    if ($got !== $expected) {
        fwrite(STDERR, "FAIL $what: got " . var_export($got, true) . ', expected ' . var_export($expected, true) . "\n");
        exit(1);
    }
    echo "ok   $what: " . var_export($got, true) . "\n";
}

// get that tells a miss (null) from a failure (exit).
function take(Memcached $tern, string $key)
{
    $value = $tern->get($key);
    if ($value === false) {
        $code = $tern->getResultCode();
        if ($code === Memcached::RES_NOTFOUND) {
            return null;
        }
        fwrite(STDERR, "FAIL get $key: " . $tern->getResultMessage() . "\n");
        exit(1);
    }
    return $value;
}

check('flush', $tern->flush(), true);

// Producer: each set appends to the tail of a queue; true means STORED, on disk.
check('set jobs', $tern->set('jobs', 'resize photo 1'), true);
check('set jobs', $tern->set('jobs', 'resize photo 2'), true);

// Fanout: one item into several queues at once, all or none.
check('set jobs+audit', $tern->set('jobs+audit', 'resize photo 3'), true);

// Cursor consumer: reads the queue without taking anything; "billing" keeps its own place.
check('get jobs.billing', take($tern, 'jobs.billing'), 'resize photo 1');
check('get jobs.billing', take($tern, 'jobs.billing'), 'resize photo 2');

// Reliable consumer: open, work, close; abort gives the item back to the head of the queue.
check('get jobs/open', take($tern, 'jobs/open'), 'resize photo 1');
check('get jobs/close', take($tern, 'jobs/close'), null);
check('get jobs/open', take($tern, 'jobs/open'), 'resize photo 2');
check('get jobs/abort', take($tern, 'jobs/abort'), null);
check('get jobs', take($tern, 'jobs'), 'resize photo 2');

// Blocking read: wait up to 500 ms (well below libmemcached's 5 s poll timeout).
check('get audit/t=500', take($tern, 'audit/t=500'), 'resize photo 3');

// Flags round-trip, so the extension gets back the type it stored.
check('set typed (int)', $tern->set('typed', 42), true);
check('get typed', take($tern, 'typed'), 42);

// Multi-get: one `get a empty b`; the empty queue is absent from the result.
$tern->set('a', 'first');
$tern->set('b', 'second');
check('getMulti', $tern->getMulti(['a', 'empty', 'b']), ['a' => 'first', 'b' => 'second']);

// Version and stats (false before tern 0.2, see above).
$versions = $tern->getVersion();
check('getVersion: memcached protocol level', is_array($versions) ? ($versions[$server] ?? null) : $tern->getResultMessage(), '1.6.0');
$stats = $tern->getStats();
check('getStats', is_array($stats) ? array_keys($stats) : $tern->getResultMessage(), [$server]);
check('getStats: version', strpos((string) ($stats[$server]['version'] ?? ''), 'tern-'), 0);
check('getStats: cmd_set', ($stats[$server]['cmd_set'] ?? 0) >= 6, true);

// Delete: true, then false (NOT_FOUND) once the queue is gone.
check('delete jobs.billing (cursor)', $tern->delete('jobs.billing'), true);
check('delete jobs', $tern->delete('jobs'), true);
check('delete jobs (gone)', $tern->delete('jobs'), false);
check('delete jobs (gone): NOT_FOUND', $tern->getResultCode(), Memcached::RES_NOTFOUND);

echo 'php memcached ' . phpversion('memcached') . ' (libmemcached ' . Memcached::LIBMEMCACHED_VERSION_HEX . ") example: all ok\n";
