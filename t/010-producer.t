# The producer location: POST /producer/{topic}.
use Test::Nginx::Socket 'no_plan';
use FindBin;
use lib "$FindBin::Bin/inc";
use GeostreamTest;

use JSON::PP ();

my $json = JSON::PP->new->canonical;

# Blocks named "... read back with kcat" check, with kcat (a client
# geostream did not write), that Kafka holds exactly the records they
# POSTed: the same JSON values, keyed by the entity's name (or the
# request's ?key=), and at the partition and offset the answer gave.
add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;

    return if $dry_run || $block->name !~ /read back with kcat/;

    my ($topic, $query, $sent) =
        $block->request =~ m{^POST /producer/([^\s?]+)(\?\S*)?[^\n]*\n(.*?)\s*$}s
        or die "cannot parse the request of ", $block->name, "\n";
    my ($key) = ($query // '') =~ /[?&]key=([^&]+)/;

    my @sent = $sent =~ /^\[/ ? @{ $json->decode($sent) }
             : ($block->more_headers // '') =~ /ndjson/
               ? map { $json->decode($_) } grep { /\S/ } split /\n/, $sent
             : ($json->decode($sent));

    my @records = GeostreamTest::kcat_records($topic, scalar @sent);
    my $name = $block->name;

    is(scalar @records, scalar @sent, "$name - kcat reads as many records");

    my %stored = map { ("$_->[0]:$_->[1]" => $_) } @records;
    my @want = sort map {
        my $k = $key // $_->{name} // $_->{properties}{name};
        "$k\t" . $json->encode($_)
    } @sent;
    my @got = sort map { "$_->[2]\t" . $json->encode($json->decode($_->[3])) }
              @records;

    is_deeply(\@got, \@want, "$name - kcat reads the same keys and values");

    # in waiting mode each answer says where its record is
    my $answer = $json->decode($body);
    my @answers = ref $answer eq 'ARRAY' ? @$answer : ($answer);

    for my $i (0 .. $#answers) {
        next unless defined $answers[$i]{offset};
        my $r = $stored{"$answers[$i]{partition}:$answers[$i]{offset}"};
        is($r && $json->encode($json->decode($r->[3])),
           $json->encode($sent[$i]),
           "$name - record $i is at the partition and offset answered");
    }
});

run_tests();

__DATA__

=== TEST 1: a valid position is accepted, echoing name, message_id and topic
--- request
POST /producer/t-produce
{"name":"bus-1","message_id":"42","lat":52.52,"lon":13.40}
--- error_code: 202
--- response_headers
Content-Type: application/json
--- response_body
{"name":"bus-1","message_id":"42","topic":"t-produce"}
--- no_error_log
[error]



=== TEST 2: an accepted position can be read back with kcat
--- request
POST /producer/t-kcat
{"name":"kcat-reader","message_id":7,"lat":-33.86,"lon":151.21,"speed":12.5}
--- error_code: 202
--- response_body
{"name":"kcat-reader","message_id":7,"topic":"t-kcat"}
--- no_error_log
[error]



=== TEST 3: a missing message_id is answered as null
--- request
POST /producer/t-produce
{"name":"bus-2","lat":0,"lon":0}
--- error_code: 202
--- response_body
{"name":"bus-2","message_id":null,"topic":"t-produce"}



=== TEST 4: malformed JSON is refused with the byte where it breaks
--- request
POST /producer/t-bad
{"name":"bus-1","lat":52.52,"lon":}
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body
{"error":"invalid_json","detail":"malformed JSON at byte 34"}



=== TEST 5: data after the JSON value is refused
--- request
POST /producer/t-bad
{"name":"bus-1","lat":52.52,"lon":13.4} {"name":"bus-2"}
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"unexpected data after the JSON value at byte 40"}



=== TEST 6: a latitude out of range is refused, naming the field
--- request
POST /producer/t-bad
{"name":"bus-1","lat":91,"lon":13.4}
--- error_code: 400
--- response_body
{"error":"invalid_message","detail":"\"lat\" must be a number from -90 to 90"}



