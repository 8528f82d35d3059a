# An HTTP/1.1 stream leaves nginx's request once its header is out
# (geostream_sse_detach, on by default): the request is logged then, its
# memory freed, and the stream goes on with the connection alone, writing
# its own chunks.  With geostream_sse_detach off the request lives (and is
# logged) as long as the stream, and so does a gzipped stream, whose filter
# must see every byte, and one that limit_conn counts.  All of them get the
# same events, framed as valid chunks, and notice a client that goes.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);

my $brokers = start_broker('--topic', 'det:1');

my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    limit_conn_zone \$binary_remote_addr zone=perip:1m;
    geostream_kafka_consumer_option fetch.wait.max.ms 5;
    server {
        listen 127.0.0.1:$Port;
        access_log $Work/logs/access.log;
        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
        }
        location ~ ^/consumer/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
        }
        location ~ ^/consumer-attached/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
            geostream_sse_detach off;
        }
        location ~ ^/consumer-limited/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
            limit_conn perip 1;
        }
        location ~ ^/consumer-gzip/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
            gzip on;
            gzip_types text/event-stream;
            gzip_min_length 1;
        }
        location = /geostream/status {
            geostream_status;
        }
    }
_EOC_
ok($master, 'nginx starts');

sub open_stream {
    my ($path) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$Port",
                                  Timeout => 5)
        or return;
    print {$s} "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n";

    return { sock => $s, buf => '' };
}

# reads what is there within "secs"; returns the stream's whole buffer
sub read_some {
    my ($st, $secs) = @_;

    my $sel = IO::Select->new($st->{sock});
    my $deadline = time + $secs;

    while ((my $left = $deadline - time) > 0) {
        last unless $sel->can_read($left);
        my $n = sysread($st->{sock}, my $chunk, 65536);
        last unless $n;
        $st->{buf} .= $chunk;
        last if $st->{want} && $st->{buf} =~ $st->{want};
    }

    return $st->{buf};
}

# the body of a chunked response, or undef when the framing is wrong
sub dechunk {
    my ($raw) = @_;

    my ($head, $rest) = split /\r\n\r\n/, $raw, 2;
    return unless defined $rest && $head =~ /Transfer-Encoding: chunked/i;

    my $body = '';
    while (length $rest) {
        $rest =~ s/^([0-9a-fA-F]+)\r\n// or return;
        my $size = hex $1;
        return if $size == 0 || length($rest) < $size + 2;
        $body .= substr($rest, 0, $size, '');
        $rest =~ s/^\r\n// or return;
    }

    return $body;
}

sub subscribers {
    my ($n) = geostream_status() =~ /"subscribers":(\d+)/;
    return $n // -1;
}

my $detached = open_stream('/consumer/det');
$detached->{want} = qr/retry: 2000\n\n\r\n/;
like(read_some($detached, 5), qr/^HTTP\/1\.1 200 .*\r\n\r\nd\r\nretry: 2000\n\n\r\n$/s,
     'a stream starts with its header and retry chunk');

ok(wait_until(5, sub { grep { m{"GET /consumer/det HTTP/1.1" 200 } }
                       log_lines('access.log') }),
   'a detached stream is logged once its header is out');

my $attached = open_stream('/consumer-attached/det');
$attached->{want} = qr/retry: 2000\n\n\r\n/;
like(read_some($attached, 5), qr/\r\n\r\nd\r\nretry: 2000\n\n\r\n$/s,
     'an attached stream starts the same way');

# a gzipped stream keeps its request: its filter must see every byte
my $gzip_out = "$Work/gzip.out";
my $gzip_curl = curl_to_file($gzip_out, '-sN', '--compressed', '-m', '20',
                             "http://127.0.0.1:$Port/consumer-gzip/det");

ok(wait_until(10, sub { subscribers() == 3 && geostream_status() =~ /"ready":true/ }),
   'the streams are subscribed, and the topic is read');

system('curl', '-fs', '-o', '/dev/null', '-H', 'Content-Type: application/json',
       '-d', '{"name":"d1","message_id":"m1","lat":1,"lon":2}',
       "http://127.0.0.1:$Port/producer/det") == 0
    or BAIL_OUT('cannot produce');

my $event = qr/id: 0:1\ndata: \{"topic":"det","name":"d1","message_id":"m1","lat":1,"lon":2\}\n\n/;

for my $st ($detached, $attached) {
    $st->{want} = qr/\}\n\n\r\n/;
    read_some($st, 10);
}

my $body = dechunk($detached->{buf});
is($body, "retry: 2000\n\n" . "id: 0:1\ndata: "
          . '{"topic":"det","name":"d1","message_id":"m1","lat":1,"lon":2}'
          . "\n\n",
   'the detached stream frames the event as a valid chunk');
like(dechunk($attached->{buf}) // '', qr/\A retry:\ 2000\n\n $event \z/x,
     'the attached stream gets the same event');

ok(wait_until(10, sub { slurp($gzip_out) =~ /\A retry:\ 2000\n\n $event \z/x }),
   'a gzipped stream decodes to the same events');

kill 'TERM', $gzip_curl;
waitpid $gzip_curl, 0;

my @attached_lines = grep { m{/consumer-attached/} } log_lines('access.log');
is(scalar @attached_lines, 0,
   'an attached stream is not logged while it is open');

close $detached->{sock};
ok(wait_until(5, sub { subscribers() == 1 }),
   'a detached stream notices that its client went');

close $attached->{sock};
ok(wait_until(5, sub { subscribers() == 0 }),
   'so does an attached stream');
ok(wait_until(5, sub { grep { m{/consumer-attached/} } log_lines('access.log') }),
   'which is logged when it ends');

# limit_conn counts a stream as long as it lasts: it keeps its request
my $limited = open_stream('/consumer-limited/det');
$limited->{want} = qr/retry: 2000\n\n\r\n/;
like(read_some($limited, 5), qr/^HTTP\/1\.1 200 /, 'a stream under limit_conn starts');
ok(wait_until(5, sub { subscribers() == 1 }), 'and is subscribed');
my $second = `curl -s -o /dev/null -w '%{http_code}' -m 3 http://127.0.0.1:$Port/consumer-limited/det`;
is($second, '503', 'a second stream from the same address is refused by limit_conn');
close $limited->{sock};
ok(wait_until(5, sub { subscribers() == 0 }), 'the first one goes with its client');

my @bad = grep { /\[(alert|crit|emerg)\]/ } log_lines('error.log');
is(scalar @bad, 0, 'no alert in the error log') or diag(@bad);

done_testing();
