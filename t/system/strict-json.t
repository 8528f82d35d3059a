# Issue 11, strict input: what Kafka stores is always valid, unambiguous
# JSON.  Many generated bodies (every body form; names and strings with
# raw UTF-8, \u escapes and surrogate pairs, escaped quotes and slashes;
# numbers with exponents, negative zero, long fractions; nested objects;
# whitespace between tokens), some of them spoiled the ways issue 11 found
# (invalid UTF-8, raw control characters, \u0000, a member named twice,
# 1e999, a byte order mark, a lone surrogate).  Each is POSTed; the good
# must be accepted and the spoiled refused with 400.  Then everything the
# topic holds is read back with kcat (a client geostream did not write)
# and checked with python3's json, strictly: the value decodes as UTF-8
# (errors='strict'), parses with no member named twice and no NaN or
# Infinity, and gives the name (the Kafka key too), lat and lon that were
# sent; no spoiled body's record is there, and every good one is, once.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use GeostreamSystem;
use JSON::PP ();
use Test::More;

my $seed = $ENV{STRICT_JSON_SEED} // 20261204;
my $bodies = $ENV{STRICT_JSON_BODIES} // 400;
srand($seed);
note("seed $seed, $bodies bodies (STRICT_JSON_SEED, STRICT_JSON_BODIES)");

my $brokers = start_broker('--topic', 'strict:4');

my $master = start_nginx(<<"_EOC_", workers => 1);
    geostream_kafka_brokers $brokers;
    server {
        listen 127.0.0.1:$Port;
        location ~ ^/producer/(?<topic>[^/]+)\$ {
            geostream_produce \$topic;
            geostream_produce_wait on;
        }
    }
_EOC_
ok($master, 'nginx starts');

sub pick { return $_[int rand @_] }

# a name: its JSON text and its value (UTF-8 bytes); unique by $n
sub gen_name {
    my ($n) = @_;

    my @parts = (
        ['veh', 'veh'],
        ["Z\xc3\xbcrich", "Z\xc3\xbcrich"],                 # raw UTF-8
        ['Z\u00fcrich', "Z\xc3\xbcrich"],                   # escaped
        ['caf\u00E9', "caf\xc3\xa9"],                       # upper hex
        ['\ud83d\ude8c', "\xf0\x9f\x9a\x8c"],               # a pair
        ["\xf0\x9f\x9a\x8c", "\xf0\x9f\x9a\x8c"],           # raw 4 bytes
        ['a\"b\\\\c\/d', 'a"b\\c/d'],                       # escapes
        ["\xe6\x9d\xb1\xe4\xba\xac", "\xe6\x9d\xb1\xe4\xba\xac"],
        ['\u6771\u4eac', "\xe6\x9d\xb1\xe4\xba\xac"],
        ['\u0041\u00df\u20ac', "A\xc3\x9f\xe2\x82\xac"],
    );
    my ($text, $value) = ('', '');

    for (1 .. 1 + int rand 3) {
        my $p = pick(@parts);
        $text .= $p->[0];
        $value .= $p->[1];
    }

    return ("\"$text-$n\"", "$value-$n");
}

# a number in [-max, max] as JSON text, in one of many spellings
sub gen_number {
    my ($max) = @_;

    my $v = (rand 2 * $max) - $max;
    my $form = int rand 8;

    return $form == 0 ? sprintf('%.6f', $v)
         : $form == 1 ? sprintf('%.5e', $v)
         : $form == 2 ? uc sprintf('%.3e', $v)
         : $form == 3 ? sprintf('%d', $v)
         : $form == 4 ? '-0.0'
         : $form == 5 ? sprintf('%.17g', $v)
         : $form == 6 ? sprintf('%.4fe1', $v / 10)
         :              sprintf('%de-%d', int($v * 1000), 3);
}

# other members: nested objects, arrays, escapes, exponents
sub gen_extra {
    my ($depth) = @_;

    my @v = ('true', 'false', 'null', '"tab\tnl\nq\"\u001f"',
             "\"\xc3\xa9\\u00e9\"", '1.5e300', '-2E-300', '1e-400', '[]',
             '{}', '"\ud834\udd1e"', '0');
    return pick(@v) if $depth > 2 || rand() < 0.4;

    if (rand() < 0.5) {
        return '[' . join(',', map { gen_extra($depth + 1) } 1 .. 1 + int rand 3)
               . ']';
    }

    my $i = 0;
    return '{' . join(',', map { '"k' . $i++ . '":' . gen_extra($depth + 1) }
                           1 .. 1 + int rand 3) . '}';
}

