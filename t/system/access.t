# nginx's own access control in front of geostream's locations: auth_basic,
# and auth_request to a small server (another server{} of the same nginx)
# that allows each user some topics.  A request refused is refused before
# Kafka is touched: nothing is produced (the status counters, and the topic
# read back with kcat), and a refused stream never subscribes (the status
# page's subscribers and topics).  Refusals have geostream's JSON shape.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use JSON::PP ();
use Test::More;

my $json = JSON::PP->new;

my $brokers = start_broker('--topic', 'fleet:1', '--topic', 'drones:1',
                           '--topic', 'secret:1');

my %password = (alice => 'alice-pw', bob => 'bob-pw');
open my $pw, '>', "$Work/htpasswd" or die $!;
for my $user (sort keys %password) {
    print $pw "$user:", crypt($password{$user}, '$6$geostream$'), "\n";
}
close $pw;

# alice may use fleet and drones (and the two in one stream), bob drones;
# nobody may use secret through /acl/
my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    geostream_kafka_consumer_option fetch.wait.max.ms 5;

    map "\$http_x_geostream_user:\$http_x_geostream_topics" \$allowed {
        default                0;
        "alice:fleet"          1;
        "alice:drones"         1;
        "alice:fleet,drones"   1;
        "bob:drones"           1;
    }

    server {
        listen unix:$Work/auth.sock;
        location / {
            if (\$allowed = 0) {
                return 403;
            }
            return 204;
        }
    }

    server {
        listen 127.0.0.1:$Port;
        auth_basic            "geostream";
        auth_basic_user_file  $Work/htpasswd;

        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
        }
        location ~ ^/consumer/(?<topic>[^/]+)\$ {
            geostream_consume \$topic;
        }
        location ~ ^/acl/producer/(?<topic>[^/]+)\$ {
            auth_request /.auth;
            geostream_produce \$topic;
        }
        location ~ ^/acl/consumer/(?<topic>[^/]+)\$ {
            auth_request /.auth;
            geostream_consume \$topic;
        }
        location = /.auth {
            internal;
            proxy_pass               http://unix:$Work/auth.sock:/;
            proxy_pass_request_body  off;
            proxy_set_header         Content-Length "";
            proxy_set_header         X-Geostream-User \$remote_user;
            proxy_set_header         X-Geostream-Topics \$topic;
        }
        location = /geostream/status {
            auth_basic off;
            geostream_status;
        }
    }
_EOC_
ok($master, 'nginx starts');

sub status {
    my $s = eval { $json->decode(geostream_status()) };
    return $s // {};
}

