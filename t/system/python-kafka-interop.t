# geostream and a Kafka client it did not write (python3-kafka, from
# Debian) agree: an entity's key goes to the same partition from either
# producer, as Kafka's Java client puts it (murmur2), so one entity's
# positions stay in one partition, in order, whoever writes them; and
# python3-kafka reads back exactly what geostream acknowledged.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use JSON::PP ();
use Test::More;

my $partitions = 8;
my @names = map { "veh-$_" } 1 .. 24;
my $json = JSON::PP->new->canonical;

my $python = '/usr/bin/python3';
system($python, '-c', 'import kafka') == 0
    or BAIL_OUT('python3-kafka is missing (tools/install-deps installs it)');

my $brokers = start_broker('--topic', "interop:$partitions");

my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    server {
        listen 127.0.0.1:$Port;
        location ~ ^/producer-wait/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
            geostream_produce_wait on;
        }
    }
_EOC_
ok($master, 'nginx starts');

# geostream: one waiting POST per entity, which answers its partition
my (%geostream, %sent);
for my $i (0 .. $#names) {
    my $body = $json->encode({ name => $names[$i], message_id => "m$i",
                               lat => 50 + $i / 10, lon => 8 + $i / 10 });
    my $answer = `curl -s -H 'Content-Type: application/json' --data-binary '$body' http://127.0.0.1:$Port/producer-wait/interop`;
    my $a = eval { $json->decode($answer) } // {};
    $geostream{$names[$i]} = $a->{partition};
    $sent{"$a->{partition}:$a->{offset}"} = [$names[$i], $body]
        if defined $a->{offset};
}
is(scalar keys %sent, scalar @names, 'geostream acknowledges every POST');

# python3-kafka: the same keys with its default (Java's) partitioner, and
# everything in the topic read back
my $script = <<'_PY_';
import json, sys
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

brokers, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = sys.argv[4:]

producer = KafkaProducer(bootstrap_servers=brokers, acks="all")
placed = {}
for name in names:
    md = producer.send(topic, key=name.encode(), value=b"{}").get(timeout=20)
    placed[name] = md.partition
producer.close()

consumer = KafkaConsumer(bootstrap_servers=brokers,
                         consumer_timeout_ms=3000, enable_auto_commit=False)
parts = [TopicPartition(topic, p) for p in range(n)]
consumer.assign(parts)
consumer.seek_to_beginning(*parts)
read = {}
for m in consumer:
    read["%d:%d" % (m.partition, m.offset)] = [m.key.decode(),
                                               m.value.decode()]
consumer.close()
print(json.dumps({"placed": placed, "read": read}))
_PY_

my $out = `timeout 60 $python -c '$script' $brokers interop $partitions @names`;
my $py = eval { $json->decode($out) };
ok($py, 'python3-kafka produces and consumes') or diag($out);

is_deeply({ map { ($_ => $py->{placed}{$_}) } @names }, \%geostream,
          'python3-kafka puts every key in the partition geostream chose');

my %distinct = map { ($_ => 1) } values %geostream;
cmp_ok(scalar keys %distinct, '>', 1, 'the keys spread over partitions');

is_deeply({ map { ($_ => $py->{read}{$_}) } keys %sent }, \%sent,
          'python3-kafka reads every acknowledged message, key and value, '
          . 'at the partition and offset geostream answered');

done_testing();
