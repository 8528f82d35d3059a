/*
 * The replay thread and its replays.  See ngx_geostream_replay.h.
 * Nothing on the thread touches nginx objects but ngx_cycle->log.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <pthread.h>

#include "ngx_geostream_replay.h"


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


static ngx_int_t ngx_geostream_replayer_start(ngx_geostream_replayer_t *rs);
static void ngx_geostream_replayer_free(ngx_geostream_replayer_t *rs);
static void *ngx_geostream_replay_thread(void *data);
static ngx_geostream_replay_t *ngx_geostream_replay_next(
    ngx_geostream_replayer_t *rs);
static ngx_int_t ngx_geostream_replay_run(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp);
static ngx_uint_t ngx_geostream_replay_begin(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp, rd_kafka_topic_t *rkt, u_char *started,
    ngx_int_t *rc);
static void ngx_geostream_replay_batch(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp, rd_kafka_topic_t *rkt, u_char *started,
    ngx_uint_t *active);
static ngx_geostream_event_t *ngx_geostream_replay_message(
    ngx_geostream_replayer_t *rs, ngx_geostream_replay_t *rp,
    rd_kafka_message_t *msg, u_char *started, ngx_uint_t *stop);
static ngx_int_t ngx_geostream_replay_times(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp);
static void ngx_geostream_replay_emit(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp, ngx_geostream_event_type_e type,
    const char *data, size_t len);


void
ngx_geostream_replayer_init(ngx_geostream_replayer_t *rs, ngx_cycle_t *cycle,
    ngx_geostream_kafka_conf_t *kcf, ngx_geostream_stats_t *stats,
    ngx_geostream_bridge_handler_pt handler, void *data)
{
    ngx_memzero(rs, sizeof(ngx_geostream_replayer_t));

    ngx_geostream_kafka_thread_init(&rs->kt, cycle, "replay", kcf, stats,
                                    handler, data);
    rs->jobs_tail = &rs->jobs;
}


ngx_geostream_replay_t *
ngx_geostream_replay_start(ngx_geostream_replayer_t *rs, ngx_str_t *topic,
    const int64_t *from, const int64_t *to, size_t n, int64_t since,
    ngx_uint_t notify_retention, void *owner)
{
    ngx_geostream_replay_t  *rp;

    if (!rs->kt.running && ngx_geostream_replayer_start(rs) != NGX_OK) {
        return NULL;
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

    ngx_log_debug4(NGX_LOG_DEBUG_CORE, ngx_cycle->log, 0,
                   "geostream replay: \"%V\", %uz partitions, since %L, "
                   "owner %p", topic, n, since, owner);

    pthread_mutex_lock(&rs->kt.mutex);
    *rs->jobs_tail = rp;
    rs->jobs_tail = &rp->next;
    pthread_cond_signal(&rs->kt.cond);
    pthread_mutex_unlock(&rs->kt.mutex);

    return rp;
}


static ngx_int_t
ngx_geostream_replayer_start(ngx_geostream_replayer_t *rs)
{
    rs->jobs = NULL;
    rs->jobs_tail = &rs->jobs;

    return ngx_geostream_kafka_thread_start(&rs->kt, 1,
                                            ngx_geostream_replay_thread, rs);
}


void
ngx_geostream_replay_free(ngx_geostream_replay_t *rp)
{
    ngx_free(rp);
}


void
ngx_geostream_replay_stop(ngx_geostream_replayer_t *rs, ngx_msec_t deadline)
{
    /* what the thread uses stays if it does not end: the process exits */
    if (ngx_geostream_kafka_thread_stop(&rs->kt, deadline) == NGX_OK) {
        ngx_geostream_replayer_free(rs);
    }
}


/* what the replayer holds, once its thread has ended */
static void
ngx_geostream_replayer_free(ngx_geostream_replayer_t *rs)
{
    ngx_geostream_replay_t  *rp, *next;

    for (rp = rs->jobs; rp; rp = next) {
        next = rp->next;
        ngx_free(rp);
    }

    rs->jobs = NULL;
    rs->jobs_tail = &rs->jobs;

    ngx_geostream_kafka_thread_free(&rs->kt);
}


