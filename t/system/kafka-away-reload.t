# nginx -s reload while Kafka is unreachable: the old worker holds what it
# accepted (202 messages, and requests that wait for Kafka's answer) for
# geostream_kafka_flush_timeout at most, then gives it up: the waiting
# requests are answered 503, what was lost is counted as failed and logged
# once, and the old worker exits in time, streams and all.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

my $flush = 2;                  # s, geostream_kafka_flush_timeout

my $brokers = start_broker('--topic', 'away:2',
                           '--control', "$Work/broker.ctl");

my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    geostream_kafka_flush_timeout ${flush}s;
    server {
        listen 127.0.0.1:$Port;
        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
        }
        location ~ ^/wait/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
            geostream_produce_wait on;
        }
        location ~ ^/consumer/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
        }
        location = /geostream/status {
            geostream_status;
        }
    }
_EOC_

my $base = "http://127.0.0.1:$Port";

sub post {
    my ($path, $id) = @_;

    return post_position($path, $id)->{status};
}

is(post('/wait/away', 'first'), 200, 'Kafka takes a first message');

my $stream = curl_to_file("$Work/stream", '-sN', "$base/consumer/away");
ok(wait_until(10, sub { slurp("$Work/stream") =~ /retry:/ }),
   'a stream is open');

my ($old) = keys %{{ nginx_workers() }};

broker_control('down all');

# accepted within the grace: librdkafka holds them for a broker
my $accepted = grep { post('/producer/away', "a$_") == 202 } 1 .. 20;
is($accepted, 20, 'positions are accepted within the grace');

# and requests that wait for Kafka's acknowledgement
my @waiting = map { curl_to_file("$Work/wait$_", '-s', '-o', '/dev/null',
                        '-w', '%{http_code}', '-H',
                        'Content-Type: application/json', '-d',
                        qq({"name":"w$_","message_id":"w$_","lat":1,"lon":2}),
                        "$base/wait/away") } 1 .. 3;
ok(wait_until(5, sub {
    decode_json(geostream_status())->{producer}{in_flight} == 23 }),
   'the waiting requests\' messages are in flight too');

my $t0 = time;
kill 'HUP', $master;

ok(wait_until(20, sub { !kill 0, $old }), 'the old worker exits');
my $took = time - $t0;
cmp_ok($took, '<', $flush + 1.5,
       sprintf('... within the flush timeout (%.2f s, timeout %d s)',
               $took, $flush));

waitpid $_, 0 for @waiting;
is(join(' ', map { slurp("$Work/wait$_") } 1 .. 3), '503 503 503',
   'the waiting requests are answered 503');

waitpid $stream, 0;
pass('the stream is closed');

my @alerts = grep { /not delivered within geostream_kafka_flush_timeout/ }
             log_lines('error.log');
is(scalar @alerts, 1, 'what was given up is logged once');
like($alerts[0] // '', qr/ 23 kafka messages not delivered/,
     '... with its count');

broker_control('up all');

ok(wait_until(15, sub { post('/producer/away', 'after') == 202 }),
   'the new worker accepts positions once Kafka is back');
ok(wait_until(15, sub {
    my $i = decode_json(geostream_status())->{instance};
    $i->{in_flight} == 0 && $i->{failed} == 23 }),
   'the instance counts the 23 given up as failed, none in flight');

done_testing();
