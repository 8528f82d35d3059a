/*
 * A worker's thread that reads Kafka.  See ngx_geostream_kafka_thread.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_geostream_kafka_thread.h"


static ngx_int_t ngx_geostream_kafka_thread_join(pthread_t thread,
    ngx_msec_t deadline);


void
ngx_geostream_kafka_thread_init(ngx_geostream_kafka_thread_t *kt,
    ngx_cycle_t *cycle, const char *name, ngx_geostream_kafka_conf_t *kcf,
    ngx_geostream_stats_t *stats, ngx_geostream_bridge_handler_pt handler,
    void *data)
{
    ngx_memzero(kt, sizeof(ngx_geostream_kafka_thread_t));

    kt->name = name;
    kt->cycle = cycle;
    kt->conf = kcf;
    kt->stats = stats;
    kt->handler = handler;
    kt->data = data;
    kt->client.log = cycle->log;
}


ngx_int_t
ngx_geostream_kafka_thread_start(ngx_geostream_kafka_thread_t *kt,
    ngx_uint_t partition_eof, void *(*run)(void *arg), void *arg)
{
    int           err;
    ngx_cycle_t  *cycle;

    cycle = kt->cycle;
    kt->stop = 0;

    kt->rk = ngx_geostream_kafka_consumer_new(kt->conf, &kt->client,
                                              partition_eof);
    if (kt->rk == NULL) {
        return NGX_ERROR;
    }

    kt->queue = rd_kafka_queue_new(kt->rk);
    if (kt->queue == NULL) {
        goto no_queue;
    }

    if (ngx_geostream_bridge_init(&kt->bridge, cycle, kt->name, kt->handler,
                                  kt->data)
        != NGX_OK)
    {
        goto no_bridge;
    }

    if (pthread_mutex_init(&kt->mutex, NULL) != 0) {
        goto no_mutex;
    }

    if (pthread_cond_init(&kt->cond, NULL) != 0) {
        goto no_cond;
    }

    err = pthread_create(&kt->thread, NULL, run, arg);
    if (err == 0) {
        kt->running = 1;

        ngx_log_debug1(NGX_LOG_DEBUG_CORE, cycle->log, 0,
                       "geostream %s: thread started", kt->name);
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ALERT, cycle->log, err,
                  "geostream: cannot start the %s thread", kt->name);

    pthread_cond_destroy(&kt->cond);

no_cond:

    pthread_mutex_destroy(&kt->mutex);

no_mutex:

    ngx_geostream_bridge_close(&kt->bridge);

no_bridge:

    rd_kafka_queue_destroy(kt->queue);
    kt->queue = NULL;

no_queue:

    rd_kafka_destroy(kt->rk);
    kt->rk = NULL;

    return NGX_ERROR;
}


ngx_int_t
ngx_geostream_kafka_thread_stop(ngx_geostream_kafka_thread_t *kt,
    ngx_msec_t deadline)
{
    if (!kt->running) {
        return NGX_DECLINED;
    }

    pthread_mutex_lock(&kt->mutex);
    kt->stop = 1;
    pthread_cond_signal(&kt->cond);
    pthread_mutex_unlock(&kt->mutex);

    /* out of its wait for messages */
    rd_kafka_queue_yield(kt->queue);

    kt->running = 0;

    /*
     * With Kafka away, the thread may be in a metadata request that takes
     * its whole timeout: the worker does not wait past its deadline for
     * it, and leaves the thread as it is (the process is exiting).
     */
    if (ngx_geostream_kafka_thread_join(kt->thread, deadline) != NGX_OK) {
        ngx_log_error(NGX_LOG_NOTICE, kt->cycle->log, 0,
                      "geostream: the %s thread is still waiting for "
                      "kafka; the worker exits without it", kt->name);
        return NGX_AGAIN;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_CORE, kt->cycle->log, 0,
                   "geostream %s: thread stopped", kt->name);

    return NGX_OK;
}


void
ngx_geostream_kafka_thread_free(ngx_geostream_kafka_thread_t *kt)
{
    rd_kafka_queue_destroy(kt->queue);
    rd_kafka_destroy(kt->rk);
    kt->queue = NULL;
    kt->rk = NULL;

    ngx_geostream_bridge_close(&kt->bridge);
    pthread_cond_destroy(&kt->cond);
    pthread_mutex_destroy(&kt->mutex);
}


ngx_uint_t
ngx_geostream_kafka_thread_stopping(ngx_geostream_kafka_thread_t *kt)
{
    ngx_uint_t  stop;

    pthread_mutex_lock(&kt->mutex);
    stop = kt->stop;
    pthread_mutex_unlock(&kt->mutex);

    return stop;
}


/*
 * rd_kafka_consume_batch_queue() alone waits out its whole timeout to
 * fill the batch: ~100 ms of latency on every event of a quiet topic.
 */
ssize_t
ngx_geostream_kafka_thread_consume(ngx_geostream_kafka_thread_t *kt,
    int timeout, rd_kafka_message_t **msgs, size_t size)
{
    ssize_t  n;

    msgs[0] = rd_kafka_consume_queue(kt->queue, timeout);

    if (msgs[0] == NULL) {
        return 0;
    }

    n = rd_kafka_consume_batch_queue(kt->queue, 0, msgs + 1, size - 1);

    return 1 + (n > 0 ? n : 0);
}


/* waits for the thread until "deadline": NGX_OK once it has ended */
static ngx_int_t
ngx_geostream_kafka_thread_join(pthread_t thread, ngx_msec_t deadline)
{
    ngx_msec_int_t   left;
    struct timespec  ts;

    ngx_time_update();
    left = (ngx_msec_int_t) (deadline - ngx_current_msec);

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return pthread_join(thread, NULL) == 0 ? NGX_OK : NGX_ERROR;
    }

    if (left > 0) {
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;

        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
    }

    return pthread_timedjoin_np(thread, NULL, &ts) == 0 ? NGX_OK : NGX_AGAIN;
}
