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
    geostream_kafka_producer_option client.id geostream-test;
--- request
GET /geostream/status
--- error_code: 200
--- response_body_like: "running":true
--- no_error_log
[error]
