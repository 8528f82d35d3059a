# The status location counts for the whole nginx instance: the workers
# count in shared memory, so whichever worker answers, its "instance"
# totals (and the Prometheus format, geostream_status prometheus) cover
# every worker, and a reload keeps them, as Prometheus expects of a
# counter.  The JSON page's other figures stay the answering worker's own,
# and a worker that crashed leaves no stream counted as open.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use JSON::PP;
use Test::More;

my $topic = 'instance';
my $json = JSON::PP->new;

my $brokers = start_broker('--topic', "$topic:2");

# reuseport: the kernel spreads new connections over both workers
my $master = start_nginx(<<"_EOC_", workers => 2);
    geostream_kafka_brokers $brokers;
    geostream_kafka_consumer_option fetch.wait.max.ms 5;
    server {
        listen 127.0.0.1:$Port reuseport;
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
        location = /metrics {
            geostream_status prometheus;
        }
    }
_EOC_
ok($master, 'nginx starts with two workers');

# one position, on a connection of its own; the answer's status
sub post {
    my ($n) = @_;

    return scalar `curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"name":"bus-$n","lat":52.5,"lon":13.4}' http://127.0.0.1:$Port/producer/$topic`;
}

# the JSON page, from whichever worker takes the connection
sub status {
    my $s = geostream_status() or return;
    return $json->decode($s);
}

# the Prometheus page: sample => value
sub metrics {
    my %m;

    for (`curl -fs http://127.0.0.1:$Port/metrics`) {
        next if /^#/;
        my ($sample, $value) = /^(\S+) (\d+)$/ or next;
        $m{$sample} = $value;
    }

    return \%m;
}

sub produced {
    my ($m) = @_;
    return ($m->{'geostream_produced_messages_total{producer="prompt"}'}
            // 0)
           + ($m->{'geostream_produced_messages_total{producer="batching"}'}
              // 0);
}

# the workers' own counts, from as many pages as it takes to hear from
# both: pid => status page
sub both_workers {
    my %seen;

    wait_until(20, sub {
        my $s = status() or return;
        $seen{$s->{pid}} = $s;
        return keys %seen >= 2;
    });

    return %seen;
}

# positions until both workers have taken some (at most 200)
my $posted = 0;
my %took;

while ($posted < 200 && ($posted < 20 || keys %took < 2)) {
    $posted++;
    is(post($posted), 200, "position $posted acknowledged")
        or BAIL_OUT('a position was refused');

    if ($posted % 10 == 0) {
        my %w = both_workers();
        $took{$_} = 1 for grep { $w{$_}{producer}{produced} } keys %w;
    }
}

is(scalar keys %took, 2, "both workers produced ($posted positions)");

my %w = both_workers();
is(scalar keys %w, 2, 'both workers answer the status page');

my $sum = 0;
$sum += $_->{producer}{produced} for values %w;
is($sum, $posted, "the workers' own counts add up to what was posted");

for my $pid (sort keys %w) {
    my $i = $w{$pid}{instance};
    is($i->{produced_prompt} + $i->{produced_batching}, $posted,
       "worker $pid reports the instance's produced messages");
    is($i->{delivered}, $posted,
       "worker $pid reports the instance's delivered messages");
    cmp_ok($w{$pid}{producer}{produced}, '<', $posted,
           "worker ${pid}'s own count is its own");
}

my $m = metrics();
is(produced($m), $posted, 'Prometheus: produced messages, all workers');
is($m->{geostream_delivered_messages_total}, $posted,
   'Prometheus: delivered messages');
is($m->{geostream_failed_messages_total}, 0, 'Prometheus: none failed');

# six streams, in curls of their own: their pids, once the Prometheus
# page counts all six open
sub open_streams {
    my ($name, $what) = @_;

    my @pids = map {
        curl_to_file("$Work/$name-$_.txt", '-sN',
                     "http://127.0.0.1:$Port/consumer/$topic")
    } 1 .. 6;

    ok(wait_until(20, sub {
           (metrics()->{geostream_subscribers} // 0) == 6
       }), $what);

    return @pids;
}

# streams on both workers make one gauge
my @curls = open_streams('stream', 'Prometheus: six streams open');

%w = both_workers();
$sum = 0;
$sum += $_->{consumer}{subscribers} for values %w;
is($sum, 6, "the workers' own streams add up to six");
is($_->{instance}{subscribers}, 6, 'each worker reports all six streams')
    for values %w;

# a reload: the old workers close their streams and go; the new ones count on
my %old = nginx_workers();
kill 'HUP', $master;

ok(wait_until(30, sub { !grep { kill 0, $_ } keys %old }),
   'the old workers exit');

ok(wait_until(20, sub { (metrics()->{geostream_subscribers} // -1) == 0 }),
   'Prometheus: no stream open once the old workers closed theirs');

$m = metrics();
is(produced($m), $posted, 'Prometheus: the reload keeps the counters');

for (1 .. 10) {
    $posted++;
    is(post($posted), 200, "position $posted acknowledged after the reload");
}

is(produced(metrics()), $posted,
   'Prometheus: the new workers count on from there');

%w = both_workers();
$sum = 0;
$sum += $_->{producer}{produced} for values %w;
is($sum, 10, "the new workers' own counts are their own: 10");

waitpid $_, 0 for @curls;

# a worker that crashes with streams open: its slot is retired when the
# master starts another, so its streams no longer count, nor are its
# counts lost
@curls = open_streams('crash', 'six streams open again');

%w = both_workers();
my ($victim) = grep { $w{$_}{consumer}{subscribers} > 0 } sort keys %w;
my $on_victim = $w{$victim}{consumer}{subscribers};
kill 'KILL', $victim;

ok(wait_until(20, sub {
       my %now = nginx_workers();
       keys %now == 2 && !exists $now{$victim};
   }), "the master replaces the killed worker $victim");

my %alive = map { $_ => 1 } @curls;
ok(wait_until(20, sub {
       for my $pid (keys %alive) {
           delete $alive{$pid} if waitpid($pid, 1) == $pid;   # WNOHANG
       }
       (metrics()->{geostream_subscribers} // -1) == keys %alive;
   }), 'Prometheus: the open streams are those still connected');
is(scalar keys %alive, 6 - $on_victim,
   "the killed worker's $on_victim streams are gone");
is(produced(metrics()), $posted, "and none of its counts");

kill 'TERM', keys %alive;
waitpid $_, 0 for keys %alive;

done_testing();
