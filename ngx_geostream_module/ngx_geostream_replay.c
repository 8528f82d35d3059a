/*
 * Replays from Kafka: the past of a topic that a worker's history ring no
 * longer holds, for the subscribers that ask for it (a cursor from before
 * the ring, or since= further back).
 *
 * One replay thread per worker, started on first use, with a consumer
 * instance of its own, runs the replays one after the other; it never
 * opens a consumer per client.  Each replayed message becomes an event
 * for that replay's owner alone, handed to the event loop like the live
 * ones; a REPLAY_DONE event ends it, and the owner then continues from
 * the history ring and the live feed.  Nothing here touches nginx
 * objects.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <pthread.h>

#include "ngx_geostream_kafka.h"


#define NGX_GEOSTREAM_REPLAY_WAIT       200      /* ms, per batch */
#define NGX_GEOSTREAM_REPLAY_BATCH      512
#define NGX_GEOSTREAM_REPLAY_DEADLINE   30       /* s, per replay */
#define NGX_GEOSTREAM_REPLAY_TIMEOUT    5000     /* ms, metadata */

#define NGX_GEOSTREAM_INCOMPLETE_NOTICE                                      \
    "event: gap\ndata: {\"reason\":\"replay_failed\",\"detail\":"            \
    "\"Kafka could not replay all of the requested messages; the stream "    \
    "goes on without them\"}\n\n"

#define NGX_GEOSTREAM_RETENTION_NOTICE                                       \
    "event: retention\ndata: {\"reason\":\"retention\",\"detail\":"          \
    "\"Kafka no longer has some of the requested messages; the stream "      \
    "resumes with the oldest it has\"}\n\n"


typedef struct {
    rd_kafka_t               *rk;
    rd_kafka_queue_t         *queue;
    pthread_t                 thread;
    pthread_mutex_t           mutex;
    pthread_cond_t            cond;

    /* under mutex */
    ngx_geostream_replay_t   *jobs;
    ngx_geostream_replay_t  **jobs_tail;
    ngx_uint_t                stop;
} ngx_geostream_replayer_t;


static void *ngx_geostream_replay_thread(void *data);
static ngx_int_t ngx_geostream_replay_run(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp);
static ngx_int_t ngx_geostream_replay_times(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp);
static void ngx_geostream_replay_emit(ngx_geostream_replay_t *rp,
    ngx_geostream_event_type_e type, const char *data, size_t len);


static ngx_geostream_replayer_t  *ngx_geostream_replayer;


ngx_geostream_replay_t *
ngx_geostream_replay_start(ngx_str_t *topic, const int64_t *from,
    const int64_t *to, size_t n, int64_t since, ngx_uint_t notify_retention,
    void *owner)
{
    ngx_geostream_replay_t    *rp;
    ngx_geostream_replayer_t  *rs;

    rs = ngx_geostream_replayer;

    if (rs == NULL) {
        rs = ngx_calloc(sizeof(ngx_geostream_replayer_t), ngx_cycle->log);
        if (rs == NULL) {
            return NULL;
        }

        rs->jobs_tail = &rs->jobs;

        rs->rk = ngx_geostream_kafka_consumer_new(ngx_cycle->log, 1);
        if (rs->rk == NULL) {
            ngx_free(rs);
            return NULL;
        }

        rs->queue = rd_kafka_queue_new(rs->rk);

        if (pthread_mutex_init(&rs->mutex, NULL) != 0
            || pthread_cond_init(&rs->cond, NULL) != 0
            || pthread_create(&rs->thread, NULL, ngx_geostream_replay_thread,
                              rs)
               != 0)
        {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "geostream: cannot start the replay thread");
            rd_kafka_queue_destroy(rs->queue);
            rd_kafka_destroy(rs->rk);
            ngx_free(rs);
            return NULL;
        }

        ngx_geostream_replayer = rs;
    }

    rp = ngx_calloc(sizeof(ngx_geostream_replay_t) + topic->len + 1
                    + 2 * (n ? n : 1) * sizeof(int64_t), ngx_cycle->log);
    if (rp == NULL) {
        return NULL;
    }

    rp->owner = owner;
    rp->since = since;
    rp->notify_retention = notify_retention;

    rp->rd.next_offsets = (int64_t *) (rp + 1);
    rp->to = rp->rd.next_offsets + (n ? n : 1);
    rp->rd.partitions = (int32_t) n;
    rp->rd.name = (char *) (rp->to + (n ? n : 1));
    rp->rd.name_len = topic->len;

    ngx_memcpy(rp->rd.name, topic->data, topic->len);
    rp->rd.name[topic->len] = '\0';

    if (n) {
        ngx_memcpy(rp->rd.next_offsets, from, n * sizeof(int64_t));
        ngx_memcpy(rp->to, to, n * sizeof(int64_t));
    }

    pthread_mutex_lock(&rs->mutex);
    *rs->jobs_tail = rp;
    rs->jobs_tail = &rp->next;
    pthread_cond_signal(&rs->cond);
    pthread_mutex_unlock(&rs->mutex);

    return rp;
}


