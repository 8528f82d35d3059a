/*
 * librdkafka handles of a worker and their bridge to the event loop.
 *
 * The producer lives on the event loop: librdkafka signals waiting
 * delivery reports through a pipe that nginx watches, and the loop serves
 * them with a non-blocking rd_kafka_poll().
 *
 * The consumer lives on its own thread, one per worker: see
 * ngx_geostream_reader.h (and ngx_geostream_replay.h for the replays).
 */

#ifndef _NGX_GEOSTREAM_KAFKA_H_INCLUDED_
#define _NGX_GEOSTREAM_KAFKA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <pthread.h>
#include <librdkafka/rdkafka.h>

#include "ngx_geostream_route.h"

/* the threads' APIs, for the locations, until worker.c includes them */
#include "ngx_geostream_event.h"
#include "ngx_geostream_bridge.h"
#include "ngx_geostream_reader.h"
#include "ngx_geostream_replay.h"


typedef void (*ngx_geostream_dispatch_pt)(ngx_geostream_event_t *batch);
typedef void (*ngx_geostream_delivered_pt)(const rd_kafka_message_t *msg);


typedef struct {
    ngx_str_t                   brokers;
    ngx_array_t                *options;            /* ngx_keyval_t */
    ngx_array_t                *producer_options;   /* ngx_keyval_t */
    ngx_array_t                *consumer_options;   /* ngx_keyval_t */
    ngx_msec_t                  flush_timeout;
    ngx_msec_t                  down_grace;         /* brokers down: 503 */
    ngx_int_t                   batch_rate;         /* messages/s */
    ngx_uint_t                  prompt_producer;    /* a location uses it */
    ngx_uint_t                  waiting_location;
} ngx_geostream_kafka_conf_t;


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


/*
 * What a worker has done.  It lives in shared memory
 * (ngx_http_geostream_stats.c), so that whichever worker answers the
 * status location can add up the whole instance; the worker's consumer
 * thread counts too, so every field only ever changes atomically.
 */
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

#define ngx_geostream_stats_add(field, n)                                     \
    (void) ngx_atomic_fetch_add(&ngx_geostream_stats->field, n)


/* checks every configured librdkafka property; for "nginx -t" */
char *ngx_geostream_kafka_check_conf(ngx_conf_t *cf,
    ngx_geostream_kafka_conf_t *kcf);

ngx_int_t ngx_geostream_kafka_init_process(ngx_cycle_t *cycle,
    ngx_geostream_kafka_conf_t *kcf, ngx_geostream_delivered_pt delivered,
    ngx_geostream_dispatch_pt dispatch);
void ngx_geostream_kafka_exit_process(ngx_cycle_t *cycle);


/* a worker's producer, or NULL when it could not be created */
rd_kafka_t *ngx_geostream_kafka_producer(ngx_uint_t which);

/* messages that the worker's producers hold, delivery reports included */
int ngx_geostream_kafka_queued(void);

/*
 * Whether every producer of the worker has had all its brokers down for
 * geostream_kafka_down_grace: new messages would only wait to expire.
 */
ngx_uint_t ngx_geostream_kafka_unavailable(void);

/*
 * Called while a stopping worker waits for delivery reports: the first
 * call starts geostream_kafka_flush_timeout, and once it is over what is
 * still undelivered is given up (NGX_OK; NGX_AGAIN before).
 */
ngx_int_t ngx_geostream_kafka_stopping(void);

/*
 * Until the worker's state has one struct: asks the worker's reader
 * thread (started on first use) to follow a topic; the worker's replayer
 */
ngx_int_t ngx_geostream_kafka_follow(ngx_str_t *topic);
ngx_geostream_replayer_t *ngx_geostream_kafka_replayer(void);

rd_kafka_t *ngx_geostream_kafka_consumer_new(ngx_log_t *log,
    ngx_uint_t partition_eof);

/* the worker's counters: a slot of the shared zone, once the worker runs */
extern ngx_geostream_stats_t       *ngx_geostream_stats;

/* set once the worker flushes its producer on exit: requests are gone */
extern ngx_uint_t                   ngx_geostream_kafka_exiting;


#endif /* _NGX_GEOSTREAM_KAFKA_H_INCLUDED_ */