/* the thread: nothing below touches nginx objects */

static void *
ngx_geostream_replay_thread(void *data)
{
    ngx_geostream_replayer_t  *rs = data;

    ngx_geostream_replay_t  *rp;

    for ( ;; ) {
        rp = ngx_geostream_replay_next(rs);

        if (rp == NULL) {
            return NULL;
        }

        /* a replay that fell short is not passed off as complete */
        if (ngx_geostream_replay_run(rs, rp) != NGX_OK) {
            ngx_geostream_replay_emit(rs, rp,
                                  NGX_GEOSTREAM_EVENT_REPLAY_NOTICE,
                                  NGX_GEOSTREAM_INCOMPLETE_NOTICE,
                                  sizeof(NGX_GEOSTREAM_INCOMPLETE_NOTICE) - 1);
        }

        /* after this, the event loop owns "rp" */
        ngx_geostream_replay_emit(rs, rp, NGX_GEOSTREAM_EVENT_REPLAY_DONE,
                                  NULL, 0);
    }
}


/* waits for the next replay; NULL: the thread is to stop */
static ngx_geostream_replay_t *
ngx_geostream_replay_next(ngx_geostream_replayer_t *rs)
{
    ngx_geostream_replay_t  *rp;

    pthread_mutex_lock(&rs->kt.mutex);

    while (rs->jobs == NULL && !rs->kt.stop) {
        pthread_cond_wait(&rs->kt.cond, &rs->kt.mutex);
    }

    if (rs->kt.stop) {
        pthread_mutex_unlock(&rs->kt.mutex);
        return NULL;
    }

    rp = rs->jobs;
    rs->jobs = rp->next;

    if (rs->jobs == NULL) {
        rs->jobs_tail = &rs->jobs;
    }

    pthread_mutex_unlock(&rs->kt.mutex);

    rp->next = NULL;

    return rp;
}


