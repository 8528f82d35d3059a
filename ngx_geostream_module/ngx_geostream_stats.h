/*
 * What a worker has done: its counters.
 *
 * They live in shared memory (ngx_http_geostream_stats.c), so that
 * whichever worker answers the status location can add up the whole
 * instance; the worker's threads count too, so every field only ever
 * changes atomically.
 */

#ifndef _NGX_GEOSTREAM_STATS_H_INCLUDED_
#define _NGX_GEOSTREAM_STATS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_geostream_route.h"


/*
 * A worker's producers.  linger.ms is a producer's, not a message's: the
 * prompt one does not batch (1 ms when a location waits), the batching
 * one batches for linger.ms (5 ms by default).  Which one takes a
 * message: ngx_geostream_route.h.  The prompt one exists only when a
 * location can use it (a waiting location, or a 202 location with
 * geostream_kafka_batch_rate not 0).
 */
#define NGX_GEOSTREAM_PRODUCER_PROMPT    NGX_GEOSTREAM_ROUTE_PROMPT
#define NGX_GEOSTREAM_PRODUCER_BATCHING  NGX_GEOSTREAM_ROUTE_BATCHING
#define NGX_GEOSTREAM_PRODUCERS          2


typedef struct {
    /* accepted by librdkafka, per producer (NGX_GEOSTREAM_PRODUCER_*) */
    ngx_atomic_t                produced[NGX_GEOSTREAM_PRODUCERS];
    ngx_atomic_t                delivered;   /* acknowledged by Kafka */
    ngx_atomic_t                failed;      /* refused or timed out */
    ngx_atomic_t                in_flight;   /* accepted, no report yet */
    ngx_atomic_t                consumed;    /* read by the consumer */
    ngx_atomic_t                skipped;     /* not a valid position */
    ngx_atomic_t                subscribers; /* streams open now */
    ngx_atomic_t                closed_too_slow;
} ngx_geostream_stats_t;

/* "st": the worker's counters (ngx_http_geostream_worker.stats) */
#define ngx_geostream_stats_add(st, field, n)                                 \
    (void) ngx_atomic_fetch_add(&(st)->field, n)


#endif /* _NGX_GEOSTREAM_STATS_H_INCLUDED_ */
