# The broker starts again with an empty log, as when a topic is deleted
# and made again or a broker loses its data: the offsets that streams were
# at are past the new log's end.  The consumer notices (offset out of
# range), every stream of the topic gets an "event: reset" naming the
# partitions, and goes on from the new log's start: nothing produced to
# the new log is missed.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

my @broker = ('--topic', 'empty:2', '--port', $Port + 100,
              '--control', "$Work/broker.ctl");
my $brokers = start_broker(@broker);

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

sub post {
    my ($id) = @_;

    return post_position('/producer/empty', $id)->{status};
}

sub streamed {
    my %ids;
    my $text = slurp("$Work/stream");
    $ids{$1}++ while $text =~ /"message_id":"([^"]+)"/g;
    return \%ids;
}

my $stream = curl_to_file("$Work/stream", '-sN', "$base/consumer/empty");
ok(wait_until(10, sub { slurp("$Work/stream") =~ /retry:/ }),
   'a stream is open');

is((grep { post("old$_") == 200 } 1 .. 30), 30, '30 positions are stored');
ok(wait_until(10, sub { keys %{streamed()} == 30 }), '... and streamed');

stop_broker();
$brokers = start_broker(@broker);
pass('the broker starts again, empty');

# the producer finds the new broker; Kafka's offsets start again at 0
my $stored = 0;
for my $i (1 .. 10) {
    wait_until(20, sub { post("new$i") == 200 }) and $stored++;
}
is($stored, 10, '10 positions are stored in the new log');

ok(wait_until(15, sub { (grep { /^new/ } keys %{streamed()}) == 10 }),
   'the stream has every one of them')
    or diag(slurp("$Work/stream"));

my $text = slurp("$Work/stream");
my @resets = $text =~ /^id: (\S+)\nevent: reset\ndata: (\{.*\})$/mg;
my %reset;
for (my $i = 0; $i < @resets; $i += 2) {
    my $r = decode_json($resets[$i + 1]);
    $reset{$r->{partition}} = $r;
}
is_deeply([sort keys %reset], [0, 1],
          'the stream was told that both partitions\' logs were reset');
is((grep { $_->{reason} eq 'reset' && $_->{topic} eq 'empty'
           && $_->{offset} == 0 && $_->{previous} > 0 } values %reset), 2,
   '... from where to where')
    or diag(explain [values %reset]);
cmp_ok(index($text, 'event: reset'), '<', index($text, '"new1"'),
       '... before the new log\'s positions');
is((grep { $_ > 1 } values %{streamed()}), 0, 'and has nothing twice');

# a stream that resumes from the last reset's cursor gets the new log's
# positions from the history, and nothing of the old log
my $cursor = $resets[-2];
my $resumed = curl_to_file("$Work/resumed", '-sN', '-H',
                           "Last-Event-ID: $cursor", "$base/consumer/empty");
ok(wait_until(10, sub {
    (() = slurp("$Work/resumed") =~ /"message_id":"new/g) == 10 }),
   'a stream resumed from the reset\'s cursor has the new log\'s positions');
unlike(slurp("$Work/resumed"), qr/"message_id":"old/,
       '... and none of the old log');
kill 'TERM', $resumed;

# again, and this time the new log grows past the streams' positions
# before the consumer is back (another client writes at once): no offset
# is then out of range, and the consumer tells by Kafka's cluster id
stop_broker();
$brokers = start_broker(@broker);
for my $p (0, 1) {
    open my $kcat, '|-', "kcat -b $brokers -P -t empty -p $p -q"
        or die "kcat: $!";
    print {$kcat} qq({"name":"b$p-$_","message_id":"burst$p-$_","lat":1,)
                  . qq("lon":2}\n) for 1 .. 20;
    close $kcat or die "kcat failed\n";
}
pass('the broker starts again, and 40 positions are written to it at once');

ok(wait_until(20, sub { (grep { /^burst/ } keys %{streamed()}) == 40 }),
   'the stream has every one of them')
    or diag(join ' ', sort grep { /^burst/ } keys %{streamed()});
is((grep { $_ > 1 } values %{streamed()}), 0, '... and nothing twice');
$text = slurp("$Work/stream");
cmp_ok((() = $text =~ /^event: reset$/mg), '>=', 4,
       'the stream was told of both resets');

kill 'TERM', $stream;
done_testing();