/* one replay, start to end: NGX_ERROR when it fell short */
static ngx_int_t
ngx_geostream_replay_run(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp)
{
    time_t             deadline;
    int32_t            p;
    ngx_int_t          rc;
    ngx_uint_t         active;
    u_char            *started;
    rd_kafka_topic_t  *rkt;

    if (rp->since >= 0 && ngx_geostream_replay_times(rs, rp) != NGX_OK) {
        return NGX_ERROR;
    }

    rkt = rd_kafka_topic_new(rs->kt.rk, rp->rd.name, NULL);
    if (rkt == NULL) {
        return NGX_ERROR;
    }

    started = calloc(rp->rd.partitions ? rp->rd.partitions : 1, 1);
    if (started == NULL) {
        rd_kafka_topic_destroy(rkt);
        return NGX_ERROR;
    }

    rc = NGX_OK;

    active = ngx_geostream_replay_begin(rs, rp, rkt, started, &rc);

    deadline = time(NULL) + NGX_GEOSTREAM_REPLAY_DEADLINE;

    while (active && time(NULL) < deadline) {
        ngx_geostream_replay_batch(rs, rp, rkt, started, &active);

        if (ngx_geostream_kafka_thread_stopping(&rs->kt)) {
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


/*
 * Starts reading each partition that has something to replay (marked in
 * "started"); how many do.  "rc" becomes NGX_ERROR when one cannot.
 */
static ngx_uint_t
ngx_geostream_replay_begin(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp, rd_kafka_topic_t *rkt, u_char *started,
    ngx_int_t *rc)
{
    int32_t      p;
    int64_t      low, high, *from, *to;
    ngx_uint_t   active, retention;

    from = rp->rd.next_offsets;
    to = rp->to;

    active = 0;
    retention = 0;

    for (p = 0; p < rp->rd.partitions; p++) {
        if (from[p] >= to[p]) {
            continue;
        }

        if (rd_kafka_query_watermark_offsets(rs->kt.rk, rp->rd.name, p, &low,
                                             &high,
                                             NGX_GEOSTREAM_REPLAY_TIMEOUT)
            != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "geostream: replay of \"%s\" [%D]: no offsets",
                          rp->rd.name, p);
            *rc = NGX_ERROR;
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

        if (rd_kafka_consume_start_queue(rkt, p, from[p], rs->kt.queue) == -1) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "geostream: replay of \"%s\" [%D]: %s",
                          rp->rd.name, p,
                          rd_kafka_err2str(rd_kafka_last_error()));
            *rc = NGX_ERROR;
            continue;
        }

        started[p] = 1;
        active++;
    }

    if (retention && rp->notify_retention) {
        ngx_geostream_replay_emit(rs, rp, NGX_GEOSTREAM_EVENT_REPLAY_NOTICE,
                                  NGX_GEOSTREAM_RETENTION_NOTICE,
                                  sizeof(NGX_GEOSTREAM_RETENTION_NOTICE) - 1);
    }

    return active;
}


/*
 * One batch of messages, handed over as the replay's events; partitions
 * that reached their end stop ("active" counts those still reading)
 */
static void
ngx_geostream_replay_batch(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp, rd_kafka_topic_t *rkt, u_char *started,
    ngx_uint_t *active)
{
    int32_t                 p;
    ssize_t                 i, n;
    ngx_uint_t              stop;
    rd_kafka_message_t     *msgs[NGX_GEOSTREAM_REPLAY_BATCH];
    ngx_geostream_event_t  *ev, *batch, **tail;

    n = ngx_geostream_kafka_thread_consume(&rs->kt, NGX_GEOSTREAM_REPLAY_WAIT,
                                           msgs, NGX_GEOSTREAM_REPLAY_BATCH);
    batch = NULL;
    tail = &batch;

    for (i = 0; i < n; i++) {
        p = msgs[i]->partition;
        stop = 0;

        ev = ngx_geostream_replay_message(rs, rp, msgs[i], started, &stop);

        if (stop) {
            rd_kafka_consume_stop(rkt, p);
            started[p] = 0;
            (*active)--;
        }

        rd_kafka_message_destroy(msgs[i]);

        if (ev) {
            ev->type = NGX_GEOSTREAM_EVENT_REPLAY;
            ev->replay = rp;
            *tail = ev;
            tail = &ev->next;
        }
    }

    if (batch) {
        ngx_geostream_bridge_post(&rs->kt.bridge, batch, tail);
    }
}


/*
 * A replayed message's event, or none; "stop" is set when its partition
 * has reached the replay's end
 */
static ngx_geostream_event_t *
ngx_geostream_replay_message(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp, rd_kafka_message_t *msg, u_char *started,
    ngx_uint_t *stop)
{
    int32_t  p;

    p = msg->partition;

    if (p < 0 || p >= rp->rd.partitions || !started[p]) {
        /* a stale message of a partition already stopped */
        return NULL;
    }

    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        *stop = 1;
        return NULL;
    }

    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "geostream: replay of \"%s\" [%D]: %s",
                      rp->rd.name, p, rd_kafka_message_errstr(msg));
        return NULL;
    }

    if (msg->offset >= rp->to[p]) {
        *stop = 1;
        return NULL;
    }

    *stop = (msg->offset + 1 >= rp->to[p]);

    return ngx_geostream_event_message(&rp->rd, p, msg->offset,
                                       rd_kafka_message_timestamp(msg, NULL),
                                       msg->payload, msg->len, rs->kt.stats);
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

    err = rd_kafka_offsets_for_times(rs->kt.rk, list,
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
ngx_geostream_replay_emit(ngx_geostream_replayer_t *rs,
    ngx_geostream_replay_t *rp, ngx_geostream_event_type_e type,
    const char *data, size_t len)
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

    ngx_geostream_bridge_post(&rs->kt.bridge, ev, &ev->next);
}
