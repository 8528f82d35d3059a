# The streaming consumer location: GET /consumer/{topic}, Server-Sent Events.
use Test::Nginx::Socket 'no_plan';
use FindBin;
use lib "$FindBin::Bin/inc";
use GeostreamTest;

run_tests();

__DATA__

=== TEST 1: a stream is text/event-stream, uncached, unbuffered, with retry
--- request
GET /consumer/t-headers HTTP/1.0
--- timeout: 1
--- abort
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
Cache-Control: no-cache
X-Accel-Buffering: no
--- response_body_like: ^retry: 2000\n\n$
--- no_error_log
[error]
[alert]



=== TEST 2: a subscriber receives a position POSTed after it connected
--- init
GeostreamTest::produce_when_ready('t-sse-post',
    '{"name":"bus-9","message_id":"m1","lat":48.85,"lon":2.35}');
--- request
GET /consumer/t-sse-post HTTP/1.0
--- timeout: 4
--- abort
--- error_code: 200
--- response_body_like chomp
^retry: 2000

id: \d+:\d+,\d+:\d+,\d+:\d+,\d+:\d+
data: \{"topic":"t-sse-post","name":"bus-9","message_id":"m1","lat":48.85,"lon":2.35\}

$
--- no_error_log
[error]
[alert]



=== TEST 3: a subscriber receives a position produced with kcat
--- init
GeostreamTest::kcat_produce_when_ready('t-sse-kcat', 'tram-3',
    '{"name":"tram-3","message_id":11,"lat":-1.5,"lon":36.8,"line":"T3"}');
--- request
GET /consumer/t-sse-kcat HTTP/1.0
--- timeout: 4
--- abort
--- error_code: 200
--- response_body_like chomp
^retry: 2000

id: \d+:\d+,\d+:\d+,\d+:\d+,\d+:\d+
data: \{"topic":"t-sse-kcat","name":"tram-3","message_id":11,"lat":-1.5,"lon":36.8,"line":"T3"\}

$
--- no_error_log
[error]
[alert]



=== TEST 4: a new subscriber starts at the end: earlier positions are not sent
--- init
GeostreamTest::kcat_produce('t-sse-latest',
    ['old-1', '{"name":"old-1","lat":1,"lon":1}'],
    ['old-2', '{"name":"old-2","lat":2,"lon":2}']);
GeostreamTest::produce_when_ready('t-sse-latest',
    '{"name":"new-1","lat":3,"lon":3}');
--- request
GET /consumer/t-sse-latest HTTP/1.0
--- timeout: 4
--- abort
--- error_code: 200
--- response_body_like chomp
^retry: 2000

id: [^\n]+
data: \{"topic":"t-sse-latest","name":"new-1","lat":3,"lon":3\}

$



=== TEST 5: the cursor holds each partition's next offset
--- init
GeostreamTest::kcat_produce('t-sse-cursor',
    ['k', '{"name":"k","lat":1,"lon":1}']);
GeostreamTest::kcat_produce_when_ready('t-sse-cursor', 'k',
    '{"name":"k","lat":2,"lon":2}');
--- request
GET /consumer/t-sse-cursor HTTP/1.0
--- timeout: 4
--- abort
--- response_body_like chomp
\nid: (?:\d+:0,)*\d+:2(?:,\d+:0)*\ndata: \{"topic":"t-sse-cursor","name":"k","lat":2,"lon":2\}\n



=== TEST 6: messages that are not positions are skipped, the stream goes on
--- init
GeostreamTest::kcat_produce_when_ready('t-sse-skip', 'x', 'not json at all');
GeostreamTest::produce_when_ready('t-sse-skip',
    '{"name":"after","lat":5,"lon":5}');
--- request
GET /consumer/t-sse-skip HTTP/1.0
--- timeout: 4
--- abort
--- response_body_like chomp
^retry: 2000

