/*
 * Unit tests of the producer choice (ngx_geostream_route.c): the rate
 * decides for a key with nothing in flight; a key with messages in flight
 * stays with their producer.
 */

#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "ngx_geostream_route.h"


#define PROMPT    NGX_GEOSTREAM_ROUTE_PROMPT
#define BATCHING  NGX_GEOSTREAM_ROUTE_BATCHING


static ngx_geostream_route_t  route;


/* "n" 202 messages of another key, spread over [from, from + 100 ms) */
static void
load(uint32_t n, uint64_t from)
{
    uint32_t  i, bucket;

    bucket = ngx_geostream_route_bucket("load", 4);

    for (i = 0; i < n; i++) {
        (void) ngx_geostream_route_pick(&route, bucket, 0, from + i * 100 / n);
        ngx_geostream_route_done(&route, bucket);
    }
}


static void
test_bucket(void)
{
    uint32_t  a, b;

    a = ngx_geostream_route_bucket("bus-17", 6);
    b = ngx_geostream_route_bucket("bus-17", 6);

    ok(a == b, "bucket: the same key, the same bucket");
    ok(a < NGX_GEOSTREAM_ROUTE_BUCKETS, "bucket: within the table");
    ok(ngx_geostream_route_bucket("", 0) < NGX_GEOSTREAM_ROUTE_BUCKETS,
       "bucket: an empty key has one too");
}


static void
test_rate(void)
{
    uint32_t  a;

    a = ngx_geostream_route_bucket("a", 1);

    ngx_geostream_route_init(&route, 2000);

    ok(ngx_geostream_route_pick(&route, a, 0, 1000) == PROMPT,
       "rate: a first 202 message goes promptly");
    ngx_geostream_route_done(&route, a);

    /* 300 messages in 100 ms: 3,000/s, over 2,000/s */
    load(300, 1100);
    ok(ngx_geostream_route_pick(&route, a, 0, 1200) == BATCHING,
       "rate: above the rate, the next window batches");
    ngx_geostream_route_done(&route, a);

    /* 150 in a window: 1,500/s, under the rate but over half of it */
    load(149, 1200);
    ok(ngx_geostream_route_pick(&route, a, 0, 1300) == BATCHING,
       "rate: between half the rate and the rate, it stays batching");
    ngx_geostream_route_done(&route, a);

    /* 90 in a window: 900/s, under half the rate */
    load(89, 1300);
    ok(ngx_geostream_route_pick(&route, a, 0, 1400) == PROMPT,
       "rate: under half the rate, prompt again");
    ngx_geostream_route_done(&route, a);

    load(300, 1500);
    ok(ngx_geostream_route_pick(&route, a, 0, 1600) == BATCHING,
       "rate: batching again under load");
    ngx_geostream_route_done(&route, a);

    /* then nothing for a while */
    ok(ngx_geostream_route_pick(&route, a, 0, 5000) == PROMPT,
       "rate: after a silence, prompt");
    ngx_geostream_route_done(&route, a);

    ok(ngx_geostream_route_pick(&route, a, 1, 5000) == PROMPT,
       "waiting: a waiting request prefers the prompt producer");
    ngx_geostream_route_done(&route, a);
}


static void
test_order(void)
{
    uint32_t  a, b;

    a = ngx_geostream_route_bucket("a", 1);
    b = ngx_geostream_route_bucket("b", 1);

    ngx_geostream_route_init(&route, 2000);

    /* "a" has a message in flight on the prompt producer */
    ok(ngx_geostream_route_pick(&route, a, 0, 1000) == PROMPT,
       "order: a's first message goes promptly");

    load(300, 1000);

    ok(ngx_geostream_route_pick(&route, b, 0, 1100) == BATCHING,
       "order: under load, a key with nothing in flight batches");
    ok(ngx_geostream_route_pick(&route, a, 0, 1100) == PROMPT,
       "order: a key with a message in flight stays with it");
    ok(route.inflight[a] == 2, "order: both of a's messages are counted");

    ngx_geostream_route_done(&route, a);
    ok(ngx_geostream_route_pick(&route, a, 0, 1100) == PROMPT,
       "order: while one is in flight, it still stays");
    ngx_geostream_route_done(&route, a);
    ngx_geostream_route_done(&route, a);

    ok(ngx_geostream_route_pick(&route, a, 0, 1100) == BATCHING,
       "order: once none is in flight, the key moves");

    /* a waiting request of a key in flight on the batching producer */
    ok(ngx_geostream_route_pick(&route, a, 1, 1100) == BATCHING,
       "order: a waiting request follows its key's messages in flight");
    ngx_geostream_route_done(&route, a);
    ngx_geostream_route_done(&route, a);

    ok(ngx_geostream_route_pick(&route, a, 1, 1100) == PROMPT,
       "order: with nothing in flight, a waiting request goes promptly");
    ngx_geostream_route_done(&route, a);

    ngx_geostream_route_done(&route, b);
    ngx_geostream_route_done(&route, b);
    ok(route.inflight[b] == 0, "done: never counts below nothing");
}


static void
test_always_batch(void)
{
    uint32_t  a;

    a = ngx_geostream_route_bucket("a", 1);

    ngx_geostream_route_init(&route, 0);

    ok(ngx_geostream_route_pick(&route, a, 0, 1000) == BATCHING,
       "rate 0: a 202 message is always batched");
    ngx_geostream_route_done(&route, a);

    ok(ngx_geostream_route_pick(&route, a, 0, 9000) == BATCHING,
       "rate 0: even after a silence");
    ngx_geostream_route_done(&route, a);

    ok(ngx_geostream_route_pick(&route, a, 1, 9000) == PROMPT,
       "rate 0: a waiting request still goes promptly");
    ngx_geostream_route_done(&route, a);
}


int
main(void)
{
    test_bucket();
    test_rate();
    test_order();
    test_always_batch();

    return done_testing();
}
