# The module loads into nginx and refuses configurations it cannot run.
use Test::Nginx::Socket 'no_plan';
use FindBin;
use lib "$FindBin::Bin/inc";
use GeostreamTest;

run_tests();

__DATA__

=== TEST 1: the module loads and its status location answers JSON
--- request
GET /geostream/status
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"producer":\{"running":true,"produced":0,.*"pid":\d+\}$
--- no_error_log
[error]
[alert]



=== TEST 2: a librdkafka property is passed on, and the page says so
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_kafka_producer_option linger.ms 2.5;
--- request
GET /geostream/status
--- error_code: 200
--- response_body_like: "running":true,.*"linger_ms":2.5[,}]
--- no_error_log
[error]



=== TEST 3: with batch rate 0 and no waiting location there is one producer, lingering 5 ms
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_kafka_batch_rate 0;
--- request
GET /geostream/status
--- error_code: 200
--- response_body_like: ^\{"producer":\{[^}]*"linger_ms":5,"batch_rate":0,"batching":true,"produced_prompt":0,"produced_batching":0\}
--- no_error_log
[error]



=== TEST 4: a 202 location gets a prompt producer too, which does not linger
--- request
GET /geostream/status
--- error_code: 200
--- response_body_like: "linger_ms":5,"prompt_linger_ms":0,"batch_rate":1000,"batching":false,
--- no_error_log
[error]



=== TEST 5: a waiting location gets the prompt producer even with batch rate 0, lingering 1 ms
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_kafka_batch_rate 0;
--- config
    location /producer-wait/ {
        geostream_produce bus;
        geostream_produce_wait on;
    }

    location = /geostream/status {
        geostream_status;
    }
--- request
GET /geostream/status
--- error_code: 200
--- response_body_like: "linger_ms":5,"prompt_linger_ms":1,"batch_rate":0,"batching":true,
--- no_error_log
[error]



=== TEST 6: the configured linger.ms is both producers'
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_kafka_producer_option linger.ms 20;
--- config
    location /producer-wait/ {
        geostream_produce bus;
        geostream_produce_wait on;
    }

    location = /geostream/status {
        geostream_status;
    }
--- request
GET /geostream/status
--- error_code: 200
--- response_body_like: "linger_ms":20,"prompt_linger_ms":20,
--- no_error_log
[error]



=== TEST 7: at a low rate, a 202 message goes through the prompt producer
--- request eval
["POST /producer/t-route-prompt
{\"name\":\"bus-1\",\"lat\":52.5,\"lon\":13.4}",
"GET /geostream/status"]
--- error_code eval
[202, 200]
--- response_body_like eval
[qr/^\{"name":"bus-1","message_id":null,"topic":"t-route-prompt"\}$/,
 qr/"batching":false,"produced_prompt":1,"produced_batching":0\}/]
--- no_error_log
[error]



=== TEST 8: with batch rate 0, a 202 message is batched
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_kafka_batch_rate 0;
--- request eval
["POST /producer/t-route-batch
{\"name\":\"bus-1\",\"lat\":52.5,\"lon\":13.4}",
"GET /geostream/status"]
--- error_code eval
[202, 200]
--- response_body_like eval
[qr/^\{"name":"bus-1","message_id":null,"topic":"t-route-batch"\}$/,
 qr/"batching":true,"produced_prompt":0,"produced_batching":1\}/]
--- no_error_log
[error]



=== TEST 9: with batch rate 0, a waiting request still goes promptly
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_kafka_batch_rate 0;
--- config
    location ~ ^/producer-wait/(?<topic>[^/]+)$ {
        geostream_produce $topic;
        geostream_produce_wait on;
    }

    location = /geostream/status {
        geostream_status;
    }
--- request eval
["POST /producer-wait/t-route-wait
{\"name\":\"bus-1\",\"lat\":52.5,\"lon\":13.4}",
"GET /geostream/status"]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/^\{"name":"bus-1","message_id":null,"topic":"t-route-wait","partition":\d+,"offset":\d+\}$/,
 qr/"produced_prompt":1,"produced_batching":0\}/]
--- no_error_log
[error]



=== TEST 10: a batch rate that is not a number is refused
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_kafka_batch_rate fast;
--- must_die



=== TEST 11: a batch rate beyond a billion a second is refused
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_kafka_batch_rate 5000000000;
--- must_die



=== TEST 12: geostream_status prometheus gives the counters in Prometheus' text format
--- config
    location ~ ^/producer/(?<topic>[^/]+)$ {
        geostream_produce $topic;
    }

    location = /metrics {
        geostream_status prometheus;
    }
--- request eval
["POST /producer/t-metrics
{\"name\":\"bus-1\",\"lat\":52.5,\"lon\":13.4}",
"GET /metrics"]
--- error_code eval
[202, 200]
--- response_body_like eval
[qr/^\{"name":"bus-1","message_id":null,"topic":"t-metrics"\}$/,
 qr/^# HELP geostream_produced_messages_total [^\n]+
# TYPE geostream_produced_messages_total counter
geostream_produced_messages_total\{producer="prompt"\} 1
geostream_produced_messages_total\{producer="batching"\} 0
# HELP geostream_delivered_messages_total [^\n]+
# TYPE geostream_delivered_messages_total counter
geostream_delivered_messages_total 1
(?:.*\n)*geostream_failed_messages_total 0
(?:.*\n)*# TYPE geostream_subscribers gauge
geostream_subscribers 0
(?:.*\n)*geostream_closed_too_slow_total 0$/]
--- no_error_log
[error]



=== TEST 13: the Prometheus page says its format
--- config
    location = /metrics {
        geostream_status prometheus;
    }
--- request
GET /metrics
--- error_code: 200
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_like: ^# HELP geostream_produced_messages_total
--- no_error_log
[error]



=== TEST 14: the JSON page adds the instance's counters
--- request eval
["POST /producer/t-instance
{\"name\":\"bus-1\",\"lat\":52.5,\"lon\":13.4}",
"GET /geostream/status"]
--- error_code eval
[202, 200]
--- response_body_like eval
[qr/^\{"name":"bus-1","message_id":null,"topic":"t-instance"\}$/,
 qr/"instance":\{"produced_prompt":1,"produced_batching":0,"delivered":1,"failed":0,"in_flight":0,"consumed":0,"skipped":0,"subscribers":0,"closed_too_slow":0\},"pid":\d+\}$/]
--- no_error_log
[error]



=== TEST 15: a status format other than json or prometheus is refused
--- config
    location = /metrics {
        geostream_status yaml;
    }
--- must_die



=== TEST 16: geostream_history takes a number of events and a size, in either order
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_history 64k 500;
--- request
GET /geostream/status
--- error_code: 200
--- no_error_log
[error]



=== TEST 17: geostream_history takes a size alone
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_history 1m;
--- request
GET /geostream/status
--- error_code: 200
--- no_error_log
[error]



=== TEST 18: geostream_history refuses two sizes
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_history 1m 2m;
--- must_die



=== TEST 19: geostream_history refuses what is neither a number nor a size
--- http_config
    geostream_kafka_brokers $TEST_NGINX_KAFKA_BROKERS;
    geostream_history lots;
--- must_die
