# One entity's positions keep their order in Kafka even when they go
# through both of a worker's producers.  A 202 location's message goes to
# the batching producer (here always: geostream_kafka_batch_rate 0), which
# holds it for linger.ms (5 ms); a waiting location's goes to the prompt
# one (1 ms).  Posted right after each other for one key, the waiting
# message would overtake the 202 one, unless geostream keeps a key with
# messages in flight on the producer that has them.  kcat, a client
# geostream did not write, reads the partition back.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use IO::Socket::INET;
use JSON::PP ();
use Test::More;

my $pairs = 40;
my $json = JSON::PP->new->canonical;

my $brokers = start_broker('--topic', 'order:1');

my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    geostream_kafka_batch_rate 0;
    server {
        listen 127.0.0.1:$Port;
        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
        }
        location ~ ^/producer-wait/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
            geostream_produce_wait on;
        }
        location = /geostream/status {
            geostream_status;
        }
    }
_EOC_
ok($master, 'nginx starts');

# one keep-alive connection: a new process or connection per request
# would take longer than the linger the test is about
my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$Port",
                                 Timeout => 10)
    or die "connect: $!\n";

sub post {
    my ($path, $seq) = @_;

    my $body = $json->encode({ name => 'bus-7', lat => 52.5, lon => 13.4,
                               seq => $seq });
    print {$sock} "POST $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/json\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n$body";

    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        sysread($sock, $head, 1, length $head) or die "read: $!\n";
    }
    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my ($len) = $head =~ /^Content-Length: (\d+)/mi;
    my $answer = '';
    while (length $answer < $len) {
        sysread($sock, $answer, $len - length $answer, length $answer)
            or die "read: $!\n";
    }

    return $status;
}

# the first message waits: it makes the topic known, so that the 202
# answers below come at once, while their messages still linger
is(post('/producer-wait/order', 0), 200, 'the first message is delivered');

my @statuses;
for my $i (1 .. $pairs) {
    push @statuses, post('/producer/order', 2 * $i - 1),
                    post('/producer-wait/order', 2 * $i);
}
is_deeply(\@statuses, [(202, 200) x $pairs],
          "$pairs pairs of a 202 and a waiting message are accepted");

my @read = `timeout 20 kcat -C -b $brokers -t order -p 0 -o beginning -e -q -f '%o %s\\n'`;
my @seqs = map { $json->decode((split / /, $_, 2)[1])->{seq} }
           sort { (split / /, $a)[0] <=> (split / /, $b)[0] } @read;

is_deeply(\@seqs, [0 .. 2 * $pairs],
          'kcat reads every message, in the order it was posted');

my $status = $json->decode(geostream_status());
is($status->{producer}{produced_batching}
   + $status->{producer}{produced_prompt}, 2 * $pairs + 1,
   'the status page counts every message once');
cmp_ok($status->{producer}{produced_batching}, '>=', $pairs,
       'every 202 message, and waiting ones that followed them, batched');

done_testing();
