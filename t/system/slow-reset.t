# Stalled readers cannot pin the machine's memory: clients that send the
# GET and never read fill the kernel's send buffer of their socket (it
# grows to net.ipv4.tcp_wmem's maximum, 4 MB by default), then
# geostream_backlog; their streams are closed as too slow, and reset, so
# that the kernel frees those buffers at once instead of keeping them, in
# FIN-WAIT-1, for as long as the client keeps its end open.  The same for
# streams that send_timeout ends, on reload and on a fast stop, and for
# streams that keep their request.
#
# What the stalled sockets hold is read from the kernel per socket (ss -m,
# the server's end of each connection: other processes use TCP memory
# too); /proc/net/sockstat's figures are printed for RELIABILITY.md.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Errno qw(ECONNRESET EAGAIN);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use GeostreamSystem;
use IO::Select;
use IO::Socket::INET;
use Socket;
use Test::More;
use Time::HiRes qw(sleep time);

my $streams = $ENV{GEOSTREAM_STALLED} // 40;

my $brokers = start_broker('--topic', 'stall:1');

# the listener keeps the kernel's default socket buffers: those are what
# a stalled client pins
my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    geostream_kafka_consumer_option fetch.wait.max.ms 5;
    server {
        listen 127.0.0.1:$Port;
        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
        }
        location ~ ^/consumer/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
            geostream_backlog 64k;
        }
        location ~ ^/consumer-attached/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
            geostream_backlog 64k;
            geostream_sse_detach off;
        }
        location ~ ^/consumer-roomy/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
            geostream_backlog 256m;
        }
        location ~ ^/consumer-roomy-attached/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
            geostream_backlog 256m;
            geostream_sse_detach off;
        }
        location ~ ^/consumer-timeout/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
            geostream_backlog 256m;
            send_timeout 1s;
        }
        location ~ ^/consumer-timeout-attached/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
            geostream_backlog 256m;
            geostream_sse_detach off;
            send_timeout 1s;
        }
        location = /geostream/status {
            geostream_status;
        }
    }
_EOC_
ok($master, 'nginx starts');

# TCP memory of the whole machine, in pages
sub sockstat_mem {
    open my $f, '<', '/proc/net/sockstat' or die "/proc/net/sockstat: $!";
    while (<$f>) {
        return $1 if /^TCP:.* mem (\d+)/;
    }
    die "no TCP line in /proc/net/sockstat\n";
}

# The server's ends of the connections to nginx's port, orphans included
# (not the listener, nor TIME-WAIT, which holds no buffer), of the given
# clients only if any are given: their count and the bytes the kernel
# holds for them (skmem r: received, w: queued to send).
sub server_sockets {
    my (@clients) = @_;

    my %port = map { ((sockaddr_in(getsockname($_)))[0] => 1) } @clients;
    my @out = `ss -tnmH state all '( sport = :$Port )'`;
    $? == 0 or die "ss failed\n";

    my ($n, $bytes, $mine) = (0, 0, 0);

    for (@out) {
        if (/^(\S+)\s+\d+\s+\d+\s+\S+\s+\S+:(\d+)\s*$/) {
            $mine = $1 !~ /^(LISTEN|TIME-WAIT)$/ && (!@clients || $port{$2});
            $n++ if $mine;
        }
        if ($mine && /skmem:\(r(\d+),.*,w(\d+),/) {
            $bytes += $1 + $2;
        }
    }

    return ($n, $bytes);
}

# A stalled client: a small receive buffer (what it costs itself), the
# GET, and nothing read from then on.
sub stall {
    my ($path) = @_;

    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096) or die "SO_RCVBUF: $!";
    connect($s, sockaddr_in($Port, inet_aton('127.0.0.1')))
        or die "connect: $!";
    syswrite $s, "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n";

    return $s;
}

sub status_field {
    my ($name) = @_;

    my ($instance) = geostream_status() =~ /"instance":\{([^}]*)\}/
        or return -1;
    return $instance =~ /"$name":(\d+)/ ? $1 : -1;
}

