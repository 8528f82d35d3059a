/*
 * Which of a worker's two producers takes a message.
 *
 * The prompt producer batches for 0 or 1 ms, the batching one for
 * linger.ms (5 ms by default).  A message that waits for the full
 * linger.ms costs a live map that much latency, and at low rates every
 * message waits for it, since no batch ever fills; under load, short
 * batches cost a Kafka request each, and librdkafka's broker thread then
 * takes the CPU that nginx would answer with.  So a 202 message goes to
 * the prompt producer while the worker's rate of them is low, and to the
 * batching one above a configured rate; a waiting request always prefers
 * the prompt one, since its client pays the linger.
 *
 * Kafka keeps the order of one producer's messages to a partition, not of
 * two producers'.  So a key (thus its partition) that still has messages
 * in flight (handed over, delivery report not yet served) stays with the
 * producer that holds them, whatever the rate says; only a key with
 * nothing in flight moves.  Keys are tracked by a hash bucket: two keys
 * that share one only keep each other on one producer a little longer.
 *
 * Plain C: no nginx needed, so unit tests reach it.
 */

#ifndef _NGX_GEOSTREAM_ROUTE_H_INCLUDED_
#define _NGX_GEOSTREAM_ROUTE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_GEOSTREAM_ROUTE_PROMPT    0
#define NGX_GEOSTREAM_ROUTE_BATCHING  1

#define NGX_GEOSTREAM_ROUTE_BUCKETS   4096

/* the rate is counted over windows of this length */
#define NGX_GEOSTREAM_ROUTE_WINDOW    100     /* ms */


typedef struct {
    /* messages in flight, and the producer that has them, per bucket */
    uint32_t        inflight[NGX_GEOSTREAM_ROUTE_BUCKETS];
    uint8_t         owner[NGX_GEOSTREAM_ROUTE_BUCKETS];

    /* 202 messages per second above which they are batched; 0: always */
    uint32_t        batch_rate;

    uint64_t        window_start;             /* ms */
    uint32_t        window_count;
    unsigned        batching:1;
} ngx_geostream_route_t;


void ngx_geostream_route_init(ngx_geostream_route_t *route,
    uint32_t batch_rate);
uint32_t ngx_geostream_route_bucket(const void *key, size_t len);

/*
 * The producer for a message of "bucket", counted in flight there:
 * "waiting" says whether its request waits for the delivery report;
 * "now" is in ms.
 */
unsigned ngx_geostream_route_pick(ngx_geostream_route_t *route,
    uint32_t bucket, int waiting, uint64_t now);

/* the message's delivery report was served, or it was never handed over */
void ngx_geostream_route_done(ngx_geostream_route_t *route, uint32_t bucket);


#endif /* _NGX_GEOSTREAM_ROUTE_H_INCLUDED_ */