# whitespace JSON allows between tokens (an NDJSON line has no line break)
my $one_line = 0;
sub ws {
    return $one_line ? pick('', '', '', ' ', "\t")
                     : pick('', '', '', ' ', "\n", "\t", "\r\n ");
}

# one record: its JSON text and what a strict reader must find in it
sub gen_record {
    my ($n, $feature) = @_;

    my ($name_text, $name) = gen_name($n);
    my $lat = gen_number(90);
    my $lon = gen_number(180);
    my $id = "\"m-$n\"";
    my $extra = '"extra":' . ws() . gen_extra(0);

    my $text = $feature
        ? '{"type":"Feature","geometry":{"type":"Point","coordinates":['
          . $lon . ',' . ws() . $lat . ']},' . ws() . '"properties":{'
          . '"name":' . $name_text . ',"message_id":' . $id . ',' . $extra
          . '}}'
        : '{' . ws() . '"name"' . ws() . ':' . $name_text . ',' . ws()
          . '"message_id":' . $id . ',"lat":' . ws() . $lat . ','
          . '"lon":' . $lon . ',' . $extra . ws() . '}';

    return ($text, { id => "m-$n", name => unpack('H*', $name),
                     lat => $lat, lon => $lon, feature => $feature ? 1 : 0 });
}

