# The module builds against a pristine upstream nginx source tree (not only
# Debian's nginx-dev tree), with --with-compat and without a warning, and
# the result loads into the nginx binary of the same version.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/../..');
my $work = "$root/build/upstream";
my $nginx = $ENV{NGINX_BIN} // '/usr/sbin/nginx';

chomp(my $src = `$root/tools/fetch-nginx-source $work/src`);
ok($? == 0 && -x "$src/configure", "an upstream nginx source tree: $src")
    or BAIL_OUT('no upstream source tree');

my $log = `make -C $root module BUILD=$work/build NGINX_SRC=$src 2>&1`;
is($?, 0, 'make module NGINX_SRC=<upstream tree> succeeds')
    or diag($log);

my $so = "$work/build/nginx/ngx_http_geostream_module.so";
ok(-f $so, 'the dynamic module is built');
unlike($log, qr/warning:/, 'the build has no compiler warnings');

my ($tree_version) = $src =~ /nginx-([\d.]+)$/;
my ($bin_version) = `$nginx -v 2>&1` =~ m{nginx/([\d.]+)};

SKIP: {
    skip "the tree ($tree_version) is not the version of ${nginx} ($bin_version)", 1
        if $tree_version ne $bin_version;

    mkdir "$work/conf";
    open my $conf, '>', "$work/conf/nginx.conf" or die $!;
    print $conf <<"_EOC_";
load_module $so;
error_log stderr;
pid nginx.pid;
events {}
http {
    access_log off;
    geostream_kafka_brokers 127.0.0.1:9;
    server {
        listen unix:$work/test.sock;
        location /p { geostream_produce t; }
    }
}
_EOC_
    close $conf;

    # the pid file and the logs not in /run and /var/log/nginx, which
    # only root may write
    my $out = `$nginx -t -p $work -e stderr -c conf/nginx.conf 2>&1`;
    is($?, 0, "nginx $bin_version loads the module built from upstream")
        or diag($out);
}

done_testing();
