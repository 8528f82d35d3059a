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
produce_when_ready('t-sse-post',
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
kcat_produce_when_ready('t-sse-kcat', 'tram-3',
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
kcat_produce('t-sse-latest',
    ['old-1', '{"name":"old-1","lat":1,"lon":1}'],
    ['old-2', '{"name":"old-2","lat":2,"lon":2}']);
produce_when_ready('t-sse-latest', '{"name":"new-1","lat":3,"lon":3}');
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
kcat_produce('t-sse-cursor', ['k', '{"name":"k","lat":1,"lon":1}']);
kcat_produce_when_ready('t-sse-cursor', 'k', '{"name":"k","lat":2,"lon":2}');
--- request
GET /consumer/t-sse-cursor HTTP/1.0
--- timeout: 4
--- abort
--- response_body_like chomp
\nid: (?:\d+:0,)*\d+:2(?:,\d+:0)*\ndata: \{"topic":"t-sse-cursor","name":"k","lat":2,"lon":2\}\n



=== TEST 6: messages that are not positions are skipped, the stream goes on
--- init
kcat_produce_when_ready('t-sse-skip', 'x', 'not json at all');
produce_when_ready('t-sse-skip', '{"name":"after","lat":5,"lon":5}');
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
--- response_body_like: ^retry: 2000\n\n(?::\n\n){3,5}$
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