# positions of about 2 KiB, in batches of 100 (200 KiB a POST)
my $batches = 0;
sub produce_batch {
    my $pad = 'x' x 2000;
    $batches++;
    my $body = '[' . join(',', map {
        qq({"name":"v$_","message_id":"$batches-$_","lat":1,"lon":2,)
        . qq("pad":"$pad"})
    } 1 .. 100) . ']';

    open my $curl, '|-', 'curl', '-fsS', '-o', "$Work/produce.out",
        '-H', 'Content-Type: application/json', '--data-binary', '@-',
        "http://127.0.0.1:$Port/producer/stall"
        or die "curl: $!";
    print $curl $body;
    close $curl
        or die "the produce request failed: " . slurp("$Work/produce.out");
}

# Reads each client until its connection ends: 'reset' when it ends with
# ECONNRESET, 'eof' on a clean end; undef while it is open.
sub endings {
    my ($socks, $seconds) = @_;

    my %end;
    wait_until($seconds, sub {
        for my $i (0 .. $#$socks) {
            next if $end{$i};
            my $n = sysread($socks->[$i], my $chunk, 65536);
            if (!defined $n) {
                $end{$i} = 'reset' if $! == ECONNRESET;
                $end{$i} = "error $!" if $! != ECONNRESET && $! != EAGAIN;
            } elsif ($n == 0) {
                $end{$i} = 'eof';
            }
        }
        return keys %end == @$socks;
    });

    return map { $end{$_} // 'open' } 0 .. $#$socks;
}

sub nonblocking {
    my ($s) = @_;
    my $flags = fcntl($s, F_GETFL, 0) or die "fcntl: $!";
    fcntl($s, F_SETFL, $flags | O_NONBLOCK) or die "fcntl: $!";
}

sub pages { sprintf '%d pages (%.1f MB)', $_[0], $_[0] * 4096 / 1e6 }

# --- closed as too slow --------------------------------------------------

my $mem_before = sockstat_mem();
my ($n0) = server_sockets();
is($n0, 0, 'no connection to nginx before the test');

my @stalled = map {
    stall($_ % 2 ? '/consumer/stall' : '/consumer-attached/stall')
} 1 .. $streams;

ok(wait_until(20, sub { status_field('subscribers') == $streams }),
   "$streams stalled streams subscribe (half keep their request)")
    or diag(geostream_status());

# feed the topic until every stalled stream is closed; the figures of the
# last round before they went are what they held
my ($peak_bytes, $peak_mem) = (0, 0);
my $deadline = time + 120;
while (status_field('closed_too_slow') < $streams && time < $deadline
       && $batches < 400)
{
    my ($n, $bytes) = server_sockets();
    my $mem = sockstat_mem();
    $peak_bytes = $bytes if $bytes > $peak_bytes;
    $peak_mem = $mem if $mem > $peak_mem;
    produce_batch();
}

is(status_field('closed_too_slow'), $streams,
   'every stalled stream is closed as too slow')
    or diag(geostream_status());

# the kernel held at least the backlog's worth for each: the test
# measures something
cmp_ok($peak_bytes, '>', $streams * 64 * 1024,
       'while stalled, their sockets held more than their backlogs');

my $gone = wait_until(10, sub { (server_sockets(@stalled))[0] == 0 });
my ($left, $left_bytes) = server_sockets(@stalled);
my $mem_after = sockstat_mem();
ok($gone, 'once closed, the kernel keeps none of their sockets')
    or diag("$left sockets left holding $left_bytes bytes:\n"
            . `ss -tnmH state all '( sport = :$Port )' | head -6`);

diag(sprintf '%d stalled streams: TCP memory before %s, stalled %s, '
     . 'after the close %s; their server sockets held %.1f MB, then %d B',
     $streams, pages($mem_before), pages($peak_mem), pages($mem_after),
     $peak_bytes / 1e6, $left_bytes);

nonblocking($_) for @stalled;
my @ends = endings(\@stalled, 10);
is((grep { $_ eq 'reset' } @ends), $streams,
   'each stalled client sees its connection reset')
    or diag(join ' ', @ends);
close $_ for @stalled;

# --- send_timeout ----------------------------------------------------------

# streams whose backlog is never reached end by send_timeout instead
my @late = map {
    stall($_ % 2 ? '/consumer-timeout/stall'
                 : '/consumer-timeout-attached/stall')
} 1 .. 4;
ok(wait_until(20, sub { status_field('subscribers') == 4 }),
   'four stalled streams with send_timeout 1s subscribe');
# more than the kernel's buffers take (4 MB), so that nginx waits to write
produce_batch() for 1 .. 30;
ok(wait_until(15, sub { status_field('subscribers') == 0 }),
   'send_timeout closes them');
$gone = wait_until(10, sub { (server_sockets(@late))[0] == 0 });
($left, $left_bytes) = server_sockets(@late);
ok($gone, 'and the kernel keeps none of their sockets')
    or diag("$left sockets left holding $left_bytes bytes");
nonblocking($_) for @late;
@ends = endings(\@late, 10);
is((grep { $_ eq 'reset' } @ends), 4, 'each of those clients sees a reset')
    or diag(join ' ', @ends);
close $_ for @late;

# --- reload and fast stop -------------------------------------------------

# stalled streams whose backlog is large enough never to be closed as too
# slow: only the reload (then the stop) ends them
sub stall_roomy {
    my @s = map {
        stall($_ % 2 ? '/consumer-roomy/stall'
                     : '/consumer-roomy-attached/stall')
    } 1 .. $streams;

    ok(wait_until(20, sub { status_field('subscribers') == $streams }),
       "$streams stalled streams with a large backlog subscribe")
        or diag(geostream_status());

    # enough for the kernel's buffers to fill (4 MB each at most)
    my $target = $streams * 256 * 1024;
    my $bytes = 0;
    for (1 .. 60) {
        produce_batch();
        last if ($bytes = (server_sockets())[1]) > $target;
    }
    cmp_ok($bytes, '>', $target, 'their sockets hold their buffers');

    return @s;
}

my @roomy = stall_roomy();

# clients that read everything (default buffers), one of each kind: a
# reload ends their streams cleanly, not with a reset
my @readers = map {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$Port", Timeout => 5)
        or die "connect: $!";
    print {$s} "GET $_ HTTP/1.1\r\nHost: localhost\r\n\r\n";
    nonblocking($s);
    $s;
} '/consumer-roomy/stall', '/consumer-roomy-attached/stall';
ok(wait_until(10, sub { status_field('subscribers') == $streams + 2 }),
   'two reading clients subscribe');
produce_batch();
my @read = ('', '');
ok(wait_until(20, sub {
    for my $i (0, 1) {
        my $n = sysread($readers[$i], my $chunk, 65536);
        $read[$i] .= $chunk if $n;
    }
    return 2 == grep { /"message_id":"$batches-100"/ } @read;
}), 'they read every event');

my %old = nginx_workers();
kill 'HUP', $master;

ok(wait_until(15, sub { !grep { kill 0, $_ } keys %old }),
   'on reload the old worker exits');
$gone = wait_until(10, sub { (server_sockets(@roomy))[0] == 0 });
($left, $left_bytes) = server_sockets(@roomy);
ok($gone, 'and the kernel keeps none of its stalled streams\' sockets')
    or diag("$left sockets left holding $left_bytes bytes");
nonblocking($_) for @roomy;
@ends = endings(\@roomy, 10);
is((grep { $_ eq 'reset' } @ends), $streams,
   'each of those clients sees its connection reset')
    or diag(join ' ', @ends);
close $_ for @roomy;
@ends = endings(\@readers, 10);
is("@ends", 'eof eof', 'the clients that read see their streams end cleanly');
close $_ for @readers;

@roomy = stall_roomy();
kill 'TERM', $master;
ok(wait_until(15, sub { !kill 0, $master }), 'nginx stops');
$gone = wait_until(10, sub { (server_sockets(@roomy))[0] == 0 });
($left, $left_bytes) = server_sockets(@roomy);
ok($gone, 'and on a fast stop too the kernel keeps none of their sockets')
    or diag("$left sockets left holding $left_bytes bytes");
nonblocking($_) for @roomy;
@ends = endings(\@roomy, 10);
is((grep { $_ eq 'reset' } @ends), $streams,
   'each of those clients sees its connection reset')
    or diag(join ' ', @ends);
close $_ for @roomy;

my @lines = log_lines('error.log');
is((grep { /\[(alert|crit)\]/ } @lines), 0, 'no alert in the log')
    or diag(grep { /\[(alert|crit)\]/ } @lines);

done_testing();
