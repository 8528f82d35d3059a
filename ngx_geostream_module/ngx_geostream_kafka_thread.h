/*
 * A worker's thread that reads Kafka (the reader, the replay thread): its
 * consumer handle and queue, its lock and stop flag, its bridge to the
 * event loop (ngx_geostream_bridge.h), its start, and its stop within
 * the exiting worker's deadline.  What the thread does is its owner's:
 * the owner's state embeds this one and its thread function gets the
 * owner's pointer.
 */

#ifndef _NGX_GEOSTREAM_KAFKA_THREAD_H_INCLUDED_
#define _NGX_GEOSTREAM_KAFKA_THREAD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <pthread.h>
#include <librdkafka/rdkafka.h>

#include "ngx_geostream_bridge.h"
#include "ngx_geostream_kafka_conf.h"
#include "ngx_geostream_stats.h"


typedef struct {
    const char                     *name;        /* "reader", "replay" */
    ngx_cycle_t                    *cycle;
    ngx_geostream_kafka_conf_t     *conf;
    ngx_geostream_stats_t          *stats;       /* what it reads counts */
    ngx_geostream_bridge_handler_pt handler;     /* the loop's, per batch */
    void                           *data;

    /* its handle's opaque: the owner sets "down" and "data" if it wants */
    ngx_geostream_kafka_client_t    client;
    rd_kafka_t                     *rk;
    rd_kafka_queue_t               *queue;
    ngx_geostream_bridge_t          bridge;

    pthread_t                       thread;
    pthread_mutex_t                 mutex;       /* the owner's, too */
    pthread_cond_t                  cond;        /* signalled on stop */

    /* under mutex */
    ngx_uint_t                      stop;

    unsigned                        running:1;
} ngx_geostream_kafka_thread_t;


/*
 * Sets the thread up, starting nothing: its events will go to "handler"
 * with "data" on the loop of "cycle", what it reads is counted in "stats"
 */
void ngx_geostream_kafka_thread_init(ngx_geostream_kafka_thread_t *kt,
    ngx_cycle_t *cycle, const char *name, ngx_geostream_kafka_conf_t *kcf,
    ngx_geostream_stats_t *stats, ngx_geostream_bridge_handler_pt handler,
    void *data);

/*
 * Makes the thread's consumer handle ("partition_eof": librdkafka says
 * when a partition's end is reached) and bridge, then runs "run" with
 * "arg" on the thread.  NGX_ERROR (logged) leaves nothing to free.
 */
ngx_int_t ngx_geostream_kafka_thread_start(ngx_geostream_kafka_thread_t *kt,
    ngx_uint_t partition_eof, void *(*run)(void *arg), void *arg);

/*
 * Asks the thread to stop and waits for it until "deadline"
 * (ngx_current_msec's clock): NGX_OK once it has ended, when the owner
 * frees what the thread used and then calls ngx_geostream_kafka_thread_free();
 * NGX_AGAIN (logged) when it is still in a call to Kafka that does not
 * return in time: the exiting worker leaves it, and frees nothing.
 * NGX_DECLINED when it was not running.
 */
ngx_int_t ngx_geostream_kafka_thread_stop(ngx_geostream_kafka_thread_t *kt,
    ngx_msec_t deadline);

void ngx_geostream_kafka_thread_free(ngx_geostream_kafka_thread_t *kt);

/* on the thread: whether it is to stop */
ngx_uint_t ngx_geostream_kafka_thread_stopping(
    ngx_geostream_kafka_thread_t *kt);

/*
 * On the thread: waits up to "timeout" ms for a message of its queue,
 * then takes every message that is ready, up to "size", without waiting
 * more; how many are in "msgs"
 */
ssize_t ngx_geostream_kafka_thread_consume(ngx_geostream_kafka_thread_t *kt,
    int timeout, rd_kafka_message_t **msgs, size_t size);


#endif /* _NGX_GEOSTREAM_KAFKA_THREAD_H_INCLUDED_ */