void
ngx_geostream_replay_free(ngx_geostream_replay_t *rp)
{
    ngx_free(rp);
}


void
ngx_geostream_replay_stop(ngx_msec_t deadline)
{
    ngx_geostream_replay_t    *rp, *next;
    ngx_geostream_replayer_t  *rs;

    rs = ngx_geostream_replayer;

    if (rs == NULL) {
        return;
    }

    pthread_mutex_lock(&rs->mutex);
    rs->stop = 1;
    pthread_cond_signal(&rs->cond);
    pthread_mutex_unlock(&rs->mutex);

    rd_kafka_queue_yield(rs->queue);

    if (ngx_geostream_thread_join(rs->thread, deadline) != NGX_OK) {
        /* what the thread uses stays: the process is on its way out */
        ngx_geostream_replayer = NULL;
        return;
    }

    for (rp = rs->jobs; rp; rp = next) {
        next = rp->next;
        ngx_free(rp);
    }

    rd_kafka_queue_destroy(rs->queue);
    rd_kafka_destroy(rs->rk);
    pthread_cond_destroy(&rs->cond);
    pthread_mutex_destroy(&rs->mutex);

    ngx_free(rs);
    ngx_geostream_replayer = NULL;
}


static void *
ngx_geostream_replay_thread(void *data)
{
    ngx_geostream_replayer_t  *rs = data;

    ngx_geostream_replay_t  *rp;

    for ( ;; ) {
        pthread_mutex_lock(&rs->mutex);

        while (rs->jobs == NULL && !rs->stop) {
            pthread_cond_wait(&rs->cond, &rs->mutex);
        }

        if (rs->stop) {
            pthread_mutex_unlock(&rs->mutex);
            return NULL;
        }

        rp = rs->jobs;
        rs->jobs = rp->next;

        if (rs->jobs == NULL) {
            rs->jobs_tail = &rs->jobs;
        }

        pthread_mutex_unlock(&rs->mutex);

        rp->next = NULL;

        /* a replay that fell short is not passed off as complete */
        if (ngx_geostream_replay_run(rs, rp) != NGX_OK) {
            ngx_geostream_replay_emit(rp, NGX_GEOSTREAM_EVENT_REPLAY_NOTICE,
                                  NGX_GEOSTREAM_INCOMPLETE_NOTICE,
                                  sizeof(NGX_GEOSTREAM_INCOMPLETE_NOTICE) - 1);
        }

        /* after this, the event loop owns "rp" */
        ngx_geostream_replay_emit(rp, NGX_GEOSTREAM_EVENT_REPLAY_DONE,
                                  NULL, 0);
    }
}


