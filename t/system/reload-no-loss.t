# No accepted message is lost when nginx reloads or stops under load.
#
# Four clients POST positions as fast as they can over keep-alive
# connections while nginx is reloaded twice and then told to quit; the
# broker answers only after 200 ms, so messages are in flight then.  Two
# clients use a 202 location and two a waiting one, so that both of a
# worker's producers have work in flight.  Every message answered 202 or
# 200 must then be in Kafka, read back with kcat (a client
# geostream did not write), and Kafka must hold nothing that was not sent,
# nor anything twice.  This is the flush on worker exit at work: old
# workers hand what they accepted to Kafka before they go.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);

my $topic = 'reload';
my $clients = 4;
my $per_client = 1500;
my $port = $Port;

# a slow Kafka, so that messages are still in flight when workers exit
my $brokers = start_broker('--topic', "$topic:4", '--rtt', 200);
ok($brokers, "the dev broker runs at $brokers");

my $master = start_nginx(<<"_EOC_");
    geostream_kafka_brokers $brokers;
    server {
        listen 127.0.0.1:$port;
        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
        }
        location ~ ^/producer-wait/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
            geostream_produce_wait on;
        }
    }
_EOC_
ok($master, 'nginx starts');

# Sends one position on the connection; returns the status, or undef when
# the connection failed (then nothing is known of the message).
sub post {
    my ($sock, $location, $name, $id) = @_;

    my $body = qq({"name":"$name","message_id":"$id","lat":52.5,"lon":13.4});
    my $req = "POST /$location/$topic HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/json\r\n"
            . "Content-Length: " . length($body) . "\r\n\r\n$body";

    print {$sock} $req or return;

    my $status_line = <$sock> // return;
    my ($status) = $status_line =~ m{^HTTP/1\.1 (\d+)} or return;
    my ($len, $close) = (0, 0);

    while (my $line = <$sock>) {
        last if $line eq "\r\n";
        $len = $1 if $line =~ /^Content-Length:\s*(\d+)/i;
        $close = 1 if $line =~ /^Connection:\s*close/i;
    }

    read($sock, my $answer, $len) == $len or return;

    return ($status, $close);
}

sub client {
    my ($k) = @_;

    open my $acked, '>', "$Work/acked.$k" or die $!;
    $acked->autoflush(1);

    my $sock;
    my ($location, $ok) = $k % 2 ? ('producer', 202) : ('producer-wait', 200);

    for my $i (1 .. $per_client) {
        my $id = "c$k-$i";
        my $name = "r$k-" . ($i % 7);

        for my $try (1 .. 5) {
            $sock //= IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                            Timeout => 5)
                or return;      # nginx is gone: the run is over

            my ($status, $close) = post($sock, $location, $name, $id);

            if (!defined $status) {
                undef $sock;    # an idle connection an old worker closed
                next;
            }

            print {$acked} "$id\n" if $status == $ok;
            undef $sock if $close;
            last;
        }
    }
}

my @kids;
for my $k (1 .. $clients) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        client($k);
        exit 0;
    }
    push @kids, $pid;
}

sub acked_ids {
    my @ids;
    for my $k (1 .. $clients) {
        open my $f, '<', "$Work/acked.$k" or next;
        push @ids, map { chomp; $_ } <$f>;
    }
    return @ids;
}

sub wait_acked {
    my ($n) = @_;
    wait_until(30, sub { acked_ids() >= $n });
    return scalar acked_ids();
}

# the pace is the 202 clients': a waiting client gets about 5 answers/s
my $total = $clients / 2 * $per_client;

cmp_ok(wait_acked($total * 0.15), '>=', $total * 0.15,
       'messages are acknowledged before the first reload');
kill 'HUP', $master;

cmp_ok(wait_acked($total * 0.3), '>=', $total * 0.3,
       'more are acknowledged after the first reload');
kill 'HUP', $master;

cmp_ok(wait_acked($total * 0.5), '>=', $total * 0.5,
       'more are acknowledged after the second reload');

# -s quit while the clients are still sending
kill 'QUIT', $master;

# the clients stop when nginx no longer accepts connections
for my $pid (@kids) {
    waitpid($pid, 0);
}

ok(wait_until(30, sub { !kill 0, $master }), 'nginx exits after -s quit');

my @acked = acked_ids();
my $waited = grep { /^c(\d+)-/ && $1 % 2 == 0 } @acked;
cmp_ok(scalar @acked - $waited, '>=', $total * 0.5,
       (scalar @acked - $waited) . ' of ' . $total
       . ' messages were acknowledged with 202');
cmp_ok($waited, '>', 0, "$waited were acknowledged with 200 after waiting");

open my $kcat, '-|', 'kcat', '-b', $brokers, '-C', '-t', $topic,
    '-o', 'beginning', '-e', '-q', '-f', '%s\n'
    or die "kcat: $!";
my @stored = map { /"message_id":"([^"]+)"/ ? $1 : "?$_" } <$kcat>;
close $kcat;

my %stored;
$stored{$_}++ for @stored;

my @lost = grep { !$stored{$_} } @acked;
is(scalar @lost, 0, 'every acknowledged message is in Kafka')
    or diag("lost: @lost[0 .. ($#lost < 9 ? $#lost : 9)]");

my %sent = map { my $k = $_; map { ("c$k-$_" => 1) } 1 .. $per_client }
           1 .. $clients;
my @unknown = grep { !$sent{$_} } keys %stored;
is(scalar @unknown, 0, 'Kafka holds nothing that was not sent');

my @twice = grep { $stored{$_} > 1 } keys %stored;
is(scalar @twice, 0, 'and nothing twice') or diag("twice: @twice[0 .. 4]");

my @bad = grep { /\[(alert|crit|emerg)\]/ || /not delivered/ }
          log_lines('error.log');
is(scalar @bad, 0, 'no alert, and no undelivered message in the log')
    or diag(@bad[0 .. ($#bad < 4 ? $#bad : 4)]);

done_testing();
