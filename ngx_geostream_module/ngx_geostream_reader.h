/*
 * The reader: a worker's thread that reads every topic the worker's
 * subscribers follow, turns each message into a ready-made SSE event
 * (ngx_geostream_event.h) and hands batches of them to the event loop
 * through its bridge (ngx_geostream_bridge.h).
 *
 * The thread starts on the first topic to follow and reads with the
 * simple consumer interface, at known offsets, with no consumer group.
 * It never touches nginx objects; the event loop never waits for Kafka.
 */

#ifndef _NGX_GEOSTREAM_READER_H_INCLUDED_
#define _NGX_GEOSTREAM_READER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <pthread.h>
#include <librdkafka/rdkafka.h>

#include "ngx_geostream_event.h"
#include "ngx_geostream_kafka_conf.h"
#include "ngx_geostream_kafka_thread.h"
#include "ngx_geostream_stats.h"


/* a topic as the thread follows it, and one the loop asks it to follow */
typedef struct ngx_geostream_followed_s  ngx_geostream_followed_t;
typedef struct ngx_geostream_follow_s    ngx_geostream_follow_t;


typedef struct {

    ngx_geostream_kafka_thread_t      kt;         /* its handle, its lock */

    /* under kt.mutex */
    ngx_geostream_follow_t           *follow;

    /* thread-only */
    ngx_geostream_followed_t         *followed;
    char                             *cluster;      /* Kafka's cluster id */
    ngx_uint_t                        brokers_down; /* since the last check */
} ngx_geostream_reader_t;


/*
 * Sets the reader up, starting nothing: events will go to "handler" with
 * "data", on the event loop of "cycle"; what it reads is counted in
 * "stats"
 */
void ngx_geostream_reader_init(ngx_geostream_reader_t *rr,
    ngx_cycle_t *cycle, ngx_geostream_kafka_conf_t *kcf,
    ngx_geostream_stats_t *stats, ngx_geostream_bridge_handler_pt handler,
    void *data);

/* starts the thread (ngx_geostream_reader_follow() does, on first use) */
ngx_int_t ngx_geostream_reader_start(ngx_geostream_reader_t *rr);

/* asks the thread to follow a topic: a TOPIC_READY event says it does */
ngx_int_t ngx_geostream_reader_follow(ngx_geostream_reader_t *rr,
    ngx_str_t *topic);

/*
 * Stops the thread, waiting for it until "deadline" (ngx_current_msec's
 * clock); a thread still in a call to Kafka then is left to the exiting
 * process.  Nothing to do when it was not started.
 */
void ngx_geostream_reader_stop(ngx_geostream_reader_t *rr,
    ngx_msec_t deadline);


#endif /* _NGX_GEOSTREAM_READER_H_INCLUDED_ */
