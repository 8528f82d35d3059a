package GeostreamTest;

# Shared set-up of geostream's Test::Nginx suite.  A .t file says
#
#   use Test::Nginx::Socket 'no_plan';
#   use FindBin; use lib "$FindBin::Bin/inc"; use GeostreamTest;
#
# and every block that does not bring its own main_config, http_config or
# config gets the module loaded, the dev broker configured and the
# standard locations.  The helpers below let a block produce a message
# once its subscriber is connected (from "--- init"), and check what Kafka
# holds with kcat, a client geostream did not write.
#
# Test::Nginx evaluates "--- init" code in its package Test::Nginx::Util,
# not in the test file's: init code calls these helpers by their full
# name, GeostreamTest::produce_when_ready(...), so nothing is exported.

use strict;
use warnings;

use Time::HiRes qw(sleep time);

# TEST_NGINX_GEOSTREAM_SLOWDOWN=N says that nginx runs N times slower than
# usual (make test-valgrind: under valgrind), so that every wait of the
# suite is N times longer: a block's --- timeout (Test::Nginx's idle
# timeout, after which it stops reading a stream) and the deadlines below.
our $Slowdown = $ENV{TEST_NGINX_GEOSTREAM_SLOWDOWN} || 1;
$Slowdown =~ /^\d+(?:\.\d+)?$/ && $Slowdown >= 1
    or die "TEST_NGINX_GEOSTREAM_SLOWDOWN is a factor of at least 1\n";

# how long the helpers wait for what they wait for
our $Deadline = 10 * $Slowdown;

my $bin = __FILE__ =~ s{/[^/]+$}{}r;

our $MainConfig = 'load_module $TEST_NGINX_GEOSTREAM_MODULE;';

our $HttpConfig = <<'_EOC_';
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    # the dev broker has no real Fetch long-poll: keep idle waits short
    geostream_kafka_consumer_option fetch.wait.max.ms 5;
_EOC_

our $Config = <<'_EOC_';
    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
    }

    location ~ ^/consumer/(?<topic>[^/]+)$ {
        geostream_consume $topic;
    }

    location = /geostream/status {
        geostream_status;
    }
_EOC_

Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('main_config', $MainConfig)
        unless defined $block->main_config;
    $block->set_value('http_config', $HttpConfig)
        unless defined $block->http_config;
    $block->set_value('config', $Config)
        unless defined $block->config;

    # A block that expects no answer at all hangs up at its timeout on
    # purpose, before nginx answers: that timeout is kept as it is.
    my $hangs_up = defined $block->abort
                   && defined $block->error_code && $block->error_code eq '';

    # A stream's idle timeout stays under the heartbeat (15 s by default),
    # which would otherwise keep the stream busy for ever.
    if ($Slowdown != 1 && defined $block->timeout && !$hangs_up) {
        my $t = Test::Nginx::Util::parse_time($block->timeout);
        my $scaled = $t * $Slowdown;
        $scaled = $t > 14 ? $t : 14 if $scaled > 14;
        $block->set_value('timeout', $scaled);
    }
});

# Lines that a block expects in the error log may be written after its
# answer (by the consumer thread, or when a delivery report comes): before
# Test::Nginx reads the log, after the block's last request, wait until
# each is there, $Deadline at most, instead of sleeping a fixed time.
Test::Nginx::Socket::add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;

    my $pats = $block->error_log;
    my $reqs = $block->request;

    return if $dry_run || !defined $pats;
    return if ref $reqs eq 'ARRAY' && $req_idx < $#$reqs;

    wait_error_log(ref $pats ? (ref $pats eq 'ARRAY' ? @$pats : $pats)
                             : grep { length } split /\n+/, $pats);
});

# Waits until every pattern (a substring, or a qr//) is found in the error
# log; returns whether they all were in time.
sub wait_error_log {
    my @pats = @_;

    my $file = $Test::Nginx::Util::ErrLogFile;
    my $deadline = time + $Deadline;

    while (1) {
        my $log = '';

        if (open my $in, '<', $file) {
            local $/;
            $log = <$in> // '';
        }

        @pats = grep { ref $_ ? $log !~ $_ : index($log, $_) < 0 } @pats;

        return 1 unless @pats;
        return 0 if time > $deadline;

        sleep 0.05;
    }
}

