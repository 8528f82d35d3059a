# The producer location: POST /producer/{topic}.
use Test::Nginx::Socket 'no_plan';
use FindBin;
use lib "$FindBin::Bin/inc";
use GeostreamTest;

# Blocks named "... read back with kcat" check that the body they POSTed is
# in Kafka, keyed by the entity's name, as an independent client sees it.
add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;

    return if $dry_run || $block->name !~ /read back with kcat/;

    my ($topic, $sent) = $block->request =~ m{^POST /producer/(\S+)\n(.*?)\s*$}s
        or die "cannot parse the request of ", $block->name, "\n";
    my ($name) = $sent =~ /"name":"([^"]+)"/;

    # the suite's broker is new for each run; a rerun on the same broker
    # finds the same record again, but never any other
    my %seen = map { $_ => 1 } kcat_records($topic, 1);
    is_deeply([sort keys %seen], ["$name\t$sent"],
              $block->name . " - kcat reads back exactly the record");
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
Allow: POST
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

