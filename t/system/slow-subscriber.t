# A subscriber that stops reading is closed once it falls geostream_backlog
# behind, and counted; the worker's memory does not grow with it, and a
# subscriber that keeps up on the same topic gets every event.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use IO::Select;
use Socket;
use Test::More;
use Time::HiRes qw(sleep time);

my $brokers = start_broker('--topic', 'slow:1');

# small socket buffers, so that the backlog builds up in nginx, not in
# the kernel
start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    geostream_kafka_consumer_option fetch.wait.max.ms 5;
    server {
        listen 127.0.0.1:$Port sndbuf=4096;
        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
        }
        location ~ ^/consumer/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
            geostream_backlog 512k;
        }
        location = /geostream/status {
            geostream_status;
        }
    }
_EOC_

sub subscribe {
    my ($rcvbuf) = @_;

    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, $rcvbuf) or die $! if $rcvbuf;
    connect($s, sockaddr_in($Port, inet_aton('127.0.0.1')))
        or die "connect: $!";
    syswrite $s, "GET /consumer/slow HTTP/1.0\r\nHost: localhost\r\n\r\n";

    return $s;
}

my $slow = subscribe(4096);

# the subscriber that keeps up reads in a child of its own
my $events = 400;
my $fast_pid = fork // die "fork: $!";

if ($fast_pid == 0) {
    my $s = subscribe(0);
    my ($buf, $n) = ('', 0);
    my $deadline = time + 120;      # a bound, not a timing: it stops at $events

    while ($n < $events && time < $deadline) {
        IO::Select->new($s)->can_read(1) or next;
        sysread($s, my $chunk, 65536) or last;
        $buf .= $chunk;
        $n = () = $buf =~ /^data: /mg;

        # how far it got, for the producer to pace itself
        open my $f, '>', "$Work/fast.count.tmp" or die $!;
        print $f "$n\n";
        close $f;
        rename "$Work/fast.count.tmp", "$Work/fast.count";
    }

    exit 0;
}

sub fast_count {
    open my $f, '<', "$Work/fast.count" or return 0;
    my $n = <$f> // 0;
    chomp $n;
    return $n;
}

ok(wait_until(10, sub { geostream_status() =~ /"subscribers":2,/ }),
   'two subscribers are connected');

# 400 events of about 2 KiB, in batches of 200 KiB: 800 KiB in all, more
# than 512k and the socket buffers
my $pad = 'x' x 2000;
for my $batch (1 .. 4) {
    my $body = '[' . join(',', map {
        qq({"name":"v$_","message_id":"$batch-$_","lat":1,"lon":2,"pad":"$pad"})
    } 1 .. 100) . ']';

    open my $curl, '|-', 'curl', '-fsS', '-o', "$Work/produce.out",
        '-H', 'Content-Type: application/json', '--data-binary', '@-',
        "http://127.0.0.1:$Port/producer/slow"
        or die "curl: $!";
    print $curl $body;
    close $curl or die "the produce request failed: " . `cat $Work/produce.out`;

    # a batch at a time, as fast as a subscriber that keeps up reads it
    wait_until(60, sub { fast_count() >= $batch * 100 });
}

my $closed = wait_until(15, sub { geostream_status() =~ /"closed_too_slow":1\b/ });
ok($closed,
   'the stalled subscriber is closed and counted') or diag(geostream_status());

waitpid($fast_pid, 0);
is(fast_count(), $events, 'the subscriber that keeps up gets every event');

# what the kernel still held arrives, then the end of the stream
my $eof = wait_until(10, sub {
    IO::Select->new($slow)->can_read(0.2) or return 0;
    my $n = sysread($slow, my $chunk, 65536);
    return defined $n && $n == 0;
});
ok($eof, 'the stalled subscriber sees its stream end');

my @lines = log_lines('error.log');
ok((grep { /fell \d+ bytes behind \(geostream_backlog\)/ } @lines),
   'the error log says why');
is((grep { /\[(alert|crit)\]/ } @lines), 0, 'and has no alert');

done_testing();
