package Test::Nginx::Socket;

# Fallback for the CPAN module Test::Nginx::Socket (openresty/test-nginx),
# used only when the real one is not installed.  It implements a documented
# subset with the same semantics, so the same .t files pass under both.
# Pure core Perl; see the POD at the end for the supported sections.

use strict;
use warnings;

use Test::More ();
use IO::Socket::INET ();
use IO::Select ();
use POSIX qw(SIGQUIT SIGKILL WNOHANG EAGAIN);
use Time::HiRes qw(sleep time);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use List::Util qw(shuffle min);
use Scalar::Util qw(looks_like_number openhandle);
use Carp qw(croak);

our $VERSION = '0.29_fallback';

# ---- global settings (same names and defaults as Test::Nginx::Util) ----

our $NginxBinary          = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $Workers              = 1;
our $WorkerConnections    = 64;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled        = 'on';
our $ServerPort           = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                            || 1984;
our $ServerPortForClient  = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $ServerAddr           = '127.0.0.1';
our $ServerName           = 'localhost';
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $TestNginxSleep       = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $CheckAccumErrLog     = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $LoadModules          = $ENV{TEST_NGINX_LOAD_MODULES};
our $EventType            = $ENV{TEST_NGINX_EVENT_TYPE};
our $WorkerUser           = $ENV{TEST_NGINX_WORKER_USER};
our $NoNginxManager       = $ENV{TEST_NGINX_NO_NGINX_MANAGER} || 0;
our $RepeatEach           = 1;
our $NoRootLocation       = 0;
our $NoLongString;
our $ConfigPreamble       = '';
our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers, @ResponseBodyChecks);
our ($NginxVersion, $PrevConfig, $ErrLogFilePos);
our $RandPorts = {};    # the block's $TEST_NGINX_RAND_PORT_N

# TEST_NGINX_USE_VALGRIND: nginx runs under valgrind, in the foreground
# (daemon off), as a child of ours in a process group of its own, as the
# real module runs it.  "1" (any number) means the real module's default
# memcheck options; anything else is the whole valgrind option string.
our $UseValgrind            = $ENV{TEST_NGINX_USE_VALGRIND};
our $ValgrindExitOnFirstErr = $ENV{TEST_NGINX_VALGRIND_EXIT_ON_FIRST_ERR};
our $ChildPid;
$DaemonEnabled = 'off' if $UseValgrind;

if ($ENV{TEST_NGINX_RANDOMIZE}) {
    $ServerPort = $ServerPortForClient = gen_rand_port({})
        or die "Cannot find an available listening port number\n";
}

our $ServRoot = $ENV{TEST_NGINX_RANDOMIZE}
    ? File::Spec->rel2abs("t/servroot_$ServerPort")
    : $ENV{TEST_NGINX_SERVROOT} || File::Spec->rel2abs('t/servroot');
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";
# nginx's own stderr at start-up (shown when it fails to start).
our $StartErrFile = "$LogDir/nginx-start.stderr";

# The real module keeps its state and most of its API in Test::Nginx::Util
# (and evaluates "--- init" code there): the same names are there here.
for my $v (qw(ServerPort ServerPortForClient ServRoot HtmlDir LogDir ErrLogFile
              AccLogFile ConfFile PidFile NginxBinary NginxVersion RepeatEach
              LogLevel Timeout UseValgrind ChildPid TestNginxSleep))
{
    no strict 'refs';
    *{"Test::Nginx::Util::$v"} = \${"Test::Nginx::Socket::$v"};
}

# ---- exports ----

our @EXPORT = qw(
    run_tests run_test blocks repeat_each no_shuffle workers master_on
    master_off master_process_enabled log_level no_long_string env_to_nginx
    timeout worker_connections config_preamble no_root_location server_addr
    server_name server_root html_dir server_port server_port_for_client
    check_accum_error_log add_block_preprocessor add_cleanup_handler
    add_response_body_check bail_out is_str use_hup no_nginx_manager no_diff
    filters
);

# Test::Nginx::Util's functions of the same names, for "--- init" code.
{
    no strict 'refs';
    no warnings 'once';
    for my $f (grep { !/^(?:blocks|filters|no_diff)$/ } @EXPORT,
               qw(error_log_data access_log_data parse_time sleep_time
                  expand_env_in_text get_nginx_version kill_process))
    {
        *{"Test::Nginx::Util::$f"} = \&{"Test::Nginx::Socket::$f"};
    }
    *Test::Nginx::Util::is_running = \&_is_running;
    *Test::Nginx::Util::get_pid_from_pidfile = \&_pid_from_file;
}

# What Test::Base re-exports from Test::More.
my @TestMoreExports = qw(
    ok is isnt like unlike is_deeply cmp_ok skip todo_skip pass fail
    eq_array eq_hash eq_set plan can_ok isa_ok diag note use_ok done_testing
);

sub import {
    my ($class, @args) = @_;
    my $caller = caller;
    no strict 'refs';
    if (@args && $args[0] =~ /^-base$/i) {
        # "use Test::Nginx::Socket -Base;" in a t::MyTester subclass
        shift @args;
        push @{"${caller}::ISA"}, $class;
    }
    *{"${caller}::$_"} = \&{"Test::Nginx::Socket::$_"} for @EXPORT;
    *{"${caller}::$_"} = \&{"Test::More::$_"} for @TestMoreExports;
    # 'no_plan', tests => N, skip_all => ... are Test::More plans
    Test::More::plan(@args) if @args;
}

# ---- setters / getters (Test::Nginx::Util API) ----