sub produced {
    my $i = status()->{instance} // {};
    return ($i->{produced_prompt} // 0) + ($i->{produced_batching} // 0);
}

sub followed {
    my ($topic) = @_;
    my $topics = status()->{consumer}{topics} // [];
    return grep { $_->{topic} eq $topic } @$topics;
}

# one request: (status, headers, body); USER undef sends no credentials
sub request {
    my ($method, $path, $user, $password) = @_;

    my @args = ('-s', '-i', '-X', $method, '--max-time', '5');
    push @args, '-u', "$user:" . ($password // $password{$user})
        if defined $user;
    push @args, '-H', 'Content-Type: application/json', '--data-binary',
         '{"name":"v-1","lat":1,"lon":2}' if $method eq 'POST';

    open my $curl, '-|', 'curl', @args, "http://127.0.0.1:$Port$path"
        or die "curl: $!";
    local $/;
    my $answer = <$curl> // '';
    close $curl;

    my ($head, $body) = split /\r\n\r\n/, $answer, 2;
    my ($status) = ($head // '') =~ m{^HTTP/\S+ (\d+)};
    return ($status // 0, $head // '', $body // '');
}

sub error_of {
    my ($body) = @_;
    my $e = eval { $json->decode($body) } // {};
    return $e->{error} // "not JSON: $body";
}

# Kafka's own record of a topic: every message in it, read with kcat
sub in_kafka {
    my ($topic) = @_;
    my @lines = `timeout 20 kcat -b $brokers -C -t $topic -o beginning -e -q`;
    return scalar @lines;
}

# --- refused -------------------------------------------------------------

my $produced = produced();

my @refusals = (
    # method, path, user, password: status, error
    [POST => '/producer/secret', undef, undef, 401, 'unauthorized'],
    [POST => '/producer/secret', 'alice', 'wrong', 401, 'unauthorized'],
    [POST => '/acl/producer/secret', 'alice', undef, 403, 'forbidden'],
    [POST => '/acl/producer/fleet', 'bob', undef, 403, 'forbidden'],
    [POST => '/acl/producer/fleet', undef, undef, 401, 'unauthorized'],
    [GET => '/consumer/secret', undef, undef, 401, 'unauthorized'],
    [GET => '/consumer/secret', 'bob', 'wrong', 401, 'unauthorized'],
    [GET => '/acl/consumer/secret', 'alice', undef, 403, 'forbidden'],
    [GET => '/acl/consumer/secret,fleet', 'alice', undef, 403, 'forbidden'],
    [GET => '/acl/consumer/drones,secret', 'bob', undef, 403, 'forbidden'],
);

for my $r (@refusals) {
    my ($method, $path, $user, $password, $want, $error) = @$r;
    my $who = !defined $user    ? 'no credentials'
            : defined $password ? "$user (bad password)"
            :                     $user;
    my ($status, $head, $body) = request($method, $path, $user, $password);
    is($status, $want, "$method $path, $who: $want");
    like($head, qr{^Content-Type: application/json}mi, '  as JSON');
    is(error_of($body), $error, "  \"error\":\"$error\"");
    like($head, qr{^WWW-Authenticate: Basic realm="geostream"}mi,
         '  asking for credentials') if $want == 401;
}

is(produced(), $produced, 'no refused POST reached the producer');
is(in_kafka('secret'), 0, 'nothing is in Kafka\'s topic "secret"');
is(status()->{instance}{subscribers}, 0, 'no refused stream subscribed');
is(scalar followed('secret'), 0, 'the worker does not even follow "secret"');

# --- allowed -------------------------------------------------------------

sub stream {
    my ($name, $path, $user) = @_;
    return curl_to_file("$Work/$name.sse", '-s', '-N', '-u',
                        "$user:$password{$user}",
                        "http://127.0.0.1:$Port$path");
}

my @streams = (stream('alice-basic', '/consumer/fleet', 'alice'),
               stream('alice-acl', '/acl/consumer/fleet,drones', 'alice'),
               stream('bob-acl', '/acl/consumer/drones', 'bob'));
ok(wait_until(10, sub { (status()->{instance}{subscribers} // 0) == 3 }),
   'three allowed streams subscribe');
ok(wait_until(10, sub {
       my ($f) = followed('fleet');
       my ($d) = followed('drones');
       $f && $f->{ready} && $d && $d->{ready};
   }), 'their topics are ready');

my @posts = (['/producer/fleet', 'alice', 'fleet'],
             ['/acl/producer/fleet', 'alice', 'fleet'],
             ['/acl/producer/drones', 'alice', 'drones'],
             ['/acl/producer/drones', 'bob', 'drones']);
for my $p (@posts) {
    my ($path, $user, $topic) = @$p;
    my ($status, $head, $body) = request(POST => $path, $user);
    is($status, 202, "POST $path, $user: 202");
    is(($json->decode($body))->{topic}, $topic, "  produced to $topic");
}
is(produced(), $produced + 4, 'each allowed POST was produced');

# each stream gets the positions of its topics: alice's fleet stream 2,
# alice's fleet,drones stream 4, bob's drones stream 2
my %want = ('alice-basic' => 2, 'alice-acl' => 4, 'bob-acl' => 2);
for my $name (sort keys %want) {
    my $n = wait_until(10, sub {
        my $got = () = slurp("$Work/$name.sse") =~ /^data: /mg;
        $got >= $want{$name} ? $got : 0;
    });
    is($n, $want{$name}, "$name stream: $want{$name} positions");
}
kill 'TERM', @streams;
waitpid $_, 0 for @streams;

# the kcat check sees what is there: an allowed POST to "secret"
my ($status) = request(POST => '/producer/secret', 'bob');
is($status, 202, 'bob may produce to "secret" where only auth_basic applies');
ok(wait_until(20, sub { in_kafka('secret') == 1 }),
   'and Kafka then holds exactly that message');

is((grep { /\[(alert|crit)\]/ } log_lines('error.log')), 0,
   'no alert in the log');

done_testing();
