# A cluster of three brokers where one goes down (its partitions move to
# the others, as Kafka's controller moves them) and comes back: waiting
# mode loses nothing and writes nothing twice, and a stream of the topic
# goes on and has every position exactly once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

my $brokers = start_broker('--brokers', 3, '--topic', 'ha:6',
                           '--control', "$Work/broker.ctl");

start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    geostream_kafka_consumer_option fetch.wait.max.ms 10;
    server {
        listen 127.0.0.1:$Port;
        location ~ ^/producer/(?<topic>[^/]+)\$ {
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
my $n = 300;

my $stream = curl_to_file("$Work/stream", '-sN', "$base/consumer/ha");

sub post {
    my ($id) = @_;

    # 30 entities, each id always one of them
    return post_position('/producer/ha', $id,
                         'car-' . unpack('%32C*', $id) % 30)->{status};
}

# the stream follows the topic once a position sent now reaches it
ok(wait_until(10, sub {
    post('warm-up');
    slurp("$Work/stream") =~ /"warm-up"/ }),
   'a stream is open and live');

# 300 positions, one at a time, waiting for Kafka; broker
# 2 goes down after a third of them and comes back after two thirds
my %status;
for my $i (1 .. $n) {
    broker_control('down 2') if $i == $n / 3;
    broker_control('up 2') if $i == 2 * $n / 3;

    $status{post("m$i")}++;
}
is($status{200} // 0, $n, "every one of the $n positions is acknowledged")
    or diag(explain \%status);

my %in_kafka;
for (`kcat -b $brokers -C -t ha -e -q -f '%s\\n' 2>/dev/null`) {
    $in_kafka{$1}++ if /"message_id":"(m\d+)"/;
}
is(scalar keys %in_kafka, $n, 'Kafka has every one of them');
is((grep { $_ > 1 } values %in_kafka), 0, '... and none twice');

my %streamed;
ok(wait_until(20, sub {
    %streamed = ();
    my $text = slurp("$Work/stream");
    $streamed{$1}++ while $text =~ /"message_id":"(m\d+)"/g;
    keys %streamed == $n }),
   'the stream has every one of them')
    or diag(scalar(keys %streamed) . " streamed; missing: "
            . join(" ", grep { !$streamed{$_} } map { "m$_" } 1 .. $n));
is((grep { $_ > 1 } values %streamed), 0, '... and none twice');

kill 'TERM', $stream;
done_testing();
