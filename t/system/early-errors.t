# Errors that nginx answers before it has chosen a location (a malformed
# request line, a 9 kB URI, a bad Content-Length...) come as nginx's HTML
# page, since geostream's JSON applies in its locations only; a server that
# includes conf/geostream-errors.conf (as the README says, and make run
# does) answers them as JSON, with nginx's status.  geostream's own errors
# keep their detail there.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP ();
use Test::More;
use Time::HiRes qw(time);

my $json = JSON::PP->new;
my $plain = "$Work/plain.sock";     # the same without the include

my $brokers = start_broker('--topic', 'early:1');

my $locations = <<"_EOC_";
        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
            client_max_body_size 1k;
        }
        location ~ ^/consumer/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
        }
_EOC_

my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    server {
        listen 127.0.0.1:$Port;
        include $Root/conf/geostream-errors.conf;
$locations
    }
    server {
        listen unix:$plain;
$locations
    }
_EOC_
ok($master, 'nginx starts');

# One raw request to a port or a socket: (status, headers, body).
sub raw {
    my ($to, $request) = @_;

    my $s = $to =~ m{^/} ? IO::Socket::UNIX->new(Peer => $to)
          : IO::Socket::INET->new(PeerAddr => "127.0.0.1:$to", Timeout => 5);
    $s or die "connect to $to: $!";
    print {$s} $request;

    my $answer = '';
    my $deadline = time + 5;
    while (time < $deadline) {
        IO::Select->new($s)->can_read(0.5) or next;
        my $n = sysread($s, my $chunk, 65536);
        last unless $n;
        $answer .= $chunk;
    }

    my ($head, $body) = split /\r\n\r\n/, $answer, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.1 (\d+)};
    return ($status // 0, $head // '', $body // '');
}

my $host = "Host: localhost\r\n";
my @cases = (
    ['a malformed request line',
     "GET /consumer/early HTTP/1.1 junk\r\n$host\r\n", 400, 'bad_request'],
    ['a 9 kB URI', 'GET /consumer/' . ('a' x 9000) . " HTTP/1.1\r\n$host\r\n",
     414, 'uri_too_long'],
    ['a bad Content-Length', "POST /producer/early HTTP/1.1\r\n$host"
     . "Content-Length: 12x\r\n\r\n", 400, 'bad_request'],
    ['two Content-Lengths', "POST /producer/early HTTP/1.1\r\n$host"
     . "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, 'bad_request'],
    ['a 9 kB header', "GET /consumer/early HTTP/1.1\r\n$host"
     . 'X-Pad: ' . ('a' x 9000) . "\r\n\r\n", 400, 'header_too_large'],
    ['no Host in HTTP/1.1', "GET /consumer/early HTTP/1.1\r\n\r\n",
     400, 'bad_request'],
    ['an unknown Transfer-Encoding', "POST /producer/early HTTP/1.1\r\n$host"
     . "Transfer-Encoding: gzip\r\n\r\n", 501, 'not_implemented'],
    ['HTTP/2.0 on an HTTP/1 connection', "GET /consumer/early HTTP/2.0\r\n"
     . "$host\r\n", 505, 'http_version_not_supported'],
    ['TRACE', "TRACE /consumer/early HTTP/1.1\r\n$host\r\n",
     405, 'method_not_allowed'],
);

for my $c (@cases) {
    my ($what, $request, $want, $error) = @$c;

    my ($status, $head, $body) = raw($Port, $request);
    is($status, $want, "$what: $want");
    like($head, qr{^Content-Type: application/json\r?$}mi, '  as JSON');
    my $e = eval { $json->decode($body) } // {};
    is($e->{error}, $error, "  \"error\":\"$error\"");
    ok(length($e->{detail} // ''), '  with a detail');

    # the check can fail: without the include, the same is nginx's HTML
    ($status, $head) = raw($plain, $request);
    ok($status == $want && $head =~ m{^Content-Type: text/html}mi,
       "  (HTML without conf/geostream-errors.conf)");
}

# geostream's own errors, and nginx's in its locations, keep their detail
my ($status, $head, $body) = raw($Port, "POST /producer/early HTTP/1.1\r\n$host"
    . "Content-Type: application/json\r\nContent-Length: 5\r\n"
    . "Connection: close\r\n\r\n{\"a\":");
is($status, 400, 'geostream\'s own 400 stays its own');
is(eval { $json->decode($body)->{error} }, 'invalid_json', '  invalid_json');

($status, $head, $body) = raw($Port, "POST /producer/early HTTP/1.1\r\n$host"
    . "Content-Type: application/json\r\nContent-Length: 2000\r\n"
    . "Connection: close\r\n\r\n" . ('x' x 2000));
is($status, 413, 'a body over client_max_body_size: 413');
like($body, qr/client_max_body_size/, '  which names client_max_body_size');

# the internal locations are not reachable from outside
($status) = raw($Port, "GET /.geostream/error/400 HTTP/1.1\r\n$host"
                . "Connection: close\r\n\r\n");
is($status, 404, 'the error pages cannot be asked for');

is((grep { /\[(alert|crit|emerg)\]|empty URI/ } log_lines('error.log')), 0,
   'no alert in the log');

done_testing();
