# A stream over HTTP/2 (curl with prior knowledge, on an "http2" listener):
# it shares its connection with other streams, so it keeps its request
# (it does not leave it as an HTTP/1.x stream does), and gets the same
# events; a producer on the same connection kind works as well.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use Test::More;
use Time::HiRes qw(sleep time);

my $brokers = start_broker('--topic', 'h2:1');

my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    geostream_kafka_consumer_option fetch.wait.max.ms 5;
    server {
        listen 127.0.0.1:$Port http2;
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
ok($master, 'nginx starts');

sub h2_status {
    return scalar `curl -fs --http2-prior-knowledge http://127.0.0.1:$Port/geostream/status`;
}

my $out = "$Work/h2.out";
my $curl = curl_to_file($out, '-sN', '--http2-prior-knowledge', '-m', '20',
                        "http://127.0.0.1:$Port/consumer/h2");

ok(wait_until(10, sub { h2_status() =~ /"topic":"h2","ready":true,"subscribers":1/ }),
   'an HTTP/2 stream subscribes');

my $answer = `curl -s --http2-prior-knowledge -H 'Content-Type: application/json' -d '{"name":"h2-1","message_id":"m1","lat":1,"lon":2}' http://127.0.0.1:$Port/producer/h2`;
like($answer, qr/^\{"name":"h2-1","message_id":"m1","topic":"h2"\}$/m,
     'a position is produced over HTTP/2');

ok(wait_until(10, sub { slurp($out) =~ /data:.*\n\n\z/s }),
   'the stream gets the event');
is(slurp($out), "retry: 2000\n\nid: 0:1\ndata: "
           . '{"topic":"h2","name":"h2-1","message_id":"m1","lat":1,"lon":2}'
           . "\n\n",
   'framed as over HTTP/1.x');

kill 'TERM', $curl;
waitpid $curl, 0;

ok(wait_until(10, sub { h2_status() =~ /"subscribers":0,/ }),
   'the stream goes with its client');

my @bad = grep { /\[(alert|crit|emerg)\]/ } log_lines('error.log');
is(scalar @bad, 0, 'no alert in the error log') or diag(@bad);

done_testing();