sub base_url {
    return 'http://127.0.0.1:' . Test::Nginx::Socket::server_port();
}

sub brokers {
    return $ENV{TEST_NGINX_KAFKA_BROKERS}
        // die "TEST_NGINX_KAFKA_BROKERS is not set\n";
}

sub shell_quote {
    my $s = shift;
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

# In the background, once TOPIC's subscriber is ready: run a command.
sub when_ready {
    my ($topic, @cmd) = @_;

    my $line = join ' ', map { shell_quote($_) }
        "$bin/geostream-when-ready", base_url() . '/geostream/status',
        $topic, int($Deadline + 0.5), @cmd;

    system("$line >/dev/null 2>&1 &") == 0
        or die "cannot start geostream-when-ready\n";
}

# POSTs a message through the producer location once TOPIC is ready.
sub produce_when_ready {
    my ($topic, $json) = @_;

    when_ready($topic, 'curl', '-fs', '-H', 'Content-Type: application/json',
               '-d', $json,
               base_url() . "/producer/$topic");
}

# Produces a message with kcat, straight to Kafka, once TOPIC is ready.
sub kcat_produce_when_ready {
    my ($topic, $key, $json) = @_;

    when_ready($topic, 'sh', '-c',
               'printf "%s\n" "$1" | kcat -b "$2" -P -t "$3" -k "$4"',
               'kcat', $json, brokers(), $topic, $key);
}

# Produces messages with kcat now: [key, value] pairs.
sub kcat_produce {
    my ($topic, @records) = @_;

    for my $r (@records) {
        open my $kcat, '|-', 'kcat', '-b', brokers(), '-P', '-t', $topic,
            '-k', $r->[0]
            or die "cannot run kcat: $!\n";
        print $kcat "$r->[1]\n";
        close $kcat or die "kcat failed\n";
    }
}

# Waits ($Deadline at most) until nginx answers on its status location:
# "--- init" code runs as soon as nginx is started, and nginx under
# valgrind (not a daemon then) may not be listening yet.
sub wait_nginx {
    my $deadline = time + $Deadline;

    until (system('curl -fs -o /dev/null ' . base_url() . '/geostream/status')
           == 0)
    {
        die "nginx never answered on its status location\n"
            if time > $deadline;
        sleep 0.05;
    }
}

# Waits ($Deadline at most) until the status location reports TOPIC with
# a field matching PATTERN (e.g. '"ready":true').
sub wait_status {
    my ($topic, $pattern) = @_;

    my $deadline = time + $Deadline;

    while (time < $deadline) {
        my $status = `curl -fs @{[base_url()]}/geostream/status`;
        return 1 if $status =~ /\{"topic":"\Q$topic\E",[^}]*$pattern/;
        sleep 0.05;
    }

    die "topic $topic never matched $pattern\n";
}

# Makes nginx follow TOPIC (a subscriber that stays in the background
# until the deadline), then produces the records with kcat and waits until
# nginx has dispatched them all, so that they are in its history.
sub follow_and_produce {
    my ($topic, @records) = @_;

    wait_nginx();

    system("curl -s -N -m $Deadline " . base_url() . "/consumer/$topic"
           . ' >/dev/null 2>&1 &') == 0
        or die "cannot start a background subscriber\n";

    wait_status($topic, '"ready":true');
    kcat_produce($topic, @records);
    wait_status($topic, '"events":' . scalar(@records) . '\b');
}

# Every record of TOPIC as [partition, offset, key, value], read with
# kcat; waits ($Deadline at most) until at least WANT records are there, since
# delivery to Kafka may still be under way when the HTTP answer arrives.
# The suite's broker is new for each run, so a topic holds what this run
# produced and nothing else.
sub kcat_records {
    my ($topic, $want) = @_;

    my $deadline = time + $Deadline;
    my @records;

    while (1) {
        open my $kcat, '-|', 'kcat', '-b', brokers(), '-C', '-t', $topic,
            '-o', 'beginning', '-e', '-q', '-f', '%p\t%o\t%k\t%s\n'
            or die "cannot run kcat: $!\n";
        @records = map { chomp; [split /\t/, $_, 4] } <$kcat>;
        close $kcat;

        last if @records >= $want || time > $deadline;
        sleep 0.1;
    }

    return @records;
}

1;
