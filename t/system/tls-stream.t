# A stream over TLS leaves its request like any HTTP/1.1 stream and then
# writes through the TLS connection itself (c->send_chain): its chunks
# arrive intact, it notices a client that goes, and nginx closes it
# cleanly.  The certificate is made for the test with openssl.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use IO::Select;
use Test::More;
use Time::HiRes qw(sleep time);

ok(system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
          . "-subj /CN=localhost -keyout $Work/key.pem -out $Work/cert.pem "
          . "2>$Work/openssl.log") == 0,
   'openssl makes a certificate')
    or BAIL_OUT('openssl cannot make a certificate');

my $brokers = start_broker('--topic', 'tls:1');

my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    geostream_kafka_consumer_option fetch.wait.max.ms 5;
    server {
        listen 127.0.0.1:$Port ssl;
        ssl_certificate     $Work/cert.pem;
        ssl_certificate_key $Work/key.pem;
        access_log $Work/logs/access.log;
        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
        }
        location ~ ^/consumer/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
        }
        location = /geostream/status {
            geostream_status;
        }
    }
_EOC_
ok($master, 'nginx starts with TLS');

my $base = "https://127.0.0.1:$Port";

sub tls_status {
    return scalar `curl -fsk $base/geostream/status`;
}

# curl --raw keeps the chunk framing, so that it can be checked here
my $out = "$Work/tls.out";
my $curl = curl_to_file($out, '-sNk', '--raw', '-m', '20', "$base/consumer/tls");

ok(wait_until(10, sub { tls_status() =~ /"topic":"tls","ready":true,"subscribers":1/ }),
   'a stream over TLS subscribes');

ok(wait_until(5, sub { grep { m{"GET /consumer/tls HTTP/1.1" 200 } } log_lines('access.log') }),
   'and leaves its request, which is logged');

system('curl', '-fsk', '-o', '/dev/null', '-H', 'Content-Type: application/json',
       '-d', '{"name":"t1","message_id":"m1","lat":1,"lon":2}',
       "$base/producer/tls") == 0
    or BAIL_OUT('cannot produce over TLS');

my $data = '{"topic":"tls","name":"t1","message_id":"m1","lat":1,"lon":2}';
my $event = "id: 0:1\ndata: $data\n\n";

ok(wait_until(10, sub { index(slurp($out), $event) >= 0 }), 'the event arrives over TLS');
is(slurp($out), "d\r\nretry: 2000\n\n\r\n"
          . sprintf("%x\r\n", length $event) . "$event\r\n",
   'in a chunk of its own, framed by the stream itself');

kill 'TERM', $curl;
waitpid $curl, 0;

ok(wait_until(10, sub { tls_status() =~ /"subscribers":0,/ }),
   'the stream goes with its client');

my @bad = grep { /\[(alert|crit|emerg)\]/ } log_lines('error.log');
is(scalar @bad, 0, 'no alert in the error log') or diag(@bad);

done_testing();