id: [^\n]+
data: \{"topic":"t-sse-skip","name":"after","lat":5,"lon":5\}

$
--- error_log
skipped message at "t-sse-skip"



=== TEST 7: heartbeat comments keep an idle stream alive until its lifetime
--- config
    location ~ ^/consumer/(?<topic>[^/]+)$ {
        geostream_consume $topic;
        geostream_sse_heartbeat 200ms;
        geostream_sse_lifetime 1s;
    }
--- request
GET /consumer/t-heartbeat
--- timeout: 3
--- error_code: 200
--- response_body_like eval
# 4 or 5 in the second, at least 3 on a busy machine; under valgrind
# (TEST_NGINX_GEOSTREAM_SLOWDOWN) the stream's start takes part of it
my $least = $ENV{TEST_NGINX_GEOSTREAM_SLOWDOWN} ? 1 : 3;
qr/^retry: 2000\n\n(?::\n\n){$least,5}$/
--- no_error_log
[error]
[alert]



=== TEST 8: an invalid topic is refused with a JSON error
--- request
GET /consumer/no:colons
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body
{"error":"invalid_topic","detail":"a topic is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'"}



=== TEST 9: POST is not allowed on a stream
--- request
POST /consumer/t-headers
{}
--- error_code: 405
--- response_headers
Allow: GET, HEAD
--- response_body
{"error":"method_not_allowed","detail":"use GET to subscribe"}



=== TEST 10: Last-Event-ID resumes right after the cursor, from the history
--- init
GeostreamTest::follow_and_produce('t-resume',
    map { ['k', qq({"name":"k","message_id":$_,"lat":1,"lon":2})] } 1 .. 3);
--- request
GET /consumer/t-resume HTTP/1.0
--- more_headers
Last-Event-ID: 0:1,1:1,2:1,3:1
--- timeout: 1
--- abort
--- response_body_like chomp
^retry: 2000

id: [^\n]*\b:2\b[^\n]*
data: \{"topic":"t-resume","name":"k","message_id":2,"lat":1,"lon":2\}

id: [^\n]*\b:3\b[^\n]*
data: \{"topic":"t-resume","name":"k","message_id":3,"lat":1,"lon":2\}

$



=== TEST 11: the last_event_id argument does the same for EventSource's first request
--- init
GeostreamTest::follow_and_produce('t-resume-arg',
    map { ['k', qq({"name":"k","message_id":$_,"lat":1,"lon":2})] } 1 .. 3);
--- request
GET /consumer/t-resume-arg?last_event_id=0%3A2%2C1%3A2%2C2%3A2%2C3%3A2 HTTP/1.0
--- timeout: 1
--- abort
--- response_body_like chomp
^retry: 2000

id: [^\n]+
data: \{"topic":"t-resume-arg","name":"k","message_id":3,"lat":1,"lon":2\}

$



=== TEST 12: since=beginning replays the topic, then the stream goes on live
--- init
# one key, so one partition: Kafka orders a partition, not a topic
GeostreamTest::follow_and_produce('t-since-begin',
    ['k', '{"name":"a","lat":1,"lon":2}'], ['k', '{"name":"b","lat":3,"lon":4}']);
GeostreamTest::produce_when_ready('t-since-begin',
    '{"name":"c","lat":5,"lon":6}');
--- request
GET /consumer/t-since-begin?since=beginning HTTP/1.0
--- timeout: 2
--- abort
--- response_body_like chomp
^retry: 2000

id: [^\n]+
data: \{"topic":"t-since-begin","name":"a","lat":1,"lon":2\}

id: [^\n]+
data: \{"topic":"t-since-begin","name":"b","lat":3,"lon":4\}

id: [^\n]+
data: \{"topic":"t-since-begin","name":"c","lat":5,"lon":6\}

$



=== TEST 13: since=5m replays what the last five minutes brought
--- init
GeostreamTest::follow_and_produce('t-since-dur',
    ['a', '{"name":"a","lat":1,"lon":2}']);
