#!/usr/bin/perl
# tern with Perl's Cache::Memcached.
#
# Producer, reliable consumer (/open + /close, /abort), cursor consumer and fanout, as in the
# README, then a multi-get, delete, stats() and flush_all.
#
# Run against a live server:  perl tests/clients/cache_memcached_example.pl 127.0.0.1:22133
# Exits non-zero (with a message) on the first reply that is not what SPEC.md says.
#
# Known to break before tern 0.2: stats() sends `stats malloc`, which tern 0.1 answered with a
# CLIENT_ERROR; the client waited for END or ERROR, gave up after its 1 s select timeout and
# dropped the connection, so the read that connection held open was served again.
# Its I/O timeout is 1 s: keep every /t= wait well below that.
use strict;
use warnings;
use Cache::Memcached;

my $address = $ARGV[0] // '127.0.0.1:22133';

# One Cache::Memcached object keeps one socket per server: give each worker process its own
# (and call disconnect_all after a fork), so that its /open and /close share a connection.
my $tern = Cache::Memcached->new({ servers => [$address] });

sub show { my ($v) = @_; return defined $v ? (ref $v ? join(',', map {"$_=$v->{$_}"} sort keys %$v) : "'$v'") : 'undef' }

sub check {
    my ($what, $got, $expected) = @_;
    if (show($got) ne show($expected)) {
        print STDERR "FAIL $what: got ", show($got), ", expected ", show($expected), "\n";
        exit 1;
    }
    print "ok   $what: ", show($got), "\n";
}

check('flush_all', $tern->flush_all, 1);

# Producer: each set appends to the tail of a queue; 1 means STORED, on disk.
check('set jobs', $tern->set('jobs', 'resize photo 1'), 1);
check('set jobs', $tern->set('jobs', 'resize photo 2'), 1);

# Fanout: one item into several queues at once, all or none.
check('set jobs+audit', $tern->set('jobs+audit', 'resize photo 3'), 1);

# Cursor consumer: reads the queue without taking anything; "billing" keeps its own place.
check('get jobs.billing', $tern->get('jobs.billing'), 'resize photo 1');
check('get jobs.billing', $tern->get('jobs.billing'), 'resize photo 2');

# Reliable consumer: open, work, close; abort gives the item back to the head of the queue.
check('get jobs/open', $tern->get('jobs/open'), 'resize photo 1');
check('get jobs/close', $tern->get('jobs/close'), undef);
check('get jobs/open', $tern->get('jobs/open'), 'resize photo 2');
check('get jobs/abort', $tern->get('jobs/abort'), undef);

# stats() while this connection holds an open read: the read must stay open and be closed
# for good (tern 0.1 stalled here, the client dropped the connection and the item came back).
check('get jobs/open', $tern->get('jobs/open'), 'resize photo 2');
my $stats = $tern->stats;
my $misc = $stats->{hosts}{$address}{misc} // {};
check('stats: version', ($misc->{version} // '') =~ /^tern-/ ? 1 : 0, 1);
check('stats: open transaction on jobs', $misc->{queue_jobs_open_transactions}, '1');
check('stats: total cmd_set', $stats->{total}{cmd_set} >= 3 ? 1 : 0, 1);
check('get jobs/close (same connection)', $tern->get('jobs/close'), undef);
check('get jobs (the next item)', $tern->get('jobs'), 'resize photo 3');

# Blocking read: wait up to 300 ms for an item.
check('get audit/t=300', $tern->get('audit/t=300'), 'resize photo 3');
check('get audit/t=100 (nothing came)', $tern->get('audit/t=100'), undef);

# Multi-get: one `get a empty b`; the empty queue is absent from the result.
$tern->set('a', 'first');
$tern->set('b', 'second');
check('get_multi', $tern->get_multi('a', 'empty', 'b'), { a => 'first', b => 'second' });

# Delete: 1, then false (NOT_FOUND) once the queue is gone.
check('delete jobs.billing (cursor)', $tern->delete('jobs.billing'), 1);
check('delete jobs', $tern->delete('jobs'), 1);
check('delete jobs (gone)', $tern->delete('jobs') ? 1 : 0, 0);
$tern->disconnect_all;
print "Cache::Memcached $Cache::Memcached::VERSION example: all ok\n";
