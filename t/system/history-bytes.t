# A topic's history is bounded by bytes as well as by events, so that large
# messages cannot make it take more memory than configured
# (geostream_history 1000 8k), and what the bound pushed out is still
# replayed, from Kafka, to a stream that resumes from before it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use JSON::PP;
use Test::More;

my $topic = 'hist';
my $messages = 10;
my $json = JSON::PP->new;

# one partition: the cursor is "0:OFFSET"
my $brokers = start_broker('--topic', "$topic:1");

my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    geostream_kafka_consumer_option fetch.wait.max.ms 5;
    geostream_history 1000 8k;
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
ok($master, 'nginx starts');

sub topic_status {
    my $s = geostream_status() or return;
    my ($t) = grep { $_->{topic} eq $topic }
              @{ $json->decode($s)->{consumer}{topics} };
    return $t;
}

# the message_ids of the events in a stream's output so far
sub ids {
    my ($file) = @_;
    return map { $json->decode($_)->{message_id} }
           slurp($file) =~ /^data: (.*)$/mg;
}

# a first stream makes the worker follow the topic
my $live = curl_to_file("$Work/live.txt", '-sN',
                        "http://127.0.0.1:$Port/consumer/$topic");
ok(wait_until(20, sub { my $t = topic_status(); $t && $t->{ready} }),
   'the worker follows the topic');

# ten positions of about 2 kB each
my $pad = 'x' x 2000;
for my $id (1 .. $messages) {
    my $body = qq({"name":"big","message_id":$id,"lat":1,"lon":2,"pad":"$pad"});
    my $code = `curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '$body' http://127.0.0.1:$Port/producer/$topic`;
    is($code, 200, "position $id acknowledged");
}

ok(wait_until(20, sub { ids("$Work/live.txt") == $messages }),
   'the live stream has every position');
is_deeply([ids("$Work/live.txt")], [1 .. $messages], 'in order');

my $t = topic_status();
cmp_ok($t->{history_bytes}, '<=', 8192, 'the history keeps to 8k');
cmp_ok($t->{history}, '>=', 1, 'and holds the last positions');
cmp_ok($t->{history}, '<', 4,
       "which are few: about 2 kB each ($t->{history} of $messages)");

# a stream resuming after the first position gets all the others, most of
# them from Kafka, then the rest from the history
my $resumed = curl_to_file("$Work/resumed.txt", '-sN', '-H',
                           'Last-Event-ID: 0:1',
                           "http://127.0.0.1:$Port/consumer/$topic");
ok(wait_until(20, sub { ids("$Work/resumed.txt") >= $messages - 1 }),
   'a stream resuming after the first position catches up');
is_deeply([ids("$Work/resumed.txt")], [2 .. $messages],
          'with every later position once, in order');

# one resuming inside the history gets what is after it
my $recent = curl_to_file("$Work/recent.txt", '-sN', '-H',
                          "Last-Event-ID: 0:" . ($messages - 1),
                          "http://127.0.0.1:$Port/consumer/$topic");
ok(wait_until(20, sub { ids("$Work/recent.txt") >= 1 }),
   'a stream resuming at the last position');
is_deeply([ids("$Work/recent.txt")], [$messages], 'gets only that one');

kill 'TERM', $live, $resumed, $recent;
waitpid $_, 0 for $live, $resumed, $recent;

done_testing();