# the ways issue 11 found bodies to be stored as sent
# (each puts its bytes at the start of the name's string or before a member)
sub in_name { my ($t, $bytes) = @_; return $t =~ s/("name"\s*:\s*")/$1$bytes/r }
sub before_id { my ($t, $bytes) = @_; return $t =~ s/("message_id")/$bytes$1/r }
my @spoil = (
    ['invalid UTF-8', sub { in_name($_[0], "\xff\xfe") }],
    ['an overlong form', sub { in_name($_[0], "\xc0\xaf") }],
    ['a surrogate in UTF-8', sub { in_name($_[0], "\xed\xa0\x80") }],
    ['a truncated sequence', sub { in_name($_[0], "\xe2\x82") }],
    ['a raw LF in a string', sub { in_name($_[0], "a\nb") }],
    ['a raw NUL in a string', sub { in_name($_[0], "a\x00b") }],
    ['an escaped NUL', sub { in_name($_[0], 'nul\u0000') }],
    ['a lone surrogate', sub { in_name($_[0], '\udc00') }],
    ['a NUL between tokens', sub { before_id($_[0], "\x00") }],
    ['a member named twice', sub { before_id($_[0], '"extra":1,') }],
    ['an escaped twin', sub { before_id($_[0], '"m\u0065ssage_id":0,') }],
    ['a number past double', sub { before_id($_[0], '"big":[1e999],') }],
);

my (@good, %bad_ids, %tally);
my $n = 0;

for my $b (1 .. $bodies) {
    my $form = pick(qw(single single single array ndjson feature));
    my $count = $form =~ /array|ndjson/ ? 1 + int rand 4 : 1;
    my (@texts, @expect);

    $one_line = ($form eq 'ndjson');

    for (1 .. $count) {
        my ($t, $e) = gen_record(++$n, $form eq 'feature' || rand() < 0.1);
        push @texts, $t;
        push @expect, $e;
    }

    my $spoiled = rand() < 0.2 ? pick(@spoil) : undef;
    if ($spoiled) {
        my $i = int rand @texts;
        my $t = $spoiled->[1]->($texts[$i]);
        $t ne $texts[$i] or BAIL_OUT("spoiling '$spoiled->[0]' did nothing");
        $texts[$i] = $t;
    }

    my $body = $form eq 'array' ? '[' . join(',' . ws(), @texts) . ']'
             : $form eq 'ndjson' ? join("\n", @texts) . "\n"
             : ws() . $texts[0] . ws();
    if (!$spoiled && rand() < 0.02) {
        $spoiled = ['a byte order mark'];
        $body = "\xef\xbb\xbf$body";
    }

    my $type = $form eq 'ndjson' ? 'application/x-ndjson'
                                 : 'application/json';

    open my $f, '>:raw', "$Work/post" or die $!;
    print $f $body;
    close $f;

    my $status = `curl -s -o $Work/answer -w '%{http_code}' -H 'Content-Type: $type' --data-binary \@$Work/post http://127.0.0.1:$Port/producer/strict`;

    # only what goes wrong is reported, each body once
    if ($spoiled) {
        $bad_ids{$_->{id}} = 1 for @expect;

        if ($status eq '400') {
            $tally{refused}++;
        } else {
            fail("body $b ($form, $spoiled->[0]) is refused, not $status");
            diag($body);
        }

    } elsif ($status eq '200') {
        $tally{accepted}++;
        push @good, @expect;

    } else {
        fail("body $b ($form) is accepted, not $status");
        diag(`cat $Work/answer`, "\n", $body);
    }
}

$tally{$_} //= 0 for qw(accepted refused);
is($tally{accepted} + $tally{refused}, $bodies,
   "every good body accepted ($tally{accepted}), every spoiled one refused "
   . "($tally{refused})");

open my $f, '>', "$Work/expect.json" or die $!;
print $f JSON::PP->new->encode({ good => \@good, bad => [sort keys %bad_ids] });
close $f;

# everything the topic holds, length-prefixed: values are read as bytes
system("kcat -b $brokers -C -t strict -o beginning -e -q -f '%K:%S:%k%s' > $Work/stored") == 0
    or BAIL_OUT('kcat failed');

my $check = <<'_PY_';
import json, re, sys

expect = json.load(open(sys.argv[1]))
data = open(sys.argv[2], 'rb').read()

def no_twins(pairs):
    names = [k for k, _ in pairs]
    if len(names) != len(set(names)):
        raise ValueError('a member named twice: %r' % names)
    return dict(pairs)

def no_constant(c):
    raise ValueError('not a finite number: ' + c)

good = {e['id']: e for e in expect['good']}
bad = set(expect['bad'])
seen, errors = {}, []
i = 0

while i < len(data):
    m = re.compile(rb'(-?\d+):(-?\d+):').match(data, i)
    if not m:
        errors.append('cannot read kcat output at %d' % i)
        break
    klen, vlen = int(m.group(1)), int(m.group(2))
    i = m.end()
    key = data[i:i + klen]; i += klen
    value = data[i:i + vlen]; i += vlen

    try:
        doc = json.loads(value.decode('utf-8', 'strict'),
                         object_pairs_hook=no_twins,
                         parse_constant=no_constant)
    except Exception as e:
        errors.append('a stored value is not strict JSON (%s): %r' % (e, value))
        continue

    if doc.get('type') == 'Feature':
        props = doc['properties']
        lon, lat = doc['geometry']['coordinates'][:2]
    else:
        props, lat, lon = doc, doc['lat'], doc['lon']

    mid = props.get('message_id')
    if mid in bad:
        errors.append('a refused record is stored: %r' % value)
        continue
    e = good.get(mid)
    if e is None:
        errors.append('a record nobody sent: %r' % value)
        continue
    seen[mid] = seen.get(mid, 0) + 1

    name = bytes.fromhex(e['name']).decode('utf-8', 'strict')
    if props.get('name') != name:
        errors.append('%s: name %r, sent %r' % (mid, props.get('name'), name))
    if key != name.encode('utf-8'):
        errors.append('%s: key %r, name %r' % (mid, key, name))
    if lat != float(e['lat']) or lon != float(e['lon']):
        errors.append('%s: lat, lon %r, %r, sent %s, %s'
                      % (mid, lat, lon, e['lat'], e['lon']))

for mid in good:
    if seen.get(mid, 0) != 1:
        errors.append('%s is stored %d times' % (mid, seen.get(mid, 0)))

for e in errors[:20]:
    print(e)
print('checked %d stored records, %d errors' % (sum(seen.values()), len(errors)))
sys.exit(1 if errors else 0)
_PY_

open my $py, '>', "$Work/check.py" or die $!;
print $py $check;
close $py;

my $out = `python3 $Work/check.py $Work/expect.json $Work/stored 2>&1`;
my $rc = $?;
note($out);
is($rc, 0, 'python3 reads every stored value strictly as what was sent: '
           . scalar(@good) . ' records')
    or diag($out);

done_testing();
