# Kafka away: every broker of the dev broker down for longer than
# message.timeout.ms.  202 locations answer 503 kafka_unavailable (with
# Retry-After) once the brokers have been down for geostream_kafka_down_grace,
# and accept again when a broker is back; the status page accounts for every
# message it accepted (accepted = delivered + failed + in flight), and what
# it counts as delivered is what Kafka has; the failures are logged as one
# summary line a second, not a line a message.  Also: a topic that Kafka
# does not have is answered 404 within a few seconds with the defaults.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

my $timeout_ms = 4000;          # message.timeout.ms
my $outage = 7;                 # s, longer than that
my $grace = 1;                  # s, geostream_kafka_down_grace

my $brokers = start_broker('--topic', 'outage:2', '--missing', 'nowhere',
                           '--control', "$Work/broker.ctl");

start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    geostream_kafka_producer_option message.timeout.ms $timeout_ms;
    geostream_kafka_down_grace ${grace}s;
    server {
        listen 127.0.0.1:$Port;
        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
        }
        location = /geostream/status {
            geostream_status;
        }
    }
_EOC_


sub post {
    my ($topic, $id) = @_;

    return post_position("/producer/$topic", $id);
}

sub instance {
    return decode_json(geostream_status())->{instance};
}

# a topic that Kafka does not have, with librdkafka's defaults as geostream
# sets them: 404 within a few seconds, not a delivery timeout
{
    my $t0 = time;
    my $res = post('nowhere', 'x');
    my $took = time - $t0;

    is($res->{status}, 404, 'a missing topic is answered 404');
    like($res->{content}, qr/"error":"unknown_topic"/, '... unknown_topic');
    cmp_ok($took, '<', 5, sprintf('... within 5 s (%.1f s)', $took));
}

# the topic is known to exist once a first message is delivered
is(post('outage', 'first')->{status}, 202, 'a first message is accepted');
ok(wait_until(10, sub { instance()->{delivered} >= 1 }),
   'and delivered');

# a client that sends a position every 10 ms, before, during and after
# the outage; every answer is kept with the time it came
my (@answers, $down_at, $up_at);
my $t0 = time;
my $n = 0;

while (time - $t0 < $outage + 6) {
    my $now = time - $t0;

    if (!defined $down_at && $now >= 1) {
        broker_control('down all');
        $down_at = time - $t0;

    } elsif (defined $down_at && !defined $up_at && $now >= 1 + $outage) {
        broker_control('up all');
        $up_at = time - $t0;
    }

    my $id = 'm' . $n++;
    my $res = post('outage', $id);
    push @answers, { id => $id, at => $now, status => $res->{status},
                     body => $res->{content},
                     retry => $res->{headers}{'retry-after'} };
    sleep 0.01;
}

my @accepted = grep { $_->{status} == 202 } @answers;
my @refused = grep { $_->{status} == 503 } @answers;

is(scalar(@accepted) + scalar(@refused), scalar @answers,
   'every answer is 202 or 503');
cmp_ok(scalar @refused, '>', 0,
       scalar(@refused) . ' of ' . scalar(@answers)
       . ' positions are refused while Kafka is away');
is((grep { $_->{body} =~ /"error":"kafka_unavailable"/ } @refused),
   scalar @refused, '... as kafka_unavailable');
is((grep { ($_->{retry} // '') =~ /^\d+$/ } @refused), scalar @refused,
   '... with Retry-After');

# librdkafka notices within a second that the brokers are gone; past that
# and the grace, nothing is accepted until they are back
my @late = grep { $_->{at} > $down_at + $grace + 1.5 && $_->{at} < $up_at }
           @accepted;
is(scalar @late, 0, 'nothing is accepted while Kafka is away, past the grace')
    or diag("accepted at: @{[ map { sprintf '%.2f', $_->{at} } @late ]}");
is((grep { $_->{at} < $down_at } @refused), 0,
   'nothing is refused before the outage');

my @after = grep { $_->{at} > $up_at + 3 } @answers;
cmp_ok(scalar @after, '>', 0, 'positions are sent after the brokers are up');
is((grep { $_->{status} == 202 } @after), scalar @after,
   '... and all of them accepted, from 3 s after');

# what was accepted is delivered, or failed; nothing stays in flight
ok(wait_until(20, sub { instance()->{in_flight} == 0 }),
   'no message stays in flight');

my $inst = instance();
my $produced = $inst->{produced_prompt} + $inst->{produced_batching};
# librdkafka took the positions answered 202, the first one, and the one
# for the missing topic, which then failed
is($produced, scalar(@accepted) + 2, 'accepted counts every 202 answer');
is($inst->{delivered} + $inst->{failed} + $inst->{in_flight}, $produced,
   'accepted = delivered + failed + in flight');

# Kafka has exactly what is counted as delivered, and nothing refused
my %in_kafka;
for (`kcat -b $brokers -C -t outage -e -q -f '%s\\n' 2>/dev/null`) {
    $in_kafka{$1}++ if /"message_id":"([^"]+)"/;
}
is(scalar keys %in_kafka, $inst->{delivered},
   "Kafka has what is counted as delivered ($inst->{delivered})");
is((grep { $in_kafka{$_->{id}} } @refused), 0,
   'no refused position is in Kafka');
is((grep { !$in_kafka{$_->{id}} } @accepted), $inst->{failed} - 1,
   "the accepted positions that Kafka lacks are those counted as failed "
   . "($inst->{failed})");

# failures are summed up, a line a second per topic and reason
my @lines = grep { /not delivered/ } log_lines('error.log');
my $logged = 0;
for (@lines) {
    $logged += $1 if /not delivered [^:]*: (\d+) to topic "(?:outage|nowhere)"/;
}
is($logged, $inst->{failed}, 'the log\'s summaries add up to the failures');
cmp_ok(scalar @lines, '<=', $outage + 4,
       scalar(@lines) . ' log lines for them, not one a message');

done_testing();
