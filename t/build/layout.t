# The module's sources keep the layering ARCHITECTURE.md describes:
#
#   3  the module and its locations (ngx_http_geostream_{module,producer,
#      consumer,status,error_filter})
#   2  HTTP mechanisms (the rest of ngx_http_geostream_*, the worker's
#      state among them)
#   1  Kafka mechanisms (ngx_geostream_* that are not plain C)
#   0  plain C (needs no nginx: unit tests and fuzzers link it alone)
#
# and checks what a reader relies on: includes point down (or across to a
# unit that does not point back: no cycle between units; the module's
# configuration, ngx_http_geostream_module.h, which declares no function,
# is what every layer reads and counts as no dependency), plain C includes
# no nginx header, ngx_http_geostream_module.h holds configuration only,
# no function is over 100 lines unless its comment says it reads better
# whole, each nginx-side file can be traced with debug logging, and
# mutable state at file scope lives in the worker's one struct.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname basename);
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/../..');
my $dir = "$root/ngx_geostream_module";

my %plain = map { ("ngx_geostream_$_" => 1) }
    qw(message scan json json_writer cursor filter history route);
my %location = map { ("ngx_http_geostream_$_" => 1) }
    qw(module producer consumer status error_filter);

sub unit { my ($f) = @_; $f =~ s/\.[ch]$//; basename($f) }

sub rank {
    my ($u) = @_;
    return 0 if $plain{$u};
    return 1 if $u =~ /^ngx_geostream_/;
    return 3 if $location{$u};
    return 2;
}

sub slurp { open my $fh, '<', $_[0] or die "$_[0]: $!"; local $/; <$fh> }

my @files = sort glob("$dir/*.[ch]");
ok(@files > 10, 'the module has its sources in ngx_geostream_module/');

my %uses;          # unit -> { unit it includes => 1 }
my %units;

for my $path (@files) {
    my $u = unit($path);
    my $text = slurp($path);
    $units{$u} = 1;

    for my $inc ($text =~ /^#include\s+"([^"]+)"/mg) {
        my $v = unit($inc);
        ok(-f "$dir/$inc", basename($path) . " includes $inc, a module file");
        next if $v eq $u;
        next if $v eq 'ngx_http_geostream_module';       # configuration
        $uses{$u}{$v} = 1;
        ok(rank($v) <= rank($u),
           basename($path) . " (layer " . rank($u) . ") includes $inc "
           . "(layer " . rank($v) . "): includes point down");
    }

    if ($plain{$u}) {
        unlike($text, qr/^#include\s+<ngx_|^#include\s+<librdkafka/m,
               basename($path) . ': plain C includes no nginx or librdkafka');
    }
}

# no cycle between units: a depth-first walk of the include graph
my %state;         # 1: on the path, 2: done
my @cycle;

sub walk {
    my ($u, @path) = @_;
    return if ($state{$u} // 0) == 2;
    if (($state{$u} // 0) == 1) {
        @cycle = (@path, $u) unless @cycle;
        return;
    }
    $state{$u} = 1;
    walk($_, @path, $u) for sort keys %{ $uses{$u} // {} };
    $state{$u} = 2;
}

walk($_) for sort keys %units;
ok(!@cycle, 'no include cycle between units')
    or diag('cycle: ' . join(' -> ', @cycle));

# the module's header: configuration, no functions
my $module_h = slurp("$dir/ngx_http_geostream_module.h");
my @protos = $module_h =~ /^(\w[\w\s\*]*\b\w+\s*\([^;{]*\)\s*;)/mg;
is(scalar @protos, 0, 'ngx_http_geostream_module.h declares no function')
    or diag(join("\n", @protos));

# functions: at most 100 lines, unless the comment above says why
for my $path (grep { /\.c$/ } @files) {
    my @lines = split /\n/, slurp($path);
    my ($start, $name, $why) = (undef, '', 0);

    for my $i (0 .. $#lines) {
        my ($fn) = $lines[$i] =~ /^(\w+)\(/;
        if (!defined $start && defined $fn && $i > 0
            && $lines[$i - 1] =~ /^[\w][\w\s\*]*$/)
        {
            ($start, $name) = ($i, $fn);
            # the comment block that ends right above the return type
            my $j = $i - 2;
            my $comment = '';
            while ($j >= 0 && $lines[$j] =~ m{^\s*(/?\*|\*/)}) {
                $comment = "$lines[$j] $comment";
                $j--;
            }
            $why = $comment =~ /reads better whole/ ? 1 : 0;
            next;
        }

        if (defined $start && $lines[$i] =~ /^}/) {
            my $n = $i - $start + 1;
            ok($n <= 100 || $why,
               basename($path) . ": $name() has $n lines (at most 100, "
               . "or a comment saying it reads better whole)");
            $start = undef;
        }
    }
}

# every nginx-side source file can be traced with error_log ... debug
for my $path (grep { /\.c$/ && !$plain{unit($_)} } @files) {
    ok(slurp($path) =~ /ngx_log_debug\d/,
       basename($path) . ' has debug logging');
}

# mutable state at file scope: only the worker's one struct (and nginx's
# own filter-chain idiom, the next filters' pointers)
for my $path (grep { /\.c$/ } @files) {
    my $text = slurp($path);
    # strip comments and function bodies: what is left is file scope
    $text =~ s{/\*.*?\*/}{}gs;
    1 while $text =~ s/\{[^{}]*\}/;/gs;

    for my $decl ($text =~ /^((?:static\s+)?(?!typedef|extern|return)
                             [a-z_][\w\s\*]*?\s\**ngx_\w+(?:\[\w*\])?
                             (?:\s*=[^;]*)?);/mgx)
    {
        next if $decl =~ /\(/;                      # a prototype
        next if $decl =~ /\bconst\b/;               # read-only data
        next if $decl =~ /\[\]\s*=|_bounds_t/;      # tables, as nginx's
        next if $decl =~ /ngx_module_t|ngx_command_t|_module_ctx\b/;
        next if $decl =~ /ngx_http_next_(header|body)_filter/;
        my $ok = unit($path) eq 'ngx_http_geostream_worker'
                 && $decl =~ /ngx_http_geostream_worker\b/;
        ok($ok, basename($path) . ": file-scope state '$decl' is in the "
                . "worker's one struct");
    }
}

done_testing();