--- request
GET /consumer/t-since-dur?since=5m HTTP/1.0
--- timeout: 1
--- abort
--- response_body_like chomp
^retry: 2000

id: [^\n]+
data: \{"topic":"t-since-dur","name":"a","lat":1,"lon":2\}

$



=== TEST 14: since a time in the future replays nothing
--- init
GeostreamTest::follow_and_produce('t-since-ts',
    ['a', '{"name":"a","lat":1,"lon":2}']);
--- request
GET /consumer/t-since-ts?since=4102444800000 HTTP/1.0
--- timeout: 1
--- abort
--- response_body_like: ^retry: 2000\n\n$



=== TEST 15: a cursor older than the history is replayed from Kafka, then the history
--- init
GeostreamTest::kcat_produce('t-kafka-replay',
    ['a', '{"name":"old-1","lat":1,"lon":2}'],
    ['a', '{"name":"old-2","lat":1,"lon":2}']);
GeostreamTest::follow_and_produce('t-kafka-replay',
    ['a', '{"name":"new","lat":1,"lon":2}']);
--- request
GET /consumer/t-kafka-replay HTTP/1.0
--- more_headers
Last-Event-ID: 0:1,1:1,2:1,3:1
--- timeout: 2
--- abort
--- response_body_like chomp
^retry: 2000

id: [^\n]+
data: \{"topic":"t-kafka-replay","name":"old-2","lat":1,"lon":2\}

id: [^\n]+
data: \{"topic":"t-kafka-replay","name":"new","lat":1,"lon":2\}

$



=== TEST 16: a replay from Kafka continues exactly where the client's cursor stood
--- init
GeostreamTest::kcat_produce('t-kafka-exact',
    map { ['k', qq({"name":"k","message_id":$_,"lat":1,"lon":2})] } 1 .. 4);
GeostreamTest::follow_and_produce('t-kafka-exact',
    ['k', '{"name":"k","message_id":5,"lat":1,"lon":2}']);
--- request
GET /consumer/t-kafka-exact?last_event_id=0:2,1:2,2:2,3:2 HTTP/1.0
--- timeout: 2
--- abort
--- response_body_like chomp
^retry: 2000

id: [^\n]+
data: \{"topic":"t-kafka-exact","name":"k","message_id":3,"lat":1,"lon":2\}

id: [^\n]+
data: \{"topic":"t-kafka-exact","name":"k","message_id":4,"lat":1,"lon":2\}

id: [^\n]+:5\b[^\n]*
data: \{"topic":"t-kafka-exact","name":"k","message_id":5,"lat":1,"lon":2\}

$



=== TEST 17: bbox and name filters keep only what matches
--- init
# one key, so one partition: Kafka orders a partition, not a topic
GeostreamTest::follow_and_produce('t-filter',
    ['k', '{"name":"in-1","lat":52.5,"lon":13.4}'],
    ['k', '{"name":"out-1","lat":48.8,"lon":2.3}'],
    ['k', '{"name":"in-2","lat":52.6,"lon":13.5}'],
    ['k', '{"name":"in-3","lat":52.4,"lon":13.3}']);
--- request
GET /consumer/t-filter?since=beginning&bbox=13,52,14,53&name=in-1,in-3,out-1 HTTP/1.0
--- timeout: 1
--- abort
--- response_body_like chomp
^retry: 2000

id: [^\n]+
data: \{"topic":"t-filter","name":"in-1","lat":52.5,"lon":13.4\}

id: [^\n]+
data: \{"topic":"t-filter","name":"in-3","lat":52.4,"lon":13.3\}

$



=== TEST 18: a malformed cursor is refused
--- request
GET /consumer/t-bad-cursor
--- more_headers
Last-Event-ID: 0:1,x
--- error_code: 400
--- response_body
{"error":"invalid_cursor","detail":"a Last-Event-ID is \"partition:offset\" pairs separated by commas, or, for several topics, topic=cursor pairs separated by semicolons"}
--- no_error_log
[alert]