sub repeat_each (@)        { $RepeatEach = shift if @_; $RepeatEach }
sub workers (@)            { $Workers = shift if @_; $Workers }
sub worker_connections (@) { $WorkerConnections = shift if @_; $WorkerConnections }
sub log_level (@)          { $LogLevel = shift if @_; $LogLevel }
sub timeout (@)            { $Timeout = shift if @_; $Timeout }
sub server_addr (@)        { $ServerAddr = shift if @_; $ServerAddr }
sub server_name (@)        { $ServerName = shift if @_; $ServerName }
sub server_port (@)        { $ServerPort = shift if @_; $ServerPort }
sub server_port_for_client (@) {
    $ServerPortForClient = shift if @_;
    $ServerPortForClient;
}
sub master_on ()             { $MasterProcessEnabled = 'on' }
sub master_off ()            { $MasterProcessEnabled = 'off' }
sub master_process_enabled (@) {
    $MasterProcessEnabled = $_[0] ? 'on' : 'off' if @_;
    $MasterProcessEnabled;
}
sub no_shuffle ()            { $NoShuffle = 1 }
sub no_long_string ()        { $NoLongString = 1 }
sub no_root_location ()      { $NoRootLocation = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub config_preamble ($)      { $ConfigPreamble = shift }
sub no_nginx_manager ()      { $NoNginxManager = 1 }
sub use_hup ()               { }    # HUP reload mode is not implemented
sub no_diff                  { }
sub sleep_time ()            { $TestNginxSleep }
sub server_root ()           { $ServRoot }
sub html_dir ()              { $HtmlDir }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($)    { unshift @CleanupHandlers, shift }
sub add_response_body_check ($) { push @ResponseBodyChecks, shift }

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" unless @_;
    for my $v (@_) {
        croak "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    return Test::More::like($got, $expected, $desc) if ref $expected eq 'Regexp';
    return Test::More::is($got, $expected, $desc);
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub cleanup {
    $_->() for @CleanupHandlers;
}

# "3", "3s" -> 3; "500ms" -> 0.5
sub parse_time {
    my $tm = shift;
    return $tm unless defined $tm;
    if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
        $tm /= 1000;
    } else {
        $tm =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $tm;
}

# ---- Test::Base-style block parsing ----

my $BlockList;
my @DefaultFilters = qw(norm trim);
my %FiltersMap;

# filters({ section => [...] }) or filters('f1', ...) like Test::Base.
sub filters {
    if (ref $_[0] eq 'HASH') { %FiltersMap = %{ $_[0] } }
    else                     { push @DefaultFilters, @_ }
}

sub _block_list {
    return $BlockList if $BlockList;
    my $fh = openhandle(\*main::DATA);
    my $spec = $fh ? do { local $/; <$fh> } : '';
    $spec //= '';
    my @blocks = map { _make_block($_) } $spec =~ /^(===.*?(?=^===|\z))/msg;

    # Meta sections: ONLY, SKIP, FIRST, LAST.
    my $has_first = grep { exists $_->{FIRST} } @blocks;
    my @chosen;
    for my $blk (@blocks) {
        if (exists $blk->{ONLY}) {
            Test::More::diag("I found ONLY: maybe you're debugging?");
            @chosen = ($blk);
            last;
        }
        next if exists $blk->{SKIP};
        if ($has_first) {
            next unless exists $blk->{FIRST};
            $has_first = 0;
        }
        push @chosen, $blk;
        last if exists $blk->{LAST};
    }
    return $BlockList = \@chosen;
}

sub _make_block {
    my $hunk = shift;
    my $block = Test::Nginx::Socket::Block->new;
    $hunk =~ s/\A===[ \t]*(.*)\s+// or die "bad block: $hunk";
    my $name = $1;
    # "--- name filters\n" or "--- name: one-line value\n"
    my @parts = split /^--- +\(?(\w+)\)? *(.*)?\n/m, $hunk;
    shift @parts;    # the block description
    while (@parts) {
        my ($type, $filters, $value) = splice @parts, 0, 3;
        croak "'$type' is a reserved name. Use something else.\n"
            if $type =~ /^_/;
        $value   //= '';
        $filters //= '';
        if ($filters =~ /:(\s|\z)/) {
            croak "Extra lines not allowed in '$type' section" if $value =~ /\S/;
            ($filters, $value) = split /\s*:(?:\s+|\z)/, $filters, 2;
            $value //= '';
            $value =~ s/^\s*(.*?)\s*$/$1/;
        }
        $block->{_filters}{$type} = $filters;
        push @{ $block->{_order} }, $type;
        $block->set_value($type, $value);
    }
    $block->set_value(name => $name);
    return $block;
}

sub _run_filters {
    my $block = shift;
    for my $type (@{ $block->{_order} || [] }) {
        my @value = @{ $block->{$type} };
        my $map = $FiltersMap{$type} || [];
        my (@filters, @append);
        for my $item (@DefaultFilters, (ref $map ? @$map : $map),
                      split /\s+/, $block->{_filters}{$type} =~ s/^\s+//r)
        {
            my $f = $item;    # a copy: the loop must not edit the lists
            last unless length $f;
            if ($f =~ s/^-//)     { @filters = grep { $_ ne $f } @filters }
            elsif ($f =~ s/^\+//) { push @append, $f }
            else                  { push @filters, $f }
        }
        for my $f (@filters, @append) {
            my $arg = $f =~ s/=(.*)$// ? $1 : undef;
            @value = _apply_filter($f, $arg, @value);
            $block->set_value($type, @value);
        }
    }
}

sub _apply_filter {
    my ($f, $arg, @v) = @_;
    no strict 'refs';
    if (defined &{"main::$f"}) {    # user-defined filter in the .t file
        local $_ = join '', map { $_ // '' } @v;
        my @r = &{"main::$f"}(@v);
        @r = ($_) if !@r || (@r == 1 && defined $r[0] && $r[0] =~ /\A(\d+|)\z/);
        return @r;
    }
    my $s = $v[0];
    for ($f) {
        if ($_ eq 'norm') {
            $s //= '';
            $s =~ s/\015\012/\n/g;
            $s =~ s/\r/\n/g;
            return $s;
        }
        # leading blank lines and trailing whitespace after the last "\n"
        if ($_ eq 'trim')    { return map { s/\A([ \t]*\n)+//r =~ s/(?<=\n)\s*\z//r } @v }
        if ($_ eq 'chomp')   { return map { chomp(my $c = $_); $c } @v }
        if ($_ eq 'chop')    { return map { chop(my $c = $_); $c } @v }
        if ($_ eq 'unchomp') { return map { "$_\n" } @v }
        if ($_ eq 'eval')    { return Test::Nginx::Socket::Sandbox::run($s) }
        if ($_ eq 'escape')  { $s =~ s/(\\.)/eval "qq{$1}"/ge; return $s }
        if ($_ eq 'array')   { return [@v] }
        if ($_ eq 'join')    { return join $arg // '', @v }
        if ($_ eq 'lines')   { return length $s ? ($s =~ /^(.*\n?)/gm) : () }
        if ($_ eq 'append')  { return map { $_ . ($arg // '') } @v }
        if ($_ eq 'prepend') { return map { ($arg // '') . $_ } @v }
        if ($_ eq 'regexp') {
            my $flags = $arg;
            if ($s =~ /\n.*?\n/s) { $flags //= 'xism' } else { chomp $s }
            $flags //= '';
            my $re = eval "qr{$s}$flags";
            die $@ if $@;
            return $re;
        }
        if ($_ eq 'base64_decode') {
            require MIME::Base64;
            return MIME::Base64::decode_base64($s);
        }
        if ($_ eq 'base64_encode') {
            require MIME::Base64;
            return MIME::Base64::encode_base64($s);
        }
    }
    die "Can't find a function or method for '$f' filter\n";
}

# blocks(): the count in scalar context, the filtered blocks in list context.
sub blocks () {
    my $list = _block_list();
    return scalar @$list unless wantarray;
    for my $blk (@$list) {
        next if $blk->{_filtered}++;
        _run_filters($blk);
    }
    return @$list;
}

# ---- nginx process management ----

sub gen_rand_port {
    my $used = shift;
    for (1 .. 1000) {
        my $port = int(rand 63550) + 1985;
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(LocalAddr => $ServerAddr,
                                         LocalPort => $port, Proto => 'tcp');
        next unless $sock;
        close $sock;
        return $port;
    }
    return undef;
}

# Replace $TEST_NGINX_* by the environment ($TEST_NGINX_RAND_PORT_N by a
# free port); an undefined variable aborts the run like the real module.
sub expand_env_in_text {
    my ($text, $name, $rand_ports) = @_;
    return undef unless defined $text;
    return $text if ref $text;    # an eval'd array or qr//
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        if ($var =~ /^TEST_NGINX_RAND_PORT_[0-9]+$/) {
            $rand_ports->{$var} //= gen_rand_port(
                { $ServerPort => 1, map { $_ => 1 } values %$rand_ports })
                // bail_out("$name - Cannot find an available listening port number for $var.\n");
        } else {
            defined $ENV{$var} or bail_out("$name - No environment $var defined.\n");
            $ENV{$var};
        }
    }eg;
    return $text;
}

sub get_nginx_version {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to get the version of the Nginx in PATH: " . ($out // ''));
    }
    return sprintf("%d.%03d%03d", $1, $2, $3)
        if $out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s;
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

sub _pid_from_file {
    open my $in, '<', $PidFile or return undef;
    my $pid = <$in> // '';
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

# kill(0) is also true for a zombie the (container) init has not reaped yet.
sub _is_running {
    my $pid = shift;
    return 0 unless $pid && kill 0, $pid;
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh> // '';
        return 0 if $stat =~ /^\d+ \(.*\) Z/s;
    }
    return 1;
}

# QUIT (graceful), wait up to timeout(), then KILL the whole process group.
# Under valgrind the process exits only once memcheck has looked for
# leaks, which is what this wait is for (TEST_NGINX_TIMEOUT raises it).
sub kill_process {
    my ($pid, $name) = @_;
    kill SIGQUIT, $pid;
    my $deadline = time + $Timeout;
    while (time < $deadline && _is_running($pid)) {
        waitpid $pid, WNOHANG;
        sleep 0.02;
    }
    return unless _is_running($pid);
    warn "$name - timeout when waiting for the process $pid to exit\n";
    kill SIGKILL, (getpgrp($pid) == $pid ? -$pid : $pid);
    for (1 .. 50) {
        waitpid $pid, WNOHANG;
        last unless _is_running($pid);
        sleep 0.02;
    }
}

# nginx under valgrind writes its pid file late (or never, if it fails to
# start): then the child we forked is the process to stop.
sub _stop_nginx {
    my $name = shift;
    my $pid = _pid_from_file() // $ChildPid;
    kill_process($pid, $name) if _is_running($pid);
    unlink $PidFile;
    if (defined $ChildPid) {
        kill_process($ChildPid, $name) if _is_running($ChildPid);
        waitpid $ChildPid, WNOHANG;
        undef $ChildPid;
    }
}

# True once the nginx we forked (under valgrind) has exited.
sub _child_gone {
    return 0 unless defined $ChildPid;
    return waitpid($ChildPid, WNOHANG) != 0 || !_is_running($ChildPid);
}

sub setup_server_root {
    if (-d $ServRoot) {
        # Only remove what we create, so a mis-set TEST_NGINX_SERVROOT
        # cannot wipe real data (rmdir fails on anything unexpected).
        remove_tree($ConfDir, $HtmlDir, $LogDir, glob("$ServRoot/*_cache"),
                    glob("$ServRoot/*_temp"));
        rmdir $ServRoot or bail_out("Can't remove $ServRoot (not empty?): $!");
    }
    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        mkdir $dir or bail_out("Failed to do mkdir $dir: $!\n");
    }
    _write_file("$HtmlDir/index.html", '<html><head><title>It works!</title>'
                . '</head><body>It works!</body></html>');
}

sub _write_file {
    my ($path, $body) = @_;
    open my $out, '>', $path or bail_out("Cannot open $path for writing: $!\n");
    binmode $out;
    print $out $body;
    close $out;
}

# --- user_files: ">>> name [touch -t date]" lines followed by the content.
sub write_user_files {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;
    my $files = $block->user_files or return;
    if (!ref $files) {
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ />>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, undef, $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: ", ref $files,
                 ", only scalar or ARRAY are accepted");
    }
    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        make_path($1) if $path =~ m{(.*)/} && !-d $1;
        _write_file($path, expand_env_in_text($body // '', $name, $rand_ports));
        if ($date) {
            system("TZ=GMT touch -t '$date' '$path'") == 0
                or bail_out("Failed to touch $path\n");
        }
    }
}

# The generated nginx.conf follows Test::Nginx::Util::write_config_file.
sub write_config_file {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;
    my $http_config = expand_env_in_text($block->http_config, $name, $rand_ports) // '';
    my $main_config = $block->main_config // '';
    if ($LoadModules) {
        $main_config .= join ' ', map { "load_module $_;" } grep { $_ }
                        split /\s+/, $LoadModules;
    }
    $main_config = expand_env_in_text($main_config, $name, $rand_ports);
    my $post_main_config =
        expand_env_in_text($block->post_main_config, $name, $rand_ports) // '';
    my $err_log_file = expand_env_in_text($block->error_log_file || $ErrLogFile,
                                          $name, $rand_ports);
    my $server_name = $block->server_name // $ServerName;
    my $env = join '', map { my $v = /\s/ ? "'$_'" : $_; "env $v;\n" } @EnvToNginx;
    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    my $use_events = $EventType ? "    use $EventType;\n" : '';
    # temporary files in the server root, not where the nginx binary was
    # configured to put them (Debian's: /var/lib/nginx)
    my $nginx_v = `$NginxBinary -V 2>&1` // '';
    my $temp_paths = join ' ', map { "${_}_temp_path $ServRoot/${_}_temp;" }
        grep { $nginx_v !~ /--without-http_${_}_module/ } qw(fastcgi scgi uwsgi);
    $temp_paths = "proxy_temp_path $ServRoot/proxy_temp; $temp_paths"
        if $http_config !~ /\bproxy_temp_path\b/;
    $temp_paths = "client_body_temp_path $ServRoot/client_body_temp; $temp_paths"
        if $http_config !~ /\bclient_body_temp_path\b/;
    my $user = defined $WorkerUser ? "user $WorkerUser;\n"
             : $> == 0             ? "user root;\n"    # workers can write servroot
             : '';

    _write_file($ConfFile, <<"_EOC_");
worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $err_log_file $LogLevel;
pid       $PidFile;
env MOCKEAGAIN_VERBOSE;
env MOCKEAGAIN;
env MOCKEAGAIN_WRITE_TIMEOUT_PATTERN;
env LD_PRELOAD;
env LD_LIBRARY_PATH;
env DYLD_INSERT_LIBRARIES;
env DYLD_FORCE_FLAT_NAMESPACE;
$env
$main_config

http {
    access_log $AccLogFile; $temp_paths

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config

    server {
        listen          $ServerPort;
        server_name     '$server_name';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
$use_events}
env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;
$user
_EOC_
}

# The real module's valgrind command line: TEST_NGINX_USE_VALGRIND=1 (a
# number) gives its memcheck options and ./valgrind.suppress if there is
# one; any other value is used as the options.
sub _valgrind_command {
    my $cmd = shift;
    return "valgrind -q $UseValgrind $cmd" if $UseValgrind !~ /^\d+$/;
    my $opts = '--tool=memcheck --leak-check=full --keep-debuginfo=yes '
               . '--show-possibly-lost=no';
    if ($ValgrindExitOnFirstErr) {
        if (`valgrind --help` =~ /exit-on-first-error/) {
            $opts .= ' --exit-on-first-error=yes --error-exitcode=1';
        } else {
            warn "WARNING: valgrind does not support --exit-on-first-error option\n";
        }
    }
    $opts .= ' --suppressions=valgrind.suppress' if -f 'valgrind.suppress';
    return "valgrind --num-callers=100 -q $opts --gen-suppressions=all $cmd";
}

# Runs nginx; returns the wait status (0 once forked under valgrind, whose
# nginx stays in the foreground).  No retry loop: nginx itself retries
# bind() for 2.5s if the port is still busy.
sub _start_nginx {
    my $name = shift;
    my $cmd = "$NginxBinary -e $ErrLogFile -p $ServRoot/ -c $ConfFile";
    if (!$UseValgrind) {
        system("$cmd > /dev/null 2> $StartErrFile");
        return $?;
    }
    # valgrind's report goes to our stderr, as with the real module,
    # unless the options name a --log-file
    $cmd = _valgrind_command($cmd);
    warn "$name\n";
    my $pid = fork;
    bail_out("$name - fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        setpgrp;
        exec("exec $cmd > /dev/null") or POSIX::_exit(127);
    }
    $ChildPid = $pid;
    return 0;
}

sub _slurp {
    open my $in, '<', shift or return '';
    local $/;
    return scalar(<$in>) // '';
}

sub _can_run {
    my $cmd = shift;
    return -f $cmd && -x _ if $cmd =~ m{/};
    return grep { -f "$_/$cmd" && -x _ } split /:/, $ENV{PATH} // '';
}

# ---- the test driver ----

our @UnsupportedSections = qw(
    http2 http3 curl curl_error curl_options curl_protocol http09
    tcp_listen tcp_reply tcp_query tcp_query_len udp_listen udp_reply udp_query
    stap stap_out stap_out_like stap_out_unlike shutdown_error_log
    no_shutdown_error_log skip_nginx2 skip_openssl todo todo_nginx
    request_eval response_body_eval reload_fails
);

sub run_tests () {
    $NginxVersion = get_nginx_version();
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;
    for my $block ($NoShuffle ? blocks() : shuffle blocks()) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_test($block);
    }
    cleanup();
    # The real module needs a plan; be lenient but say so.
    if (!Test::More->builder->has_plan) {
        Test::More::diag("no test plan declared (the real Test::Nginx requires one)");
        Test::More::done_testing();
    }
}

sub run_test {
    my $block = shift;
    return if defined $block->SKIP;
    my $name = $block->name;

    # Ignoring these would let a block pass without checking anything.
    my @unsupported = grep { defined $block->$_ } @UnsupportedSections;
    if (@unsupported) {
        Test::More::fail("$name - not supported by the fallback "
                         . "Test::Nginx::Socket: --- " . join(', --- ', @unsupported));
        return;
    }

    my $rand_ports = $RandPorts = {};
    my $config = expand_env_in_text($block->config, $name, $rand_ports);
    local $LogLevel = $block->log_level || $LogLevel;

    my ($should_skip, $tests_to_skip, $skip_reason);
    if (defined(my $spec = $block->skip_eval)) {
        if ($spec =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            ($tests_to_skip, $skip_reason) = ($1, 'skip_eval');
            $should_skip = eval $2;
            bail_out("$name - skip_eval - failed to eval the Perl code \"$2\": $@") if $@;
        }
    }
    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$/
            or bail_out("$name - Invalid --- skip_nginx spec: $spec");
        $tests_to_skip = $1;
        $skip_reason = $6 || "nginx version $2 $3.$4.$5";
        my $ver = sprintf "%d.%03d%03d", $3, $4, $5;
        $should_skip = eval "$NginxVersion $2 $ver";
    }
    $skip_reason //= 'various reasons';

    # A block without --- config reuses the running nginx (no restart).
    my $should_restart = !$NoNginxManager;
    if (!defined $config && !$NoNginxManager) {
        bail_out("$name - No '--- config' section specified and could not get "
                 . "previous one. Use TEST_NGINX_NO_NGINX_MANAGER ?")
            unless defined $PrevConfig;
        $should_restart = 0;
    }

    if ($should_restart && !$should_skip) {
        $PrevConfig = $config;
        _stop_nginx($name);
        setup_server_root();
        write_user_files($block, $rand_ports);
        write_config_file($block, $config, $rand_ports);
        bail_out("$name - Cannot find the nginx executable in the PATH environment")
            unless _can_run($NginxBinary);
        $ErrLogFilePos = 0;

        if (defined(my $must_die = $block->must_die)) {
            local $UseValgrind;    # the real module does the same
            for my $i (0 .. $RepeatEach - 1) {
                my $status = _start_nginx($name);
                my $exit_code = $status >> 8;
                if ($status == -1) {
                    Test::More::fail("$name - failed to execute the nginx command line");
                } elsif ($status & 128) {
                    Test::More::fail("$name - nginx core dumped");
                } elsif (looks_like_number($must_die)) {
                    Test::More::is($must_die, $exit_code,
                                   "$name - die with the expected exit code");
                } else {
                    Test::More::isnt($status, 0, "$name - die as expected");
                }
                check_error_log($block, undef, $i, 0);
                if ($status == 0) {
                    warn "WARNING: $name - nginx must die but it does not; killing it (req $i)\n";
                    sleep $TestNginxSleep;
                    _stop_nginx($name);
                }
            }
            return;
        }

        my $status = _start_nginx($name);
        if ($status != 0) {
            # The real module retries for 30s and then bails out of the
            # whole run; we fail this block and go on with the next one.
            undef $PrevConfig;
            Test::More::fail("$name - failed to start nginx (status $status)");
            my @log = split /^/, _slurp($ErrLogFile);
            Test::More::diag("nginx stderr:\n" . _slurp($StartErrFile)
                             . "error.log (last lines):\n"
                             . join '', @log[($#log > 40 ? $#log - 40 : 0) .. $#log]);
            return;
        }
        sleep $TestNginxSleep;
    }

    if (defined(my $init = $block->init)) {
        my $err = Test::Nginx::Util::_eval_init($init);
        bail_out("$name - init failed: $err") if $err;
    }

    $ErrLogFilePos = 0;
    for my $i (0 .. $RepeatEach - 1) {
        write_user_files($block, $rand_ports) if $i > 0;
        if ($should_skip && defined $tests_to_skip) {
            SKIP: { Test::More::skip("$name - $skip_reason", $tests_to_skip) }
        } else {
            run_test_helper($block, $i);
        }
    }

    # As the real module does under valgrind: nginx stops after each
    # block, so that what memcheck reports at exit belongs to this block.
    _stop_nginx($name) if $UseValgrind && !$NoNginxManager;
}

sub run_test_helper {
    my ($block, $rep_idx) = @_;
    my $name = $block->name;
    my $reqs = _requests_from_block($block);
    bail_out("$name - request empty") unless @$reqs;
    my $timeout = parse_time($block->timeout) // $Timeout;

    my ($res, $need_array);
    my $req_idx = 0;
    for my $one_req (@$reqs) {
        my ($raw, $head_req) = _send_request($block, $one_req, $timeout);
        my $n = 0;    # pipelined responses still to parse
        if ($block->pipelined_requests) {
            $n = @{ $block->pipelined_requests };
            $need_array = 1;
        } else {
            $need_array = @$reqs > 1;
        }
        while (1) {
            $raw //= '';
            my ($raw_headers, $left);
            if (!defined $block->ignore_response) {
                ($res, $raw_headers, $left) = _parse_response($name, $raw, $head_req);
            }
            if (!$n) {
                warn "WARNING: $name - unexpected extra bytes after last chunk in "
                     . "response: \"" . _fmt_str($left) . "\"\n" if $left;
            } else {
                $raw = $left;
                $n--;
            }
            if (!defined $block->ignore_response) {
                check_error_code($block, $res, $req_idx, $need_array);
                check_raw_response_headers($block, $raw_headers, $req_idx, $need_array);
                check_response_headers($block, $res, $raw_headers, $req_idx, $need_array);
                _transform_response_body($block, $res, $req_idx);
                check_response_body($block, $res, $req_idx, $rep_idx, $need_array);
            }
            if ($n || $req_idx < $#$reqs) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $res, $rep_idx, $need_array);
                check_access_log($block, $rep_idx) unless defined $block->ignore_response;
            }
            $req_idx++;
            last unless $n;
        }
    }
    sleep $block->wait if $block->wait;
    check_error_log($block, $res, $rep_idx, $need_array);
    check_access_log($block, $rep_idx) unless defined $block->ignore_response;
}

# ---- building and sending requests ----

# "Name: value" lines -> CRLF headers; "#" lines are comments.
sub _parse_more_headers {
    my $in = shift // '';
    my ($out, $is_chunked) = ('', 0);
    for my $line (split /\n+/, $in) {
        next if $line =~ /^\s*#/ || $line eq '';
        my ($key, $val) = split /:\s*/, $line, 2;
        $val //= '';
        $is_chunked = 1 if lc $key eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

# "METHOD [URI [HTTP/x.y]]\n[body]" -> a full HTTP request.  The body is
# stripped of surrounding whitespace when we compute Content-Length.
sub _build_request {
    my ($name, $request, $more_headers, $conn) = @_;
    my ($hdrs, $is_chunked) = _parse_more_headers($more_headers);
    my ($first, $content) = split /\n/, $request // '', 2;
    bail_out("$name - Request line should be non-empty") unless $first;
    $first =~ /^\s*(\S+) *(?:(\S+) *)?(?:(\S+) *)?\s*$/
        or bail_out("$name - Request line is not valid. Should be 'meth [url "
                    . "[version]]' but got \"$first\".");
    my ($meth, $url, $ver) = ($1, $2 // '/', $3 // 'HTTP/1.1');
    $content //= '';
    my $len_header = '';
    if (!$is_chunked && $content ne '' && $hdrs !~ /(?:^|\n)Content-Length:/) {
        $content =~ s/^\s+|\s+$//gs;
        $len_header = "Content-Length: " . length($content) . "\r\n";
    }
    my $auto = '';
    $auto .= "Host: $ServerName\r\n" if $hdrs !~ /(?:^|\n)Host:/msi;
    $auto .= "Connection: $conn\r\n" if $hdrs !~ /(?:^|\n)Connection/msi;
    return "$meth $url $ver\r\n$auto$hdrs$len_header\r\n$content";
}

# Returns a list of requests, each an array ref of raw packets to write.
sub _requests_from_block {
    my $block = shift;
    my $name = $block->name;
    if (defined(my $raw = $block->raw_request)) {
        return [ ref $raw eq 'ARRAY' ? [@$raw] : [$raw] ];
    }
    my $more = $block->more_headers // '';
    my $hdr_for = sub {
        my $i = shift;
        return $more unless ref $more eq 'ARRAY';
        return $more->[$i] // bail_out("--- more_headers lacks data for the ${i}th request");
    };
    if (my $reqs = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $reqs eq 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$reqs) {
            my $req = expand_env_in_text($reqs->[$i], $name, $RandPorts);
            $all .= _build_request($name, $req, $hdr_for->($i),
                                   $i == $#$reqs ? 'close' : 'keep-alive');
        }
        return [[$all]];
    }
    my $request = $block->request;
    bail_out("$name - Request line should be non-empty") unless defined $request;
    if (!ref $request) {
        # leading blank and "# comment" lines are skipped
        1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
        return [[ _build_request($name, $request, $hdr_for->(0), 'close') ]];
    }
    bail_out("$name - invalid ---request : MUST be string or array of requests")
        unless ref $request eq 'ARRAY';
    my @list;
    for my $i (0 .. $#$request) {
        bail_out("$name - request packets (array of arrays) are not supported "
                 . "by the fallback Test::Nginx::Socket") if ref $request->[$i];
        push @list, [ _build_request($name, $request->[$i], $hdr_for->($i), 'close') ];
    }
    return \@list;
}

# Sends the packets and reads until EOF.  --- timeout is the maximum wait
# between two I/O events; on expiry the socket is closed and, unless
# --- abort is given, a test fails.  Returns (raw response, is HEAD).
sub _send_request {
    my ($block, $packets, $timeout) = @_;
    my $name = $block->name;
    my @bits = @$packets;
    my $head_req = join('', @bits) =~ /^\s*HEAD\s+/ ? 1 : 0;
    my $addr = $block->server_addr_for_client // $ServerAddr;
    local $SIG{PIPE} = 'IGNORE';

    my $sock;
    for my $try (1 .. 50) {
        $sock = IO::Socket::INET->new(PeerAddr => $addr, Proto => 'tcp',
                                      PeerPort => $ServerPortForClient,
                                      Timeout => $timeout) and last;
        my $err = $!;
        # No point in waiting for an nginx that is gone (its pid file may
        # appear a moment after the foreground process exits).
        last if $try > 3 && !$NoNginxManager
                && (defined $ChildPid ? _child_gone()
                                      : !_is_running(_pid_from_file()));
        my $wait = min(0.5, ($TestNginxSleep + $TestNginxSleep * $try) * $try / 2);
        warn "$name - Can't connect to $addr:$ServerPortForClient: $err\n" if $wait >= 0.5;
        sleep $wait;
    }
    if (!$sock) {
        Test::More::fail("$name - Can't connect to $addr:$ServerPortForClient: $! (aborted)\n");
        return;
    }
    $sock->blocking(0);

    my $sel = IO::Select->new($sock);
    my ($resp, $buf, $off, $writing) = ('', shift(@bits), 0, 1);
    # Fallback-only safety net: a stream that never idles for --- timeout
    # would keep the real module waiting forever; fail instead of hanging.
    my $deadline = time + ($timeout * 10 > 10 ? $timeout * 10 : 10);
    while (1) {
        if (time > $deadline) {
            Test::More::fail("$name - response still streaming after "
                             . "10 x --- timeout; the real Test::Nginx would "
                             . "wait forever (--- timeout is an idle timeout)");
            last;
        }
        my ($r, $w) = IO::Select->select($sel, $writing ? $sel : undef, undef, $timeout);
        if (!$r && !$w) {
            if (!defined $block->abort) {
                Test::More::fail("ERROR: client socket timed out - $name\n");
            } else {
                sleep 0.005;
            }
            last;
        }
        if ($w && @$w) {
            my $bytes = syswrite $sock, $buf, length($buf) - $off, $off;
            if (!defined $bytes) {
                next if $! == EAGAIN;
                warn "write failed: $!\n";
                $resp ||= "write failed: $!";
                last;
            }
            $off += $bytes;
            if ($off >= length $buf) {
                if (@bits) {
                    ($buf, $off) = (shift(@bits), 0);
                    sleep $block->raw_request_middle_delay
                        if $block->raw_request_middle_delay;
                } else {
                    $writing = 0;
                    if (defined(my $how = $block->shutdown)) {
                        shutdown $sock, ($how eq '' ? 1 : $how);
                    }
                }
            }
        }
        if ($r && @$r) {
            my $bytes = sysread $sock, my $chunk, 4096;
            if (!defined $bytes) {
                next if $! == EAGAIN;
                warn "WARNING: $name - HTTP response read failure: $!";
                last;
            }
            last if $bytes == 0;
            $resp .= $chunk;
        }
    }
    close $sock;
    return ($resp, $head_req);
}

# ---- response parsing (what HTTP::Response->parse + Test::Nginx do) ----

sub _header {
    my ($res, $key) = @_;
    return undef unless $res;
    ($key = lc $key) =~ tr/_/-/;    # HTTP::Headers treats "_" as "-"
    my @vals = map { $_->[1] } grep { lc $_->[0] eq $key } @{ $res->{headers} };
    return @vals ? join(', ', @vals) : undef;
}

# Returns ($res, $raw_headers, $left); $res is undef on bad chunked data.
sub _parse_response {
    my ($name, $raw, $head_req) = @_;
    my $raw_headers = $raw =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my ($status_line, $str) = split /\n/, $raw, 2;
    $status_line //= '';
    $str //= '';
    $status_line =~ s/\r\z//;
    my $code = $status_line =~ /^\d{3} / ? (split ' ', $status_line)[0]
             : (split ' ', $status_line, 3)[1];
    undef $code if defined $code && $code !~ /^\d+$/;

    my $res = { code => $code, headers => [] };
    while (1) {
        if ($str =~ s/^([^\s:]+)[ \t]*: ?(.*)\n?//) {
            my ($key, $val) = ($1, $2);
            push @{ $res->{headers} }, [$key, $val =~ s/\r\z//r];
        } elsif (@{ $res->{headers} } && $str =~ s/^([ \t].*)\n?//) {
            my $more = $1;
            $res->{headers}[-1][1] .= "\n" . ($more =~ s/\r\z//r);
        } else {
            $str =~ s/^\r?\n//;
            last;
        }
    }
    $res->{content} = $str;
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $left;
    my $enc = _header($res, 'Transfer-Encoding');
    my $len = _header($res, 'Content-Length');
    if (defined $enc && $enc eq 'chunked') {
        # Like the real module, a truncated chunked body is a failure,
        # even with --- abort.
        my $decoded = '';
        while (1) {
            if ($str =~ /\G0[ \t]*\r\n\r\n/gc) {
                $left = $1 if $str =~ /\G(.+)/gcs;
                last;
            }
            if ($str =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*\r\n/gc) {
                my ($size, $pos) = (hex $1, pos $str);
                if (length($str) - $pos < $size) {
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(not enought octets for the data section)");
                    return;
                }
                $decoded .= substr $str, $pos, $size;
                pos($str) = $pos + $size;
                if ($str !~ /\G\r\n/gc) {
                    Test::More::fail("$name - invalid chunked data received (expected CRLF).");
                    return;
                }
            } elsif ($str =~ /\G(.+)/gcs) {
                Test::More::fail("$name - invalid chunked body received: $1");
                return;
            } else {
                Test::More::fail("$name - no last chunk found - $str");
                return;
            }
        }
        $res->{content} = $decoded;
    } elsif (defined $len && $len =~ /^\d+$/) {
        if (length $str < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got " . length($str) . "\n" unless $head_req;
        } elsif (length $str > $len) {
            $left = substr $str, $len;
            $res->{content} = substr $str, 0, $len;
        }
    }
    return ($res, $raw_headers, $left);
}

# ---- checks ----

# For several requests the expected values must be arrays.
sub _indexed {
    my ($name, $value, $idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return ref $value eq 'ARRAY' ? $value->[0] : $value;
}

sub check_error_code {
    my ($block, $res, $idx, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->{code}) || '';
    if (defined $block->error_code_like) {
        my $val = _indexed($name, $block->error_code_like, $idx, $need_array);
        Test::More::like($code, qr/$val/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        Test::More::is($code, _indexed($name, $block->error_code, $idx, $need_array),
                       "$name - status code ok");
    } else {
        Test::More::is($code, 200, "$name - status code ok");
    }
}

sub check_raw_response_headers {
    my ($block, $raw_headers, $idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->raw_response_headers_like) {
        my $re = _indexed($name, $block->raw_response_headers_like, $idx, $need_array);
        Test::More::like($raw_headers, qr/$re/s, "$name - raw resp headers like");
    }
    if (defined $block->raw_response_headers_unlike) {
        my $re = _indexed($name, $block->raw_response_headers_unlike, $idx, $need_array);
        Test::More::unlike($raw_headers, qr/$re/s, "$name - raw resp headers unlike");
    }
}

# "Name: value" per line; "!Name" means absent from the raw headers.
sub parse_headers {
    my %headers;
    for my $line (split /\n/, shift // '') {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            $headers{$line} = undef;
        } else {
            my ($key, $val) = split /\s*:\s*/, $line, 2;
            $headers{$key} = $val;
        }
    }
    return \%headers;
}

sub check_response_headers {
    my ($block, $res, $raw_headers, $idx, $need_array) = @_;
    my $name = $block->name;
    # As in the real module, response_headers_like is ignored when
    # response_headers is present.
    if (defined $block->response_headers) {
        my $h = parse_headers(_indexed($name, $block->response_headers, $idx, $need_array));
        for my $key (sort keys %$h) {
            my $val = $h->{$key};
            if (!defined $val) {
                Test::More::unlike($raw_headers // '', qr/^\s*\Q$key\E\s*:/ms,
                                   "$name - header $key not present in the raw headers");
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            Test::More::is(_header($res, $key) // '', $val, "$name - header $key ok");
        }
    } elsif (defined $block->response_headers_like) {
        my $h = parse_headers(_indexed($name, $block->response_headers_like, $idx,
                                       $need_array));
        for my $key (sort keys %$h) {
            my $val = $h->{$key} // '';
            Test::More::like(_header($res, $key) // '', qr/^$val$/,
                             "$name - header $key like ok");
        }
    }
}

# --- response_body_filters: names (uc lc ...) or code refs, applied to the
# actual body before response_body(_like) compares it.
sub _transform_response_body {
    my ($block, $res, $idx) = @_;
    my $filters = $block->response_body_filters;
    return unless defined $filters && $res && defined $res->{content};
    my $name = $block->name;
    $filters = [split ' ', $filters] unless ref $filters;
    $filters = [$filters] unless ref $filters eq 'ARRAY';
    if (ref $filters->[0] eq 'ARRAY') {
        $filters = $filters->[$idx] // bail_out("$name - the ---response_body_filters "
                                                 . "two-dimensional array unmatch the "
                                                 . "specified request($idx)");
    }
    my %builtin = (
        uc => sub { uc shift }, lc => sub { lc shift },
        ucfirst => sub { ucfirst shift }, lcfirst => sub { lcfirst shift },
        length => sub { length shift },
        md5_hex => sub { require Digest::MD5; Digest::MD5::md5_hex(shift) },
        sha1_hex => sub { require Digest::SHA; Digest::SHA::sha1_hex(shift) },
    );
    for my $f (ref $filters eq 'ARRAY' ? @$filters : $filters) {
        my $code = ref $f eq 'CODE' ? $f : $builtin{$f}
            // bail_out("$name - unknown filter, \"$f\", specified in the "
                        . "--- response_body_filters section");
        $res->{content} = $code->($res->{content});
    }
}

sub check_response_body {
    my ($block, $res, $idx, $rep_idx, $need_array) = @_;
    my $name = $block->name;
    my $content = $res ? $res->{content} : undef;
    if (defined $content) {
        $content =~ s/^TE: deflate,gzip;q=0\.3\r\n//gms;
        $content =~ s/^Connection: TE, close\r\n//gms;
    }
    # response_body wins over response_body_like, as in the real module.
    if (defined $block->response_body) {
        my $expected = _indexed($name, $block->response_body, $idx, $need_array);
        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $expected = expand_env_in_text($expected, $name, $RandPorts);
        }
        if (ref $expected) {
            Test::More::like($content, $expected, "$name - response_body - like "
                             . "(repeated req $rep_idx, req $idx)");
        } else {
            Test::More::is($content, $expected, "$name - response_body - response is "
                           . "expected (repeated req $rep_idx, req $idx)");
        }
    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $pat = _indexed($name, $type eq 'like' ? $block->response_body_like
                                                  : $block->response_body_unlike,
                           $idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        # Not anchored; only /s.  A multi-line section keeps its last "\n".
        my $summary = _trim($content) // '';
        my $desc = "$name - response_body_$type - response is expected ($summary)";
        if ($type eq 'like') { Test::More::like($content, qr/$pat/s, $desc) }
        else                 { Test::More::unlike($content, qr/$pat/s, $desc) }
    }
    $_->($block, $content, $idx, $rep_idx, 0) for @ResponseBodyChecks;
}

sub _trim {
    my $s = shift;
    return undef unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    $s =~ s/\s{2,}/ /gs;
    return $s;
}

sub _fmt_str {
    my $s = shift // '';
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

# Lines logged since the last read in this block (or since nginx started
# for the first request of the block); check_accum_error_log() reads all.
sub error_log_data {
    sleep $TestNginxSleep * 3;    # let nginx run its log phase first
    open my $in, '<', $ErrLogFile or return undef;
    seek $in, $ErrLogFilePos, 0 if !$CheckAccumErrLog && $ErrLogFilePos;
    my @lines = <$in>;
    $ErrLogFilePos = tell $in unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub access_log_data {
    sleep $TestNginxSleep * 3;
    open my $in, '<', $AccLogFile or return undef;
    my @lines = <$in>;
    return \@lines;
}

# A string is one substring pattern per line; eval may give qr// or arrays.
sub _patterns {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    return ref $pats eq 'Regexp' ? [$pats] : [@$pats];
}

sub _line_matches {
    my ($line, $pat) = @_;
    return (ref $pat && $line =~ /$pat/) || $line =~ /\Q$pat\E/;
}

# Shared by error_log/no_error_log and access_log/no_access_log.
sub _check_log {
    my ($name, $file, $want, $pats, $lines, $rep_idx) = @_;
    $pats = _patterns($pats);
    if ($want) {
        for my $line (@$lines) {
            for my $pat (@$pats) {
                next unless defined $pat && _line_matches($line, $pat);
                Test::More::pass("$name - pattern \"$pat\" matches a line in $file (req $rep_idx)");
                undef $pat;
            }
        }
        for my $pat (grep { defined } @$pats) {
            Test::More::fail("$name - pattern \"$pat\" should match a line in $file (req $rep_idx)");
        }
        return;
    }
    my %found;
    for my $i (0 .. $#$lines) {
        for my $pat (@$pats) {
            next unless defined $pat && _line_matches($lines->[$i], $pat);
            $found{$pat} = 1;
            my @more = @$lines[$i + 1 .. min($i + 9, $#$lines - 1)];
            Test::More::fail("$name - pattern \"" . _fmt_str($pat) . "\" should not match "
                             . "any line in $file but matches line \""
                             . _fmt_str($lines->[$i]) . "\" (req $rep_idx)\n" . join '', @more);
        }
    }
    for my $pat (grep { defined && !$found{$_} } @$pats) {
        Test::More::pass("$name - pattern \"" . _fmt_str($pat) . "\" does not match a "
                         . "line in $file (req $rep_idx)");
    }
}

sub _value_contains {
    my ($val, $pat) = @_;
    return $val =~ /\Q$pat\E/ if !ref $val || ref $val eq 'Regexp';
    return scalar grep { _value_contains($_, $pat) } @$val if ref $val eq 'ARRAY';
    return 0;
}

sub check_error_log {
    my ($block, $res, $rep_idx, $need_array) = @_;
    my $name = $block->name;
    my $lines;

    if (defined(my $grep = $block->grep_error_log)) {
        $grep = $grep->[$rep_idx] if ref $grep eq 'ARRAY';
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but --- grep_error_log "
                 . "is defined") unless defined $expected;
        $expected = expand_env_in_text($expected, $name, $RandPorts);
        $expected = $expected->[$rep_idx] if ref $expected eq 'ARRAY';
        $lines ||= error_log_data() || [];
        my $matched = '';
        for my $line (@$lines) {
            if ((ref $grep && $line =~ /$grep/) || $line =~ /\Q$grep\E/) {
                $matched .= "$&\n" if $& !~ /\n/;
            }
        }
        is_str($matched, $expected, "$name - grep_error_log_out (req $rep_idx)");
    }

    my %quiet;    # log levels not to warn about, since the test expects them
    for my $sec (qw(error_log no_error_log)) {
        my $pats = $block->$sec;
        next unless defined $pats;
        $quiet{$_} = 1 for grep { _value_contains($pats, "[$_") } qw(alert crit emerg);
        $lines ||= error_log_data() || [];
        _check_log($name, 'error.log', $sec eq 'error_log', $pats, $lines, $rep_idx);
    }

    $lines ||= error_log_data() || [];
    for my $line (@$lines) {
        for my $level (qw(alert crit emerg)) {
            warn "WARNING: $name - " . _fmt_str($line) . "\n"
                if !$quiet{$level} && $line =~ /\[$level\]/;
        }
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            Test::More::fail("$name - $l\n");
        }
    }
}

sub check_access_log {
    my ($block, $rep_idx) = @_;
    my $lines;
    for my $sec (qw(access_log no_access_log)) {
        my $pats = $block->$sec;
        next unless defined $pats;
        $lines ||= access_log_data() || [];
        _check_log($block->name, 'access.log', $sec eq 'access_log', $pats, $lines, $rep_idx);
    }
}

END {
    local $?;    # keep the test exit status
    cleanup();
    _stop_nginx('END') if $UseValgrind || !$ENV{TEST_NGINX_NO_CLEAN};
    system("rm -rf $ServRoot") if $ENV{TEST_NGINX_RANDOMIZE}
                                  && $ServRoot =~ m{/t/servroot_\d+$};
}

# ---- block objects: $block->section returns the (filtered) value ----

package Test::Nginx::Socket::Block;

our $AUTOLOAD;

sub new { bless {}, shift }

sub set_value {
    my ($self, $key, @values) = @_;
    $self->{$key} = [@values];
}

sub AUTOLOAD {
    my $self = shift;
    (my $key = $AUTOLOAD) =~ s/.*:://;
    return if $key eq 'DESTROY';
    Carp::croak("Not allowed to set values for '$key'") if @_;
    # A missing section is undef even in list context, so that
    # f($block->foo, $x) never shifts the arguments.
    return undef unless $self->{$key};
    my @list = @{ $self->{$key} };
    return wantarray ? @list : $list[0];
}

# ---- "--- init" code runs in Test::Nginx::Util, under strict and
# warnings, as the real module's run_test evaluates it: it sees that
# package's functions (html_dir(), server_port()...), not the test file's ----

package Test::Nginx::Util;

sub _eval_init {
    eval $_[0];
    return $@;
}

# ---- the "eval" filter: code runs in a package of its own, under strict,
# like Test::Base (which evaluates it in Test::Base::Filter) ----

package Test::Nginx::Socket::Sandbox;

sub run {
    use strict;
    use warnings;
    my @ret = CORE::eval(shift);
    if ($@) {
        # Test::Base silently uses the error text as the value; say it.
        warn "eval filter failed: $@";
        return $@;
    }
    return @ret;
}

1;

__END__

=head1 NAME

Test::Nginx::Socket - fallback subset of the CPAN Test::Nginx::Socket

=head1 SYNOPSIS

    use Test::Nginx::Socket 'no_plan';
    run_tests();

    __DATA__

    === TEST 1: hello
    --- config
        location = /t { return 200 "hi\n"; }
    --- request
    GET /t
    --- response_body
    hi

=head1 DESCRIPTION

This is B<not> the real Test::Nginx.  It is a small fallback used by this
project's C<make test> when the CPAN module (openresty/test-nginx) is not
installed.  It implements a documented subset with the same semantics, so
a test file passes under both.  Test::Base block parsing (C<=== name>,
C<--- section [filters]>, C<--- section: value>, the default C<norm trim>
filters, ONLY/SKIP/FIRST/LAST) is reimplemented here.

Per block it writes F<t/servroot/conf/nginx.conf> in the same layout as the
real module, starts C<$TEST_NGINX_BINARY> (default C<nginx>) with
C<-p t/servroot/ -c conf/nginx.conf>, stops the previous instance first
(QUIT, then KILL), sends the request(s) over a raw socket, and checks the
response and the error log lines written since nginx started (or since the
previous check in the same block).

=head2 Sections

config, http_config, main_config, post_main_config, server_name,
user_files, init, request (string or array of strings), more_headers,
raw_request, raw_request_middle_delay, pipelined_requests, shutdown,
server_addr_for_client, timeout, abort, wait, ignore_response, error_code,
error_code_like, response_headers, response_headers_like,
raw_response_headers_like, raw_response_headers_unlike, response_body,
response_body_like, response_body_unlike, response_body_filters, error_log,
no_error_log, grep_error_log, grep_error_log_out, access_log, no_access_log,
log_level, error_log_file, must_die, skip_eval, skip_nginx, and the meta
sections ONLY, SKIP, FIRST, LAST.

Filters: norm, trim, chomp, chop, unchomp, eval, escape, regexp, array,
join, lines, append, prepend, base64_decode, base64_encode, and functions
defined in the test file's main package.

C<$TEST_NGINX_*> is expanded where the real module expands it: in
config, http_config, main_config, post_main_config, user_files,
error_log_file, pipelined_requests, a response_body string and
grep_error_log_out (not in request or more_headers).

C<--- init> code runs in package Test::Nginx::Util, under strict, as in
the real module, where the Util functions (html_dir, server_port...) are.

=head2 Valgrind

C<TEST_NGINX_USE_VALGRIND> works as in the real module: nginx runs under
valgrind in the foreground (C<daemon off>), a child in a process group of
its own; C<1> means C<--tool=memcheck --leak-check=full
--keep-debuginfo=yes --show-possibly-lost=no> (with F<./valgrind.suppress>
if there is one), any other value is the whole option string.  nginx is
stopped after each block, so that what memcheck reports on exit belongs
to that block; valgrind writes to our stderr unless the options give a
C<--log-file>.  One difference: we wait up to C<TEST_NGINX_TIMEOUT> for
nginx to exit, so that memcheck's leak check completes, where the real
module kills it about a second after its pid file is gone, which can be
before.
C<--- must_die> blocks run without valgrind, as in the real module.

=head2 Not supported

HUP reload, stap, check-leak and benchmark modes, http2/http3,
tcp_listen/udp_listen, request packets (arrays of arrays), skip_nginx2,
skip_openssl, todo, shutdown_error_log, curl; a block using one of these
sections fails rather than passing unchecked.  Differences: a block whose
nginx fails to start fails and the run goes on (the real module retries
for 30s and bails out); without a plan we call done_testing(); a response
still streaming after 10 x --- timeout (at least 10s) fails, where the real
module would wait forever (--- timeout is the longest wait between two I/O
events, not a total).

=cut
