# On reload, old workers close their event streams at once and exit, even
# with many streams open (streams never end by themselves, so without that
# old workers would linger); the new workers serve the clients that come
# back.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);

my $streams = 500;

my $brokers = start_broker('--topic', 'streams:2');

my $master = start_nginx(<<"_EOC_");
    geostream_kafka_brokers $brokers;
    geostream_kafka_consumer_option fetch.wait.max.ms 5;
    server {
        listen 127.0.0.1:$Port;
        location ~ ^/consumer/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
        }
    }
_EOC_

my @socks;
for (1 .. $streams) {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$Port",
                                  Timeout => 5)
        or last;
    print {$s} "GET /consumer/streams HTTP/1.1\r\nHost: localhost\r\n\r\n";
    push @socks, $s;
}
is(scalar @socks, $streams, "$streams streams are opened");

# each has its answer's head and "retry:" before the reload
my %open = map { ($_ => $_) } @socks;
my %got;
wait_until(20, sub {
    for my $s (IO::Select->new(values %open)->can_read(0.1)) {
        sysread($s, my $chunk, 4096) or next;
        $got{$s} .= $chunk;
    }
    return (grep { ($got{$_} // '') =~ /retry: 2000/ } @socks) == $streams;
});
is((grep { ($got{$_} // '') =~ /^HTTP\/1\.1 200 .*retry: 2000/s } @socks),
   $streams, 'every stream is live');

my %old = nginx_workers();
my $t0 = time;
kill 'HUP', $master;

# every stream ends: the old workers close them
my $closed = wait_until(15, sub {
    for my $s (IO::Select->new(values %open)->can_read(0.1)) {
        my $n = sysread($s, my $chunk, 4096);
        delete $open{$s} if defined $n && $n == 0;
    }
    return !%open;
});
ok($closed, 'every stream is closed by the reload');
diag(sprintf 'all %d streams closed %.2f s after the reload', $streams,
     time - $t0);

my $gone = wait_until(15, sub { !grep { kill 0, $_ } keys %old });
ok($gone, 'the old workers exit');
diag(sprintf 'the old workers exited %.2f s after the reload', time - $t0);

my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$Port", Timeout => 5);
print {$s} "GET /consumer/streams HTTP/1.0\r\nHost: localhost\r\n\r\n";
my $answer = '';
wait_until(5, sub {
    IO::Select->new($s)->can_read(0.1) or return 0;
    sysread($s, my $chunk, 4096);
    $answer .= $chunk // '';
    return $answer =~ /retry: 2000/;
});
like($answer, qr/^HTTP\/1\.1 200 .*retry: 2000/s,
     'a client that comes back is served by the new workers');

is((grep { /\[(alert|crit)\]/ } log_lines('error.log')), 0, 'no alert in the log');

done_testing();
