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


/*
 * Random picks and reports against a plain model: whatever the rate does,
 * a key never has messages in flight on both producers at once, and once
 * every report is in, nothing is counted in flight.
 */
static void
test_random(void)
{
    int        mixed, left, was_batching, switches;
    char       name[8];
    uint32_t   i, k, n, bucket, seed;
    uint32_t   inflight[2][64], keys[64];
    uint32_t   queue[32], qlen, picks[2];
    uint64_t   now;

    ngx_geostream_route_init(&route, 500);
    memset(inflight, 0, sizeof(inflight));

    for (k = 0; k < 64; k++) {
        n = (uint32_t) snprintf(name, sizeof(name), "k%u", k);
        keys[k] = ngx_geostream_route_bucket(name, n);
    }

    seed = 12345;
    now = 1000;
    qlen = 0;
    mixed = 0;
    switches = 0;
    was_batching = route.batching;
    picks[0] = picks[1] = 0;

    for (i = 0; i < 200000; i++) {
        seed = seed * 1103515245u + 12345u;

        /* bursts and lulls, so that the rate crosses the line both ways */
        now += ((i / 5000) % 2) ? (seed >> 8) % 10 : (seed >> 8) % 40 == 0;

        /* few in flight, as when reports come within milliseconds */
        if (qlen == 0 || (qlen < 32 && (seed >> 16) % 2 == 0)) {
            k = (seed >> 20) % 64;
            n = ngx_geostream_route_pick(&route, keys[k], (seed >> 4) % 5 == 0,
                                         now);
            inflight[n][k]++;
            picks[n]++;
            queue[qlen++] = (n << 8) | k;

        } else {
            /* a report of any message in flight, not only the oldest */
            k = (seed >> 20) % qlen;
            n = queue[k] >> 8;
            bucket = keys[queue[k] & 0xff];
            inflight[n][queue[k] & 0xff]--;
            ngx_geostream_route_done(&route, bucket);
            queue[k] = queue[--qlen];
        }

        for (k = 0; k < 64; k++) {
            if (inflight[0][k] && inflight[1][k]) {
                mixed = 1;
            }
        }

        if (route.batching != was_batching) {
            was_batching = route.batching;
            switches++;
        }
    }

    ok(picks[0] > 1000 && picks[1] > 1000, "random: both producers used");
    ok(switches >= 20, "random: the rate crossed the line both ways");

    ok(!mixed, "random: no key in flight on both producers at once");

    /* the last reports: the router's counts come back to nothing */
    while (qlen) {
        ngx_geostream_route_done(&route, keys[queue[--qlen] & 0xff]);
    }

    left = 0;
    for (k = 0; k < NGX_GEOSTREAM_ROUTE_BUCKETS; k++) {
        left += route.inflight[k] != 0;
    }

    ok(left == 0, "random: every pick is matched by its report");
}


int
main(void)
{
    test_bucket();
    test_rate();
    test_order();
    test_always_batch();
    test_random();

    return done_testing();
}