=== TEST 7: a longitude that is not a number is refused
--- request
POST /producer/t-bad
{"name":"bus-1","lat":1,"lon":"13.4"}
--- error_code: 400
--- response_body
{"error":"invalid_message","detail":"\"lon\" must be a number from -180 to 180"}



=== TEST 8: a position without a name is refused
--- request
POST /producer/t-bad
{"lat":1,"lon":2}
--- error_code: 400
--- response_body
{"error":"invalid_message","detail":"\"name\" must be a non-empty string"}



=== TEST 9: a JSON value that is not an object is refused
--- request
POST /producer/t-bad
"bus-1"
--- error_code: 400
--- response_body
{"error":"invalid_message","detail":"the message must be a JSON object"}



=== TEST 10: an empty body is refused
--- request
POST /producer/t-bad
--- more_headers
Content-Length: 0
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"the body is empty"}



=== TEST 11: a POST without a body length is refused with 411
--- request
POST /producer/t-bad
--- error_code: 411
--- response_headers
Content-Type: application/json
--- response_body
{"error":"length_required","detail":"send the body with Content-Length or chunked"}



=== TEST 12: GET is not allowed, and the answer says what is
--- request
GET /producer/t-produce
--- error_code: 405
--- response_headers
Allow: POST, OPTIONS
Content-Type: application/json
--- response_body
{"error":"method_not_allowed","detail":"use POST to produce"}



=== TEST 13: a body nginx spooled to a temporary file is read back with kcat
--- config
    client_body_in_file_only clean;

    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
    }
--- request
POST /producer/t-spooled
{"name":"spooled","message_id":"f1","lat":10.5,"lon":-20.25}
--- error_code: 202
--- response_body
{"name":"spooled","message_id":"f1","topic":"t-spooled"}
--- no_error_log
[error]



=== TEST 14: a topic that breaks Kafka's naming rules is refused
--- request
POST /producer/bad:topic
{"name":"bus-1","lat":1,"lon":2}
--- error_code: 400
--- response_body
{"error":"invalid_topic","detail":"a topic is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'"}



=== TEST 15: a body over client_max_body_size is refused with a JSON error
--- config
    location ~ ^/producer/(?<topic>[^/]+)$ {
        client_max_body_size 32;
        geostream_produce $topic;
    }
--- request
POST /producer/t-big
{"name":"a-rather-long-name","lat":1,"lon":2}
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body
{"error":"body_too_large","detail":"the body is larger than 32 bytes (client_max_body_size)"}



=== TEST 16: a form body is refused with 415
--- request
POST /producer/t-form
name=bus-1&lat=1&lon=2
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 415
--- response_body
{"error":"unsupported_media_type","detail":"send application/json, application/geo+json or application/x-ndjson"}



=== TEST 17: JSON with a charset parameter is accepted
--- request
POST /producer/t-charset
{"name":"bus-1","lat":1,"lon":2}
--- more_headers
Content-Type: application/json; charset=utf-8
--- error_code: 202



=== TEST 18: a topic outside geostream_topics is forbidden
--- config
    geostream_topics "^fleet-[a-z]+$";

    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
    }
--- request
POST /producer/fleet-9
{"name":"bus-1","lat":1,"lon":2}
--- error_code: 403
--- response_body
{"error":"topic_not_allowed","detail":"topic \"fleet-9\" is not allowed here"}



=== TEST 19: a topic inside geostream_topics is accepted
--- config
    geostream_topics "^fleet-[a-z]+$";

    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
    }
--- request
POST /producer/fleet-abc
{"name":"bus-1","lat":1,"lon":2}
--- error_code: 202
--- response_body
{"name":"bus-1","message_id":null,"topic":"fleet-abc"}