=== TEST 19: a malformed since is refused
--- request
GET /consumer/t-bad-since?since=yesterday
--- error_code: 400
--- response_body
{"error":"invalid_since","detail":"since is latest, beginning, a time in ms since the epoch, or a duration such as 5m"}
--- no_error_log
[alert]



=== TEST 20: a malformed bbox is refused
--- request
GET /consumer/t-bad-bbox?bbox=1,2,3
--- error_code: 400
--- response_body
{"error":"invalid_bbox","detail":"bbox is west,south,east,north in degrees"}
--- no_error_log
[alert]



=== TEST 21: CORS headers come from nginx's add_header, on streams and errors
--- config
    location ~ ^/consumer/(?<topic>[^/]+)$ {
        geostream_consume $topic;
        add_header Access-Control-Allow-Origin "https://map.example" always;
    }
--- request eval
["GET /consumer/t-cors HTTP/1.0", "GET /consumer/bad:topic"]
--- timeout: 1
--- abort
--- error_code eval
[200, 400]
--- response_headers eval
["Access-Control-Allow-Origin: https://map.example", "Access-Control-Allow-Origin: https://map.example"]



=== TEST 22: a stream of several topics gets each one's events, ids carrying every topic's cursor
--- init
GeostreamTest::produce_when_ready('t-multi-a', '{"name":"a1","lat":1,"lon":2}');
GeostreamTest::produce_when_ready('t-multi-b', '{"name":"b1","lat":3,"lon":4}');
--- request
GET /consumer/t-multi-a,t-multi-b HTTP/1.0
--- timeout: 3
--- abort
--- response_body_like chomp
^retry: 2000

id: (?:t-multi-a=[\d:,]+;t-multi-b=[\d:,]+|t-multi-a=[\d:,]+|t-multi-b=[\d:,]+)
data: \{"topic":"t-multi-([ab])","name":"\g{1}1","lat":\d,"lon":\d\}

id: t-multi-a=\d+:\d+(?:,\d+:\d+)*;t-multi-b=\d+:\d+(?:,\d+:\d+)*
data: \{"topic":"t-multi-(?!\g{1})([ab])","name":"\g{2}1","lat":\d,"lon":\d\}

$
--- no_error_log
[error]
[alert]



=== TEST 23: a stream of several topics resumes from its id: exactly the rest of each topic
--- init
GeostreamTest::follow_and_produce('t-mres-a',
    map { ['k', qq({"name":"a","message_id":$_,"lat":1,"lon":2})] } 1 .. 3);
GeostreamTest::follow_and_produce('t-mres-b',
    map { ['k', qq({"name":"b","message_id":$_,"lat":1,"lon":2})] } 1 .. 2);
--- request
GET /consumer/t-mres-a,t-mres-b HTTP/1.0
--- more_headers
Last-Event-ID: t-mres-a=0:1,1:1,2:1,3:1;t-mres-b=0:1,1:1,2:1,3:1;gone=0:5
--- timeout: 1
--- abort
--- response_body_like chomp
^retry: 2000

id: t-mres-a=[^;\n]*\b:2\b[^;\n]*;t-mres-b=0:1,1:1,2:1,3:1
data: \{"topic":"t-mres-a","name":"a","message_id":2,"lat":1,"lon":2\}

id: t-mres-a=[^;\n]*\b:3\b[^;\n]*;t-mres-b=0:1,1:1,2:1,3:1
data: \{"topic":"t-mres-a","name":"a","message_id":3,"lat":1,"lon":2\}

id: t-mres-a=[^;\n]*\b:3\b[^;\n]*;t-mres-b=[^;\n]*\b:2\b[^;\n]*
data: \{"topic":"t-mres-b","name":"b","message_id":2,"lat":1,"lon":2\}

