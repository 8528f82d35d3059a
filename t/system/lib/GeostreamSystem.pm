package GeostreamSystem;

# What the system tests share: a dev broker and an nginx (master and
# workers, as in production) of their own, in a temporary directory, and
# ways to look at them.  Every wait has a deadline.

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter 'import';
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);

our @EXPORT = qw(start_broker stop_broker broker_control post_position
                 start_nginx nginx_master nginx_workers
                 geostream_status wait_until curl_to_file slurp log_lines
                 $Root $Work $Port);

our $Root = abs_path(dirname(__FILE__) . '/../../..');
our $Work = tempdir('geostream-system.XXXXXX', TMPDIR => 1, CLEANUP => 1);
# GEOSTREAM_SYSTEM_PORT lets two checkouts run their system tests at once
our $Port = $ENV{GEOSTREAM_SYSTEM_PORT} // 18620;

# nginx's workers (not root) must reach their temporary files in it
chmod 0755, $Work;

my $nginx = $ENV{NGINX_BIN} // '/usr/sbin/nginx';
my $Module = $ENV{TEST_NGINX_GEOSTREAM_MODULE}
             // "$Root/build/nginx/ngx_http_geostream_module.so";
my @broker_pids;
my $parent = $$;        # forked clients must not stop the servers

delete $ENV{NGINX};     # nginx would take it for inherited sockets

# Runs CODE until it returns true, SECONDS at most; returns its last value.
sub wait_until {
    my ($seconds, $code) = @_;

    my $deadline = time + $seconds;
    my $v;

    until (($v = $code->()) || time > $deadline) {
        sleep 0.02;
    }

    return $v;
}

# A dev broker for this test; returns its bootstrap address.
sub start_broker {
    my (@args) = @_;

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        open STDERR, '>>', "$Work/broker.log";
        exec "$Root/build/tools/geostream-devbroker", '--bootstrap-file',
             "$Work/bootstrap", @args;
        die "exec: $!";
    }

    push @broker_pids, $pid;

    wait_until(10, sub { -s "$Work/bootstrap" })
        or die "the dev broker did not start\n";

    open my $f, '<', "$Work/bootstrap" or die $!;
    chomp(my $brokers = <$f>);

    return $brokers;
}

# Stops the dev broker(s) started so far (their logs, and all they held,
# are gone with them).
sub stop_broker {
    for my $pid (@broker_pids) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }

    @broker_pids = ();
    unlink "$Work/bootstrap";
}

# Sends fault commands ("down 2", "up all") to a dev broker started with
# "--control $Work/broker.ctl"; dies unless each is answered "ok".
sub broker_control {
    my (@commands) = @_;

    require IO::Socket::UNIX;
    my $s = IO::Socket::UNIX->new(Peer => "$Work/broker.ctl")
        or die "the dev broker's control socket: $!\n";

    for my $command (@commands) {
        print {$s} "$command\n";
        my $answer = <$s> // '';
        $answer eq "ok\n" or die "dev broker: $command: $answer\n";
    }

    close $s;
}

# POSTs the position {"name":NAME,"message_id":ID,"lat":1,"lon":2} (NAME
# is "car-ID" unless given) to PATH on this test's nginx; returns
# HTTP::Tiny's response.
my $http;

sub post_position {
    my ($path, $id, $name) = @_;

    require HTTP::Tiny;
    $http //= HTTP::Tiny->new(timeout => 60);
    $name //= "car-$id";

    return $http->post("http://127.0.0.1:$Port$path", {
        headers => { 'Content-Type' => 'application/json' },
        content => qq({"name":"$name","message_id":"$id","lat":1,"lon":2}),
    });
}

# Starts nginx with the module and the given http{} contents.
sub start_nginx {
    my ($http, %opt) = @_;

    my $workers = $opt{workers} // 2;

    mkdir "$Work/$_" for qw(conf logs);

    open my $conf, '>', "$Work/conf/nginx.conf" or die $!;
    print $conf <<"_EOC_";
load_module $Module;
worker_processes $workers;
worker_rlimit_nofile 4096;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 2048; }
http {
    access_log off;
    client_body_temp_path $Work/body;
$http
}
_EOC_
    close $conf;

    system($nginx, '-p', $Work, '-c', 'conf/nginx.conf') == 0
        or die "nginx did not start\n";

    return nginx_master();
}

sub nginx_master {
    open my $f, '<', "$Work/logs/nginx.pid" or return;
    chomp(my $pid = <$f> // '');
    return $pid;
}

# the worker processes of this nginx: pid => "process title"
sub nginx_workers {
    my $master = nginx_master() or return ();
    my %workers;

    for my $dir (glob '/proc/[0-9]*') {
        open my $st, '<', "$dir/stat" or next;
        my $stat = <$st> // next;
        my ($ppid) = $stat =~ /^\d+ \(.*\) \S (\d+)/ or next;
        next unless $ppid == $master;

        open my $cmd, '<', "$dir/cmdline" or next;
        my $title = <$cmd> // '';
        $title =~ s/\0+$//;
        $workers{(split m{/}, $dir)[-1]} = $title;
    }

    return %workers;
}

# Runs curl in the background with its output in FILE; returns its pid.
sub curl_to_file {
    my ($file, @args) = @_;

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        open STDOUT, '>', $file or die "$file: $!";
        exec 'curl', @args;
        die "exec: $!";
    }

    return $pid;
}

# A file's content so far ('' when there is none yet).
sub slurp {
    my ($file) = @_;

    open my $f, '<', $file or return '';
    local $/;
    return <$f> // '';
}

# The lines of one of nginx's logs (error.log, access.log) so far; nginx
# opens its logs when it starts, so a missing one is an error.
sub log_lines {
    my ($name) = @_;

    open my $f, '<', "$Work/logs/$name" or die "$Work/logs/$name: $!\n";
    return <$f>;
}

sub geostream_status {
    return scalar `curl -fs http://127.0.0.1:$Port/geostream/status`;
}

END {
    return if $$ != $parent;

    if (my $master = nginx_master()) {
        kill 'TERM', $master;
        wait_until(10, sub { !kill 0, $master });
    }

    for my $pid (@broker_pids) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
}

1;