=== TEST 20: a JSON array is a batch, answered record by record and read back with kcat
--- request
POST /producer/t-batch
[{"name":"a","message_id":1,"lat":1,"lon":2},{"name":"b","message_id":2,"lat":3.5,"lon":4,"extra":[1,2]},{"name":"a","message_id":3,"lat":1.5,"lon":2}]
--- error_code: 202
--- response_body
[{"name":"a","message_id":1,"topic":"t-batch"},{"name":"b","message_id":2,"topic":"t-batch"},{"name":"a","message_id":3,"topic":"t-batch"}]



=== TEST 21: an NDJSON body is a batch, each line stored as sent, read back with kcat
--- request
POST /producer/t-ndjson
{"name":"n1","lat":10,"lon":20}
{"name":"n2", "lat":11, "lon":21}

{"name":"n3","lat":12,"lon":22,"message_id":"x"}
--- more_headers
Content-Type: application/x-ndjson
--- error_code: 202
--- response_body
[{"name":"n1","message_id":null,"topic":"t-ndjson"},{"name":"n2","message_id":null,"topic":"t-ndjson"},{"name":"n3","message_id":"x","topic":"t-ndjson"}]



=== TEST 22: one bad record refuses the whole batch, naming its index
--- request
POST /producer/t-batch-bad
[{"name":"a","lat":1,"lon":2},{"name":"b","lat":1,"lon":200}]
--- error_code: 400
--- response_body
{"error":"invalid_message","detail":"record 1: \"lon\" must be a number from -180 to 180"}



=== TEST 23: a GeoJSON Feature is a position, read back with kcat
--- request
POST /producer/t-geojson
{"type":"Feature","geometry":{"type":"Point","coordinates":[2.35,48.85]},"properties":{"name":"geo-1","message_id":"g1"}}
--- more_headers
Content-Type: application/geo+json
--- error_code: 202
--- response_body
{"name":"geo-1","message_id":"g1","topic":"t-geojson"}



=== TEST 24: geostream_produce_key sets the Kafka key, read back with kcat
--- config
    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
        geostream_produce_key $arg_key;
    }
--- request
POST /producer/t-key?key=fleet-7
{"name":"bus-1","lat":1,"lon":2}
--- error_code: 202



=== TEST 25: waiting mode answers 200 with partition and offset, read back with kcat
--- config
    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
        geostream_produce_wait on;
    }
--- request
POST /producer/t-wait
{"name":"w-1","message_id":"m","lat":1,"lon":2}
--- error_code: 200
--- response_body_like: ^\{"name":"w-1","message_id":"m","topic":"t-wait","partition":\d+,"offset":0\}$



=== TEST 26: waiting mode offsets grow one by one within a partition, read back with kcat
--- config
    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
        geostream_produce_wait on;
    }
--- request
POST /producer/t-wait-batch
[{"name":"same","message_id":1,"lat":1,"lon":2},{"name":"same","message_id":2,"lat":1,"lon":2},{"name":"same","message_id":3,"lat":1,"lon":2}]
--- error_code: 200
--- response_body_like: ^\[\{"name":"same","message_id":1,"topic":"t-wait-batch","partition":(\d+),"offset":0\},\{"name":"same","message_id":2,"topic":"t-wait-batch","partition":\1,"offset":1\},\{"name":"same","message_id":3,"topic":"t-wait-batch","partition":\1,"offset":2\}\]$



=== TEST 27: a delivery that times out answers 504
--- http_config
    geostream_kafka_brokers 127.0.0.1:9;
    geostream_kafka_producer_option message.timeout.ms 1000;
--- config
    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
        geostream_produce_wait on;
    }
--- request
POST /producer/t-timeout
{"name":"late","lat":1,"lon":2}
--- timeout: 5
--- error_code: 504
--- response_body
{"error":"delivery_timeout","detail":"kafka did not take the message: Local: Message timed out"}
--- no_error_log
[alert]
[crit]



=== TEST 28: librdkafka's full queue refuses records; the batch says which
--- http_config
    geostream_kafka_brokers 127.0.0.1:9;
    geostream_kafka_producer_option message.timeout.ms 1000;
    geostream_kafka_producer_option queue.buffering.max.messages 1;