$



=== TEST 24: a topic the id does not name starts by since
--- init
GeostreamTest::follow_and_produce('t-mpart-a',
    ['k', '{"name":"a","message_id":1,"lat":1,"lon":2}']);
GeostreamTest::follow_and_produce('t-mpart-b',
    ['k', '{"name":"b","message_id":1,"lat":1,"lon":2}']);
--- request
GET /consumer/t-mpart-a,t-mpart-b?since=beginning&last_event_id=t-mpart-a%3D0%3A9%2C1%3A9%2C2%3A9%2C3%3A9 HTTP/1.0
--- timeout: 1
--- abort
--- response_body_like chomp
^retry: 2000

id: t-mpart-a=0:9,1:9,2:9,3:9;t-mpart-b=[^;\n]*\b:1\b[^;\n]*
data: \{"topic":"t-mpart-b","name":"b","message_id":1,"lat":1,"lon":2\}

$



=== TEST 25: a stream of one topic takes an id of several, by its topic's part
--- init
GeostreamTest::follow_and_produce('t-mone',
    map { ['k', qq({"name":"k","message_id":$_,"lat":1,"lon":2})] } 1 .. 2);
--- request
GET /consumer/t-mone HTTP/1.0
--- more_headers
Last-Event-ID: other=0:0;t-mone=0:1,1:1,2:1,3:1
--- timeout: 1
--- abort
--- response_body_like chomp
^retry: 2000

id: [\d:,]+
data: \{"topic":"t-mone","name":"k","message_id":2,"lat":1,"lon":2\}

$



=== TEST 26: bad lists of topics, and a plain cursor for several topics, are refused
--- config
    location ~ ^/consumer/(?<topic>[^/]+)$ {
        geostream_consume $topic;
        geostream_topics ^t-;
    }
--- request eval
["GET /consumer/t-x,bad:topic", "GET /consumer/t-x,t-y,t-x",
 "GET /consumer/t-x,nope", "GET /consumer/t-x,",
 "GET /consumer/" . CORE::join(',', map { "t-$_" } 1 .. 17),
 "GET /consumer/t-x,t-y?last_event_id=0:1,1:2",
 "GET /consumer/t-x,t-y?last_event_id=t-x=0:1;t-y"]
--- error_code eval
[400, 400, 403, 400, 400, 400, 400]
--- response_body eval
[qq({"error":"invalid_topic","detail":"a topic is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'"}\n),
 qq({"error":"invalid_topic","detail":"topic \\"t-x\\" is named twice"}\n),
 qq({"error":"topic_not_allowed","detail":"topic \\"nope\\" is not allowed here"}\n),
 qq({"error":"invalid_topic","detail":"a topic is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'"}\n),
 qq({"error":"too_many_topics","detail":"a stream follows at most 16 topics"}\n),
 qq({"error":"invalid_cursor","detail":"a stream of several topics resumes from topic=cursor pairs separated by semicolons, as its ids are"}\n),
 qq({"error":"invalid_cursor","detail":"a Last-Event-ID is \\"partition:offset\\" pairs separated by commas, or, for several topics, topic=cursor pairs separated by semicolons"}\n)]
--- no_error_log
[alert]



=== TEST 27: a stream turns Nagle's algorithm off, so that small events are not held back
--- log_level: debug
--- request
GET /consumer/t-nodelay HTTP/1.0
--- timeout: 1
--- abort
--- response_body_like: ^retry: 2000\n\n$
--- grep_error_log: tcp_nodelay
--- grep_error_log_out
tcp_nodelay



=== TEST 28: unless the location says tcp_nodelay off
--- log_level: debug
--- config
    location ~ ^/consumer/(?<topic>[^/]+)$ {
        geostream_consume $topic;
        tcp_nodelay off;
    }
--- request
GET /consumer/t-nagle HTTP/1.0
--- timeout: 1
--- abort
--- response_body_like: ^retry: 2000\n\n$
--- no_error_log
tcp_nodelay