static ngx_int_t
ngx_geostream_replay_run(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp)
{
    time_t                   deadline;
    int32_t                  p;
    ngx_int_t                rc;
    int64_t                  low, high, *from, *to;
    ssize_t                  i, n;
    ngx_uint_t               active, retention, stop;
    unsigned char           *started;
    rd_kafka_topic_t        *rkt;
    rd_kafka_message_t      *msgs[NGX_GEOSTREAM_REPLAY_BATCH], *msg;
    ngx_geostream_event_t   *ev, *batch, **tail;

    from = rp->rd.next_offsets;
    to = rp->to;

    if (rp->since >= 0 && ngx_geostream_replay_times(rs, rp) != NGX_OK) {
        return NGX_ERROR;
    }

    rkt = rd_kafka_topic_new(rs->rk, rp->rd.name, NULL);
    if (rkt == NULL) {
        return NGX_ERROR;
    }

    started = calloc(rp->rd.partitions ? rp->rd.partitions : 1, 1);
    if (started == NULL) {
        rd_kafka_topic_destroy(rkt);
        return NGX_ERROR;
    }

    active = 0;
    retention = 0;
    rc = NGX_OK;

    for (p = 0; p < rp->rd.partitions; p++) {
        if (from[p] >= to[p]) {
            continue;
        }

        if (rd_kafka_query_watermark_offsets(rs->rk, rp->rd.name, p, &low,
                                             &high,
                                             NGX_GEOSTREAM_REPLAY_TIMEOUT)
            != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "geostream: replay of \"%s\" [%D]: no offsets",
                          rp->rd.name, p);
            rc = NGX_ERROR;
            continue;
        }

        /* what retention removed is gone: start at the oldest there is */
        if (from[p] < low) {
            retention = 1;
            from[p] = low;
        }

        if (from[p] >= to[p] || from[p] >= high) {
            continue;
        }

        if (rd_kafka_consume_start_queue(rkt, p, from[p], rs->queue) == -1) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "geostream: replay of \"%s\" [%D]: %s",
                          rp->rd.name, p,
                          rd_kafka_err2str(rd_kafka_last_error()));
            rc = NGX_ERROR;
            continue;
        }

        started[p] = 1;
        active++;
    }

    if (retention && rp->notify_retention) {
        ngx_geostream_replay_emit(rp, NGX_GEOSTREAM_EVENT_REPLAY_NOTICE,
                                  NGX_GEOSTREAM_RETENTION_NOTICE,
                                  sizeof(NGX_GEOSTREAM_RETENTION_NOTICE) - 1);
    }

    deadline = time(NULL) + NGX_GEOSTREAM_REPLAY_DEADLINE;

    while (active && time(NULL) < deadline) {
        n = ngx_geostream_kafka_consume(rs->queue, NGX_GEOSTREAM_REPLAY_WAIT,
                                        msgs, NGX_GEOSTREAM_REPLAY_BATCH);
        batch = NULL;
        tail = &batch;

        for (i = 0; i < n; i++) {
            msg = msgs[i];
            p = msg->partition;
            ev = NULL;
            stop = 0;

            if (p < 0 || p >= rp->rd.partitions || !started[p]) {
                /* a stale message of a partition already stopped */

            } else if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                stop = 1;

            } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                              "geostream: replay of \"%s\" [%D]: %s",
                              rp->rd.name, p, rd_kafka_message_errstr(msg));

            } else if (msg->offset >= to[p]) {
                stop = 1;

            } else {
                ev = ngx_geostream_kafka_event(&rp->rd, msg);
                stop = (msg->offset + 1 >= to[p]);
            }

            if (stop) {
                rd_kafka_consume_stop(rkt, p);
                started[p] = 0;
                active--;
            }

            rd_kafka_message_destroy(msg);

            if (ev) {
                ev->type = NGX_GEOSTREAM_EVENT_REPLAY;
                ev->replay = rp;
                *tail = ev;
                tail = &ev->next;
            }
        }

        if (batch) {
            ngx_geostream_kafka_hand_over(batch, tail);
        }

        pthread_mutex_lock(&rs->mutex);
        stop = rs->stop;
        pthread_mutex_unlock(&rs->mutex);

        if (stop) {
            break;
        }
    }

    /* a partition still running here did not reach its end in time */
    for (p = 0; p < rp->rd.partitions; p++) {
        if (started[p]) {
            rd_kafka_consume_stop(rkt, p);
            rc = NGX_ERROR;
        }
    }

    free(started);
    rd_kafka_topic_destroy(rkt);

    return rc;
}


/* since=: each partition's first offset at or after that time */
static ngx_int_t
ngx_geostream_replay_times(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp)
{
    int32_t                            p;
    rd_kafka_resp_err_t                err;
    rd_kafka_topic_partition_t        *tp;
    rd_kafka_topic_partition_list_t   *list;

    list = rd_kafka_topic_partition_list_new(rp->rd.partitions);

    for (p = 0; p < rp->rd.partitions; p++) {
        tp = rd_kafka_topic_partition_list_add(list, rp->rd.name, p);
        tp->offset = rp->since;
    }

    err = rd_kafka_offsets_for_times(rs->rk, list,
                                     NGX_GEOSTREAM_REPLAY_TIMEOUT);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "geostream: replay of \"%s\": offsets for time: %s",
                      rp->rd.name, rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(list);
        return NGX_ERROR;
    }

    for (p = 0; p < list->cnt; p++) {
        tp = &list->elems[p];

        /* no message since then: nothing to replay in that partition */
        rp->rd.next_offsets[tp->partition] =
            (tp->err || tp->offset < 0) ? rp->to[tp->partition] : tp->offset;
    }

    rd_kafka_topic_partition_list_destroy(list);

    return NGX_OK;
}


static void
ngx_geostream_replay_emit(ngx_geostream_replay_t *rp,
    ngx_geostream_event_type_e type, const char *data, size_t len)
{
    ngx_geostream_event_t  *ev;

    ev = ngx_geostream_event_alloc(type, &rp->rd, NULL, 0, len);
    if (ev == NULL) {
        /* without its end, a replay's owner would wait forever */
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "geostream: replay of \"%s\": out of memory",
                      rp->rd.name);
        return;
    }

    ngx_memcpy(ev->data.data, data, len);
    ev->replay = rp;

    ngx_geostream_kafka_hand_over(ev, &ev->next);
}