--- request
POST /producer/t-full
[{"name":"q1","lat":1,"lon":2},{"name":"q2","lat":1,"lon":2},{"name":"q3","lat":1,"lon":2}]
--- timeout: 5
--- error_code: 504
--- response_body
[{"name":"q1","message_id":null,"topic":"t-full","error":"delivery_timeout"},{"name":"q2","message_id":null,"topic":"t-full","error":"queue_full"},{"name":"q3","message_id":null,"topic":"t-full","error":"queue_full"}]
--- error_log
cannot produce to topic "t-full": Local: Queue full



=== TEST 29: a client that hangs up while waiting leaves no trace when the report comes
--- http_config
    geostream_kafka_brokers 127.0.0.1:9;
    geostream_kafka_producer_option message.timeout.ms 1000;
--- config
    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
        geostream_produce_wait on;
    }
--- request
POST /producer/t-hangup
{"name":"gone","lat":1,"lon":2}
--- timeout: 0.3
--- abort
--- error_code:
--- error_log
not delivered in the last second: 1 to topic "t-hangup": Local: Message timed out
--- no_error_log
[alert]
[crit]



=== TEST 30: a topic that Kafka does not have is answered 404 unknown_topic
in a few seconds, with the defaults (t/run-suite starts the dev broker with
--missing t-missing: it answers for that topic as Kafka does for one that
does not exist)
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
--- request
POST /producer/t-missing
{"name":"nowhere","lat":1,"lon":2}
--- more_headers
Content-Type: application/json
--- timeout: 5
--- error_code: 404
--- response_body_like: ^\{"error":"unknown_topic","detail":"kafka did not take the message: [^"]*[Uu]nknown topic[^"]*"\}$
--- no_error_log
[alert]
[crit]



=== TEST 31: a CORS preflight is answered 204, with the location's Access-Control headers
--- config
    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
        add_header Access-Control-Allow-Origin https://fleet.example always;
        add_header Access-Control-Allow-Headers Content-Type always;
    }
--- request
OPTIONS /producer/t-cors
--- more_headers
Origin: https://fleet.example
Access-Control-Request-Method: POST
Access-Control-Request-Headers: content-type
--- error_code: 204
--- response_headers
Allow: POST, OPTIONS
Access-Control-Allow-Origin: https://fleet.example
Access-Control-Allow-Headers: Content-Type
Content-Type:
--- response_body
--- no_error_log
[error]



=== TEST 32: the POST that follows a preflight carries the Access-Control header too
--- config
    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
        add_header Access-Control-Allow-Origin https://fleet.example always;
    }
--- request
POST /producer/t-cors
{"name":"bus-1","lat":52.5,"lon":13.4}
--- more_headers
Origin: https://fleet.example
Content-Type: application/json
--- error_code: 202
--- response_headers
Access-Control-Allow-Origin: https://fleet.example
--- response_body
{"name":"bus-1","message_id":null,"topic":"t-cors"}
--- no_error_log
[error]



=== TEST 33: a name with invalid UTF-8 (ff fe) is refused, naming the byte
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-\xff\xfe\",\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"invalid UTF-8 at byte 13"}



=== TEST 34: a name with an overlong form (c0 af) is refused, naming the byte
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-\xc0\xaf\",\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"invalid UTF-8 at byte 13"}



=== TEST 35: a name with an overlong form (e0 80 af) is refused, naming the byte
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-\xe0\x80\xaf\",\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"invalid UTF-8 at byte 13"}



=== TEST 36: a name with a UTF-16 surrogate (ed a0 80) is refused, naming the byte
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-\xed\xa0\x80\",\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"invalid UTF-8 at byte 13"}



=== TEST 37: a name with a truncated sequence (e2 82) is refused, naming the byte
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-\xe2\x82\",\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"invalid UTF-8 at byte 13"}



