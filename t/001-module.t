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



=== TEST 3: without a waiting location there is one producer, lingering 5 ms
--- request
GET /geostream/status
--- error_code: 200
--- response_body_like: ^\{"producer":\{[^}]*"linger_ms":5\}
--- no_error_log
[error]



=== TEST 4: a waiting location gets its own producer, lingering 1 ms
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
--- response_body_like: "linger_ms":5,"waiting_linger_ms":1\}
--- no_error_log
[error]



=== TEST 5: the configured linger.ms is both producers'
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
--- response_body_like: "linger_ms":20,"waiting_linger_ms":20\}
--- no_error_log
[error]
