/*
 * Which of a worker's two producers takes a message: see
 * ngx_geostream_route.h.
 */

#include <string.h>

#include "ngx_geostream_route.h"


void
ngx_geostream_route_init(ngx_geostream_route_t *route, uint32_t batch_rate)
{
    memset(route, 0, sizeof(ngx_geostream_route_t));

    route->batch_rate = batch_rate;
    route->batching = (batch_rate == 0);
}


/* FNV-1a: keys are short names, and any spread over 4096 buckets will do */
uint32_t
ngx_geostream_route_bucket(const void *key, size_t len)
{
    size_t          i;
    uint32_t        h;
    const uint8_t  *p;

    p = key;
    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }

    return h % NGX_GEOSTREAM_ROUTE_BUCKETS;
}


/*
 * The window's count decides the next window: batching above the rate,
 * prompt again below half of it, so that a rate near the line does not
 * flip the producer at every window.
 */
static void
ngx_geostream_route_count(ngx_geostream_route_t *route, uint64_t now)
{
    uint64_t  rate;

    if (route->batch_rate == 0) {
        return;
    }

    if (now - route->window_start >= NGX_GEOSTREAM_ROUTE_WINDOW) {
        /* the last window's messages per second */
        rate = (uint64_t) route->window_count
               * (1000 / NGX_GEOSTREAM_ROUTE_WINDOW);

        /* a whole window without a message: the rate fell to nothing */
        if (now - route->window_start >= 2 * NGX_GEOSTREAM_ROUTE_WINDOW) {
            rate = 0;
        }

        if (rate > route->batch_rate) {
            route->batching = 1;

        } else if (rate * 2 < route->batch_rate) {
            route->batching = 0;
        }

        route->window_start = now;
        route->window_count = 0;
    }

    route->window_count++;
}


unsigned
ngx_geostream_route_pick(ngx_geostream_route_t *route, uint32_t bucket,
    int waiting, uint64_t now)
{
    unsigned  which;

    if (!waiting) {
        ngx_geostream_route_count(route, now);
    }

    if (route->inflight[bucket]) {
        /* the key's earlier messages are still on their way: follow them */
        which = route->owner[bucket];

    } else if (waiting) {
        which = NGX_GEOSTREAM_ROUTE_PROMPT;

    } else {
        which = route->batching ? NGX_GEOSTREAM_ROUTE_BATCHING
                                : NGX_GEOSTREAM_ROUTE_PROMPT;
    }

    route->owner[bucket] = (uint8_t) which;
    route->inflight[bucket]++;

    return which;
}


void
ngx_geostream_route_done(ngx_geostream_route_t *route, uint32_t bucket)
{
    if (route->inflight[bucket]) {
        route->inflight[bucket]--;
    }
}