=== TEST 38: a raw LF inside a string is refused
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-1\",\"lat\":1,\"lon\":2,\"note\":\"a\x0ab\"}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"a control character (0x0a) in a string at byte 41; escape it"}



=== TEST 39: a raw CR inside a string is refused
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-1\",\"lat\":1,\"lon\":2,\"note\":\"a\x0db\"}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"a control character (0x0d) in a string at byte 41; escape it"}



=== TEST 40: a raw NUL inside a string is refused
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-1\",\"lat\":1,\"lon\":2,\"note\":\"a\x00b\"}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"a control character (0x00) in a string at byte 41; escape it"}



=== TEST 41: a NUL byte between tokens is refused
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-1\",\x00\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"malformed JSON at byte 16"}



=== TEST 42: a name with an escaped NUL is refused, not cut to its first part
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"nul\\u0000tail\",\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"\\u0000 in a string at byte 12: no string may hold a NUL"}



=== TEST 43: a name with an escaped control character is refused
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-\\u0007\",\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_message","detail":"\"name\" must not hold control characters"}



=== TEST 44: a name with DEL is refused
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-\x7f\",\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_message","detail":"\"name\" must not hold control characters"}



=== TEST 45: a member named twice is refused, naming it
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"d\",\"lat\":1,\"lat\":999,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"member \"lat\" is named twice"}



=== TEST 46: a member named twice, once escaped, is refused
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"d\",\"lat\":1,\"l\\u0061t\":999,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"member \"lat\" is named twice"}



=== TEST 47: a member named twice in a Feature's properties is refused
--- request eval
"POST /producer/t-strict\n" . "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[2,1]},\"properties\":{\"name\":\"f\",\"speed\":1,\"speed\":2}}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"member \"speed\" is named twice"}



=== TEST 48: a member named twice in a batch element's nested object is refused
--- request eval
"POST /producer/t-strict\n" . "[{\"name\":\"a\",\"lat\":1,\"lon\":2},{\"name\":\"b\",\"lat\":1,\"lon\":2,\"x\":{\"k\":1,\"k\":2}}]"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"member \"k\" is named twice"}



=== TEST 49: a member named twice in an NDJSON line is refused, naming the record
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"a\",\"lat\":1,\"lon\":2}\x0a{\"name\":\"b\",\"lat\":1,\"lon\":2,\"name\":\"c\"}\x0a"
--- more_headers
Content-Type: application/x-ndjson
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"record 1: member \"name\" is named twice"}



=== TEST 50: a message_id of 1e999 is refused, not echoed as null
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"big\",\"message_id\":1e999,\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"the number at byte 27 is not a finite double"}



=== TEST 51: a number that is not a finite double is refused deep in other members
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"big\",\"lat\":1,\"lon\":2,\"extra\":{\"v\":[1,-2e400]}}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"the number at byte 46 is not a finite double"}



=== TEST 52: a body that starts with a UTF-8 byte order mark is refused
--- request eval
"POST /producer/t-strict\n" . "\xef\xbb\xbf{\"name\":\"bom\",\"lat\":1,\"lon\":2}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"the body starts with a byte order mark; send UTF-8 without one"}



=== TEST 53: a hexadecimal number is refused
--- request eval
"POST /producer/t-strict\n" . "{\"name\":\"bus-1\",\"lat\":1,\"lon\":2,\"x\":0x10}"
--- error_code: 400
--- response_body
{"error":"invalid_json","detail":"malformed JSON at byte 37"}



=== TEST 54: strings with any valid UTF-8, escapes and exponents are accepted and read back with kcat
--- request
POST /producer/t-strict-unicode
{"name":"zurich-1","lat":47.37,"lon":8.54,"note":"é-🚌-\ud83d\ude8c tab\tquote\"nl\n","n":[1.5e3,-0.0,1e-400,{"a":{"b":[]}}]}
--- error_code: 202
--- response_body
{"name":"zurich-1","message_id":null,"topic":"t-strict-unicode"}
--- no_error_log
[error]
