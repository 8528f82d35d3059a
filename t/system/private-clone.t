# make run (tools/geostream-run) and the browser test's stack work from a
# clone in a private (0700) directory, as root's home always is: nginx's
# workers run as the checkout's owner, so they can read the map; run by
# another user, as that user.  When the workers could not read the map,
# make run says so and starts nothing.
#
# Bounded in time: the clone gets this checkout's built module, dev broker
# and Leaflet (what make build and make deps would make), and the working
# tree's files (what committing now would put in it); each run is started,
# asked for the map, Leaflet, a stream and the status, and stopped.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use GeostreamSystem;
use Test::More;

for my $f ('build/nginx/ngx_http_geostream_module.so',
           'build/tools/geostream-devbroker',
           'html/node_modules/leaflet/dist/leaflet.js') {
    -e "$Root/$f" or BAIL_OUT("$f is missing (make deps build)");
}

my $url = "http://127.0.0.1:$Port";
my @running;

sub run_ok {
    my ($what, @cmd) = @_;
    system(@cmd) == 0 or die "$what failed: @cmd\n";
}

# A clone of this checkout in DIR, with the working tree's files and the
# built pieces; owned by UID when given.
sub make_clone {
    my ($dir, $uid) = @_;

    my $clone = "$dir/clone";
    run_ok('git clone', 'git', 'clone', '-q', $Root, $clone);

    my @files = split /\0/,
        `git -C '$Root' ls-files -z -c -o --exclude-standard`;
    open my $tar, '|-',
        "tar -C '$Root' --null -T - -cf - | tar -C '$clone' -xf -"
        or die "tar: $!";
    print $tar join("\0", grep { -f "$Root/$_" } @files), "\0";
    close $tar or die "copying the working tree failed\n";

    for my $f ('build/nginx/ngx_http_geostream_module.so',
               'build/tools/geostream-devbroker', 'html/node_modules') {
        run_ok('mkdir', 'mkdir', '-p', "$clone/" . ($f =~ s{/[^/]+$}{}r));
        run_ok('cp', 'cp', '-a', "$Root/$f", "$clone/$f");
    }

    run_ok('chown', 'chown', '-R', "$uid:$uid", $dir) if defined $uid;
    return $clone;
}

# Starts CLONE's tools/geostream-run (as UID when given); returns its pid.
sub start_run {
    my ($clone, $uid) = @_;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', "$Work/run.out" or die $!;
        open STDERR, '>&', \*STDOUT or die $!;
        $ENV{PORT} = $Port;
        my @as = defined $uid
            ? ('setpriv', "--reuid=$uid", "--regid=$uid", '--clear-groups')
            : ();
        exec @as, "$clone/tools/geostream-run";
        die "exec: $!";
    }

    push @running, $pid;
    return $pid;
}

sub stop_run {
    my ($pid) = @_;

    kill 'TERM', $pid;
    waitpid $pid, 0;
    @running = grep { $_ != $pid } @running;
    return $?;
}