=== TEST 29: a cursor older than what Kafka keeps gets a retention event, then the oldest there is
--- init
# The dev broker keeps at most 5 MiB a partition: six blobs of 950 kB (not
# positions, so skipped) push the first position out of the log.
GeostreamTest::kcat_produce('t-retention',
    ['k', '{"name":"gone","lat":1,"lon":2}'],
    (map { ['k', 'x' x 950_000] } 1 .. 6),
    ['k', '{"name":"kept","lat":3,"lon":4}']);
--- request
GET /consumer/t-retention?last_event_id=0:0,1:0,2:0,3:0 HTTP/1.0
--- timeout: 3
--- abort
--- response_body_like chomp
^retry: 2000

event: retention
data: \{"reason":"retention","detail":"Kafka no longer has some of the requested messages; the stream resumes with the oldest it has"\}

id: [^\n]+
data: \{"topic":"t-retention","name":"kept","lat":3,"lon":4\}

$
--- no_error_log
[error]
[alert]



=== TEST 30: bbox numbers are plain decimals: hex, exponents, inf, a NUL or a space are refused
--- request eval
["GET /consumer/t-strict-bbox?bbox=0x10,0,20,10",
 "GET /consumer/t-strict-bbox?bbox=1%00,2,3,4",
 "GET /consumer/t-strict-bbox?bbox=1e1,2,30,4",
 "GET /consumer/t-strict-bbox?bbox=-inf,2,3,4",
 "GET /consumer/t-strict-bbox?bbox=%201,2,3,4",
 "GET /consumer/t-strict-bbox?bbox=1.,2,3,4"]
--- error_code eval
[400, 400, 400, 400, 400, 400]
--- response_body eval
[(qq({"error":"invalid_bbox","detail":"bbox is west,south,east,north in degrees"}\n)) x 6]
--- no_error_log
[alert]



=== TEST 31: name filters are bounded, UTF-8 and without control characters
--- request eval
["GET /consumer/t-strict-name?name=a," . ('n' x 257),
 "GET /consumer/t-strict-name?name=a,b%01c",
 "GET /consumer/t-strict-name?name=a%0Ab",
 "GET /consumer/t-strict-name?name=%FF%FE",
 "GET /consumer/t-strict-name?name=nul%00tail"]
--- error_code eval
[400, 400, 400, 400, 400]
--- response_body eval
[(qq({"error":"invalid_name","detail":"name is up to 64 names separated by commas, each 1 to 256 bytes of UTF-8 without control characters"}\n)) x 5]
--- no_error_log
[alert]



=== TEST 32: a cursor naming a partition the topic does not have is refused, whether the worker reads the topic yet or not
--- request eval
["GET /consumer/t-strict-part?last_event_id=0:1,7:3",
 "GET /consumer/t-strict-part?last_event_id=0:1,7:3",
 "GET /consumer/t-strict-part,t-strict-part2?last_event_id=t-strict-part=0:1;t-strict-part2=4:0"]
--- error_code eval
[400, 400, 400]
--- response_body eval
[qq({"error":"invalid_cursor","detail":"the cursor names partition 7, but topic \\"t-strict-part\\" has 4 partitions"}\n),
 qq({"error":"invalid_cursor","detail":"the cursor names partition 7, but topic \\"t-strict-part\\" has 4 partitions"}\n),
 qq({"error":"invalid_cursor","detail":"the cursor names partition 4, but topic \\"t-strict-part2\\" has 4 partitions"}\n)]
--- no_error_log
[alert]



=== TEST 33: a cursor's offsets are within int64, and no partition is named twice
--- request eval
["GET /consumer/t-strict-off?last_event_id=0:9223372036854775808",
 "GET /consumer/t-strict-off?last_event_id=0:99999999999999999999999",
 "GET /consumer/t-strict-off?last_event_id=0:1,0:2",
 "GET /consumer/t-strict-off?last_event_id=0:1%00"]
--- error_code eval
[400, 400, 400, 400]
--- response_body eval
[(qq({"error":"invalid_cursor","detail":"a Last-Event-ID is \\"partition:offset\\" pairs separated by commas, or, for several topics, topic=cursor pairs separated by semicolons"}\n)) x 4]
--- no_error_log
[alert]



=== TEST 34: a cursor at the largest offset and at every partition the topic has is taken
--- init
GeostreamTest::follow_and_produce('t-strict-max',
    ['k', '{"name":"k","lat":1,"lon":2}']);
--- request
GET /consumer/t-strict-max?last_event_id=0:9223372036854775807,1:9223372036854775807,2:9223372036854775807,3:9223372036854775807 HTTP/1.0
--- timeout: 1
--- abort
--- response_body eval
"retry: 2000\n\n"
--- no_error_log
[alert]



=== TEST 35: a malformed since is refused: a unit twice, a NUL, a time past int64
--- request eval
["GET /consumer/t-strict-since?since=1m1m",
 "GET /consumer/t-strict-since?since=5m%00",
 "GET /consumer/t-strict-since?since=5q",
 "GET /consumer/t-strict-since?since=99999999999999999999"]
--- error_code eval
[400, 400, 400, 400]
--- response_body eval
[(qq({"error":"invalid_since","detail":"since is latest, beginning, a time in ms since the epoch, or a duration such as 5m"}\n)) x 4]
--- no_error_log
[alert]



=== TEST 36: messages another client wrote that break the strict rules are skipped
--- init
# as follow_and_produce(), but only the last message becomes an event
GeostreamTest::wait_nginx();
system("curl -s -N -m $GeostreamTest::Deadline " . GeostreamTest::base_url()
       . '/consumer/t-strict-skip >/dev/null 2>&1 &');
GeostreamTest::wait_status('t-strict-skip', '"ready":true');
GeostreamTest::kcat_produce('t-strict-skip',
    ['k', '{"name":"twice","lat":1,"lat":99,"lon":2}'],
    ['k', qq({"name":"bad-\xff","lat":1,"lon":2})],
    ['k', '{"name":"big","lat":1,"lon":2,"x":1e999}'],
    ['k', '{"name":"good","lat":1,"lon":2}']);
GeostreamTest::wait_status('t-strict-skip', '"events":1\b');
--- request
GET /consumer/t-strict-skip?since=beginning HTTP/1.0
--- timeout: 1
--- abort
--- response_body_like chomp
^retry: 2000

id: [^\n]+
data: \{"topic":"t-strict-skip","name":"good","lat":1,"lon":2\}

$
--- no_error_log
[alert]



=== TEST 37: with Kafka out of reach, a stream with a cursor starts after the 5 s wait, unchecked
--- http_config
    geostream_kafka_brokers 127.0.0.1:1;
--- request
GET /consumer/t-strict-nokafka?last_event_id=0:1,7:3 HTTP/1.0
--- timeout: 7
--- abort
--- response_body eval
"retry: 2000\n\n"
--- error_log
the partitions of "t-strict-nokafka" are not known after 5000 ms; the stream starts without checking its cursor
--- no_error_log
[alert]



=== TEST 38: a client that goes away while its stream waits for the partitions leaves nothing behind
--- http_config
    geostream_kafka_brokers 127.0.0.1:1;
--- request eval
["GET /consumer/t-strict-gone?last_event_id=0:1 HTTP/1.0",
 "GET /consumer/t-strict-gone?bbox=x HTTP/1.0"]
--- timeout: 1
--- abort
--- error_code eval
["", 400]
--- response_body eval
["", qq({"error":"invalid_bbox","detail":"bbox is west,south,east,north in degrees"}\n)]
--- wait: 5
--- no_error_log
[alert]
not known after