sub fetch {
    my ($path) = @_;
    my $body = `curl -s --max-time 5 -w '\n%{http_code}' '$url$path'`;
    my ($code) = $body =~ s/\n(\d+)\z//;
    return ($1 // 0, $body);
}

sub uid_of {
    my ($pid) = @_;
    open my $f, '<', "/proc/$pid/status" or return -1;
    while (<$f>) {
        return $1 if /^Uid:\s+(\d+)/;
    }
    return -1;
}

# the worker processes of the nginx whose master is PID
sub workers_of {
    my ($master) = @_;
    my @w;
    for my $dir (glob '/proc/[0-9]*') {
        open my $st, '<', "$dir/stat" or next;
        my ($ppid) = (<$st> // '') =~ /^\d+ \(.*\) \S (\d+)/ or next;
        push @w, (split m{/}, $dir)[-1] if $ppid == $master;
    }
    return @w;
}

# make run from CLONE serves the map, Leaflet and a stream, with workers
# running as WANT_UID
sub check_run {
    my ($what, $clone, $as, $want_uid) = @_;

    my $pid = start_run($clone, $as);
    my $up = wait_until(30, sub { (fetch('/geostream/status'))[0] == 200 });
    ok($up, "$what: make run starts") or diag(slurp("$Work/run.out"));

    my ($code, $body) = fetch('/');
    is($code, 200, "$what: the map answers 200");
    like($body, qr{<div id="map"}, "$what: with the map's page");
    ($code) = fetch('/leaflet/leaflet.js');
    is($code, 200, "$what: Leaflet answers 200");

    # the demo feed's positions come over a stream
    my $curl = curl_to_file("$Work/stream.out", '-s', '-N', '--max-time', '20',
                            "$url/consumer/geostream");
    ok(wait_until(15, sub { slurp("$Work/stream.out") =~ /^data: \{/m }),
       "$what: a stream gets positions");
    kill 'TERM', $curl;
    waitpid $curl, 0;

    my $master = slurp("$clone/build/run/logs/nginx.pid") =~ s/\s+//gr;
    my @workers = $master ? workers_of($master) : ();
    ok(@workers && !grep({ uid_of($_) != $want_uid } @workers),
       "$what: nginx's workers run as uid $want_uid")
        or diag(join ' ', map { "$_:" . uid_of($_) } @workers);

    my @denied = grep { /Permission denied/ }
                 split /\n/, slurp("$clone/build/run/logs/error.log");
    is(scalar @denied, 0, "$what: nothing is denied in the error log")
        or diag(@denied[0 .. 2]);

    my $rc = stop_run($pid);
    ok($master && wait_until(10, sub { !kill 0, $master }),
       "$what: Ctrl-C (SIGTERM) stops it") or diag("exit status $rc");

    return $clone;
}

# --- as whoever runs the tests, in a private directory of theirs ----------

my $mine = tempdir('geostream-private.XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0700, $mine;
my $clone = make_clone($mine);
check_run('own clone in a 0700 directory', $clone, undef, $>);

# the browser test's stack, from the same clone
my $script = <<'_JS_';
const { Stack } = require(process.argv[1] + '/t/e2e/stack');
(async () => {
  const stack = new Stack({ port: Number(process.argv[2]) });
  try {
    await stack.start();
    const res = await fetch(stack.base + '/');
    const leaflet = await fetch(stack.base + '/leaflet/leaflet.js');
    const page = await res.text();
    console.log(res.status, leaflet.status, /<div id="map"/.test(page));
  } finally {
    await stack.stop();
  }
})().catch((e) => {
  console.log('error', String(e.message || e));
  process.exit(1);
});
_JS_
open my $node, '-|', 'node', '-e', $script, $clone, $Port or die "node: $!";
my $out = do { local $/; <$node> } // '';
close $node;
is($out, "200 200 true\n", 'the browser test\'s stack serves the map from it');

# --- as root: a user's clone in that user's private directory -------------

SKIP: {
    skip 'not root: cannot run as another user', 11 if $> != 0;

    my $nobody = getpwnam('nobody') // skip 'no user "nobody"', 11;

    my $theirs = tempdir('geostream-nobody.XXXXXX', TMPDIR => 1,
                         CLEANUP => 1);
    chmod 0700, $theirs;
    my $their_clone = make_clone($theirs, $nobody);
    check_run('a user\'s own clone, run by that user', $their_clone,
              $nobody, $nobody);

    # root's private directory, with a clone that belongs to nobody: the
    # workers would run as nobody, who cannot enter the directory
    my $closed = tempdir('geostream-closed.XXXXXX', TMPDIR => 1,
                         CLEANUP => 1);
    chmod 0700, $closed;
    my $closed_clone = make_clone($closed);
    run_ok('chown', 'chown', '-R', "$nobody:$nobody", $closed_clone);

    my $pid = start_run($closed_clone);
    my $done = wait_until(10, sub { waitpid($pid, WNOHANG) == $pid });
    my $rc = $?;
    stop_run($pid) unless $done;        # it started: stop what it started
    @running = grep { $_ != $pid } @running;
    ok($done && $rc != 0, 'root, a clone nobody owns in a closed directory: '
       . 'make run fails');
    my $said = slurp("$Work/run.out");
    like($said, qr{workers\ run\ as\ nobody .* cannot\ read
                   \ \Q$closed_clone\E/html/\S+:
                   \ \Q$closed\E\ is\ closed\ to\ nobody}sx,
         'and says who cannot read what, and which directory is closed');
    ok(!-e "$closed_clone/build/run/logs/nginx.pid"
       && (fetch('/geostream/status'))[0] == 0,
       'and starts nothing');
}

END {
    kill 'TERM', $_ for @running;
    waitpid $_, 0 for @running;
}

done_testing();
