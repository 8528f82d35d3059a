/*
 * The reader thread: follows topics, reads them, hands their events to
 * the event loop.  See ngx_geostream_reader.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <pthread.h>

#include "ngx_geostream_reader.h"


#define NGX_GEOSTREAM_CONSUME_WAIT       100     /* ms */
#define NGX_GEOSTREAM_CONSUME_BATCH      1024
#define NGX_GEOSTREAM_METADATA_TIMEOUT   5000    /* ms */
#define NGX_GEOSTREAM_METADATA_REFRESH   5       /* s, to notice partitions */
#define NGX_GEOSTREAM_RETRY_UNKNOWN      1       /* s, topic not there yet */


/* a topic as the thread follows it; thread-only */
struct ngx_geostream_followed_s {
    ngx_geostream_reading_t     rd;              /* partitions started */
    ngx_geostream_followed_t   *next;
    rd_kafka_topic_t           *rkt;
    time_t                      refresh;         /* next metadata check */
};


/* a topic name the event loop asks the thread to follow */
struct ngx_geostream_follow_s {
    ngx_geostream_follow_t     *next;
    size_t                      len;
    char                        name[1];
};


static void ngx_geostream_reader_free(ngx_geostream_reader_t *rr);
static void ngx_geostream_reader_brokers_down(void *data);
static void *ngx_geostream_reader_thread(void *data);
static ngx_int_t ngx_geostream_reader_requests(ngx_geostream_reader_t *rr,
    ngx_geostream_event_t ***tail);
static void ngx_geostream_reader_read(ngx_geostream_reader_t *rr,
    ngx_geostream_event_t ***tail);
static ngx_geostream_event_t *ngx_geostream_reader_message(
    ngx_geostream_reader_t *rr, rd_kafka_message_t *msg);
static void ngx_geostream_reader_add(ngx_geostream_reader_t *rr,
    ngx_geostream_follow_t *f, ngx_geostream_event_t ***tail);
static void ngx_geostream_reader_refresh(ngx_geostream_reader_t *rr,
    ngx_geostream_followed_t *ft, ngx_geostream_event_t ***tail);
static int32_t ngx_geostream_reader_partitions(ngx_geostream_reader_t *rr,
    ngx_geostream_followed_t *ft);
static void ngx_geostream_reader_grow(ngx_geostream_reader_t *rr,
    ngx_geostream_followed_t *ft, int32_t count, ngx_uint_t first);
static ngx_geostream_event_t *ngx_geostream_reader_reset(
    ngx_geostream_reader_t *rr, rd_kafka_message_t *msg);
static ngx_geostream_event_t *ngx_geostream_reader_restart(
    ngx_geostream_reader_t *rr, ngx_geostream_followed_t *ft, int32_t p,
    int64_t offset, int64_t was, const char *what);
static ngx_int_t ngx_geostream_reader_start_at(ngx_geostream_reader_t *rr,
    ngx_geostream_followed_t *ft, int32_t p, int64_t offset);
static ngx_uint_t ngx_geostream_reader_new_cluster(
    ngx_geostream_reader_t *rr);
static void ngx_geostream_reader_rewind(ngx_geostream_reader_t *rr,
    ngx_geostream_event_t ***tail);
static void ngx_geostream_reader_back(ngx_geostream_reader_t *rr);


void
ngx_geostream_reader_init(ngx_geostream_reader_t *rr, ngx_cycle_t *cycle,
    ngx_geostream_kafka_conf_t *kcf, ngx_geostream_stats_t *stats,
    ngx_geostream_bridge_handler_pt handler, void *data)
{
    ngx_memzero(rr, sizeof(ngx_geostream_reader_t));

    ngx_geostream_kafka_thread_init(&rr->kt, cycle, "reader", kcf, stats,
                                    handler, data);
}


ngx_int_t
ngx_geostream_reader_start(ngx_geostream_reader_t *rr)
{
    rr->kt.client.down = ngx_geostream_reader_brokers_down;
    rr->kt.client.data = rr;

    return ngx_geostream_kafka_thread_start(&rr->kt, 0,
                                            ngx_geostream_reader_thread, rr);
}


ngx_int_t
ngx_geostream_reader_follow(ngx_geostream_reader_t *rr, ngx_str_t *topic)
{
    ngx_geostream_follow_t  *f;

    if (!rr->kt.running && ngx_geostream_reader_start(rr) != NGX_OK) {
        return NGX_ERROR;
    }

    f = ngx_alloc(sizeof(ngx_geostream_follow_t) + topic->len,
                  rr->kt.cycle->log);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->len = topic->len;
    ngx_memcpy(f->name, topic->data, topic->len);
    f->name[topic->len] = '\0';

    pthread_mutex_lock(&rr->kt.mutex);
    f->next = rr->follow;
    rr->follow = f;
    pthread_mutex_unlock(&rr->kt.mutex);

    ngx_log_debug1(NGX_LOG_DEBUG_CORE, rr->kt.cycle->log, 0,
                   "geostream reader: follow \"%V\"", topic);

    /* wake the thread up from its wait for messages */
    rd_kafka_queue_yield(rr->kt.queue);

    return NGX_OK;
}


void
ngx_geostream_reader_stop(ngx_geostream_reader_t *rr, ngx_msec_t deadline)
{
    if (ngx_geostream_kafka_thread_stop(&rr->kt, deadline) == NGX_OK) {
        ngx_geostream_reader_free(rr);
    }
}


/* what the reader holds, once its thread has ended */
static void
ngx_geostream_reader_free(ngx_geostream_reader_t *rr)
{
    int32_t                    p;
    ngx_geostream_follow_t    *f, *next_f;
    ngx_geostream_followed_t  *ft, *next_ft;

    for (ft = rr->followed; ft; ft = next_ft) {
        next_ft = ft->next;

        for (p = 0; p < ft->rd.partitions; p++) {
            rd_kafka_consume_stop(ft->rkt, p);
        }

        rd_kafka_topic_destroy(ft->rkt);
        free(ft->rd.next_offsets);
        free(ft->rd.name);
        free(ft);
    }

    rr->followed = NULL;

    for (f = rr->follow; f; f = next_f) {
        next_f = f->next;
        ngx_free(f);
    }

    rr->follow = NULL;

    free(rr->cluster);
    rr->cluster = NULL;

    ngx_geostream_kafka_thread_free(&rr->kt);
}


/*
 * librdkafka's error callback says that all the reader's brokers are
 * down; on the reader thread, in its poll: what it reads next is used
 * only once Kafka answers again
 */
static void
ngx_geostream_reader_brokers_down(void *data)
{
    ngx_geostream_reader_t  *rr = data;

    rr->brokers_down = 1;
}


/* the thread: nothing below touches nginx objects */

static void *
ngx_geostream_reader_thread(void *data)
{
    ngx_geostream_reader_t  *rr = data;

    time_t                     now;
    ngx_geostream_event_t     *batch, **tail;
    ngx_geostream_followed_t  *ft;

    for ( ;; ) {
        batch = NULL;
        tail = &batch;

        if (ngx_geostream_reader_requests(rr, &tail) == NGX_DONE) {
            return NULL;
        }

        now = time(NULL);

        for (ft = rr->followed; ft; ft = ft->next) {
            if (now >= ft->refresh) {
                ngx_geostream_reader_refresh(rr, ft, &tail);
            }
        }

        /* logs and errors of the consumer instance */
        rd_kafka_poll(rr->kt.rk, 0);

        if (batch) {
            ngx_geostream_bridge_post(&rr->kt.bridge, batch, tail);
            batch = NULL;
            tail = &batch;
        }

        ngx_geostream_reader_read(rr, &tail);

        if (batch) {
            ngx_geostream_bridge_post(&rr->kt.bridge, batch, tail);
        }
    }
}


/*
 * What the event loop asked for: to stop (NGX_DONE), or topics to follow,
 * whose TOPIC_READY events go to "tail"
 */
static ngx_int_t
ngx_geostream_reader_requests(ngx_geostream_reader_t *rr,
    ngx_geostream_event_t ***tail)
{
    ngx_uint_t               stop;
    ngx_geostream_follow_t  *follow, *next;

    pthread_mutex_lock(&rr->kt.mutex);
    stop = rr->kt.stop;
    follow = rr->follow;
    rr->follow = NULL;
    pthread_mutex_unlock(&rr->kt.mutex);

    for ( /* void */ ; follow; follow = next) {
        next = follow->next;

        if (!stop) {
            ngx_geostream_reader_add(rr, follow, tail);
        }

        free(follow);
    }

    return stop ? NGX_DONE : NGX_OK;
}


/* one batch of messages, as events to "tail" */
static void
ngx_geostream_reader_read(ngx_geostream_reader_t *rr,
    ngx_geostream_event_t ***tail)
{
    ssize_t                 i, n;
    rd_kafka_message_t     *msgs[NGX_GEOSTREAM_CONSUME_BATCH];
    ngx_geostream_event_t  *ev;

    n = ngx_geostream_kafka_thread_consume(&rr->kt,
                                           NGX_GEOSTREAM_CONSUME_WAIT, msgs,
                                           NGX_GEOSTREAM_CONSUME_BATCH);

    /* an outage that began before this batch came is known now */
    rd_kafka_poll(rr->kt.rk, 0);

    if (rr->brokers_down) {
        ngx_geostream_reader_back(rr);
    }

    if (n > 0 && ngx_geostream_reader_new_cluster(rr)) {
        /* this batch may be of the new logs: they are read from 0 */
        for (i = 0; i < n; i++) {
            rd_kafka_message_destroy(msgs[i]);
        }

        ngx_geostream_reader_rewind(rr, tail);
        return;
    }

    for (i = 0; i < n; i++) {
        ev = ngx_geostream_reader_message(rr, msgs[i]);

        rd_kafka_message_destroy(msgs[i]);

        if (ev) {
            **tail = ev;
            *tail = &ev->next;
        }
    }
}


/* a message's event, a reset's, or none (an error, logged) */
static ngx_geostream_event_t *
ngx_geostream_reader_message(ngx_geostream_reader_t *rr,
    rd_kafka_message_t *msg)
{
    ngx_geostream_followed_t  *ft;

    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (ft = rr->followed; ft; ft = ft->next) {
            if (ft->rkt == msg->rkt) {
                return ngx_geostream_event_message(&ft->rd, msg->partition,
                                    msg->offset,
                                    rd_kafka_message_timestamp(msg, NULL),
                                    msg->payload, msg->len, rr->kt.stats);
            }
        }

        return NULL;
    }

    if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
        return ngx_geostream_reader_reset(rr, msg);
    }

    if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "geostream: consuming \"%s\" [%d]: %s",
                      msg->rkt ? rd_kafka_topic_name(msg->rkt) : "-",
                      msg->partition, rd_kafka_message_errstr(msg));
    }

    return NULL;
}


static void
ngx_geostream_reader_add(ngx_geostream_reader_t *rr,
    ngx_geostream_follow_t *f, ngx_geostream_event_t ***tail)
{
    char                       errstr[512];
    rd_kafka_topic_conf_t     *tconf;
    ngx_geostream_followed_t  *ft;

    for (ft = rr->followed; ft; ft = ft->next) {
        if (ft->rd.name_len == f->len
            && ngx_strcmp(ft->rd.name, f->name) == 0)
        {
            return;
        }
    }

    ft = calloc(1, sizeof(ngx_geostream_followed_t));
    if (ft == NULL) {
        return;
    }

    ft->rd.name = strdup(f->name);
    ft->rd.name_len = f->len;

    /*
     * A position that the partition's log no longer has is an error that
     * the thread handles (ngx_geostream_reader_reset()), so that streams
     * are told, whatever auto.offset.reset the configuration gives.
     */
    tconf = rd_kafka_default_topic_conf_dup(rr->kt.rk);
    if (tconf != NULL
        && rd_kafka_topic_conf_set(tconf, "auto.offset.reset", "error",
                                   errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK)
    {
        rd_kafka_topic_conf_destroy(tconf);
        tconf = NULL;
    }

    ft->rkt = rd_kafka_topic_new(rr->kt.rk, f->name, tconf);

    if (ft->rd.name == NULL || ft->rkt == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "geostream: cannot follow topic \"%s\"", f->name);
        free(ft->rd.name);
        free(ft);
        return;
    }

    ft->next = rr->followed;
    rr->followed = ft;

    ngx_geostream_reader_refresh(rr, ft, tail);
}


/*
 * Starts the partitions of a topic that are not started yet; the first
 * time, the topic is ready from then on (a TOPIC_READY event to "tail").
 */
static void
ngx_geostream_reader_refresh(ngx_geostream_reader_t *rr,
    ngx_geostream_followed_t *ft, ngx_geostream_event_t ***tail)
{
    int32_t                 count;
    ngx_uint_t              first;
    ngx_geostream_event_t  *ev;

    first = (ft->rd.next_offsets == NULL);

    count = ngx_geostream_reader_partitions(rr, ft);

    if (count < 0) {
        return;
    }

    if (count > ft->rd.partitions) {
        ngx_geostream_reader_grow(rr, ft, count, first);
    }

    if (!first) {
        return;
    }

    if (ft->rd.next_offsets == NULL) {
        /* a topic that does not exist yet is ready too: see grow() */
        ft->rd.next_offsets = malloc(sizeof(int64_t));
        if (ft->rd.next_offsets == NULL) {
            return;
        }
    }

    ev = ngx_geostream_event_ready(&ft->rd);
    if (ev != NULL) {
        **tail = ev;
        *tail = &ev->next;
    }
}


/*
 * How many partitions the topic has now (0: it does not exist yet), or
 * -1 when Kafka does not say; sets when to ask again
 */
static int32_t
ngx_geostream_reader_partitions(ngx_geostream_reader_t *rr,
    ngx_geostream_followed_t *ft)
{
    int32_t                     count;
    rd_kafka_resp_err_t         err;
    const rd_kafka_metadata_t  *md;

    err = rd_kafka_metadata(rr->kt.rk, 0, ft->rkt, &md,
                            NGX_GEOSTREAM_METADATA_TIMEOUT);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "geostream: metadata of topic \"%s\": %s",
                      ft->rd.name, rd_kafka_err2str(err));
        ft->refresh = time(NULL) + NGX_GEOSTREAM_RETRY_UNKNOWN;
        return -1;
    }

    count = 0;

    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        count = md->topics[0].partition_cnt;
    }

    rd_kafka_metadata_destroy(md);

    ft->refresh = time(NULL) + (count ? NGX_GEOSTREAM_METADATA_REFRESH
                                      : NGX_GEOSTREAM_RETRY_UNKNOWN);

    return count;
}


/*
 * Starts partitions up to "count".  The first time, existing partitions
 * start at their high watermark (what is produced from now on);
 * partitions that appear later, and every partition of a topic that did
 * not exist yet, start at the beginning, since all of their messages are
 * new to the subscribers.
 */
static void
ngx_geostream_reader_grow(ngx_geostream_reader_t *rr,
    ngx_geostream_followed_t *ft, int32_t count, ngx_uint_t first)
{
    int32_t              p;
    int64_t              low, high, start, *offsets;
    rd_kafka_resp_err_t  err;

    offsets = realloc(ft->rd.next_offsets, count * sizeof(int64_t));
    if (offsets == NULL) {
        return;
    }

    ft->rd.next_offsets = offsets;

    for (p = ft->rd.partitions; p < count; p++) {
        start = 0;

        if (first) {
            err = rd_kafka_query_watermark_offsets(rr->kt.rk, ft->rd.name, p,
                                             &low, &high,
                                             NGX_GEOSTREAM_METADATA_TIMEOUT);
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                              "geostream: offsets of \"%s\" [%d]: %s",
                              ft->rd.name, p, rd_kafka_err2str(err));
                break;
            }

            start = high;
        }

        if (ngx_geostream_reader_start_at(rr, ft, p, start) != NGX_OK) {
            break;
        }

        ft->rd.next_offsets[p] = start;
        ft->rd.partitions = p + 1;
    }
}


/*
 * A partition's log does not have the position reading was at (offset out
 * of range): its end is before it (the topic was deleted and made again,
 * or a broker lost its data) or its start is after it (retention passed
 * it).  Reading goes on from the log's start, and every stream of the
 * topic gets an event that says so, with the cursor from then on.
 */
static ngx_geostream_event_t *
ngx_geostream_reader_reset(ngx_geostream_reader_t *rr,
    rd_kafka_message_t *msg)
{
    int32_t                    p;
    int64_t                    low, high, was;
    const char                *what;
    rd_kafka_resp_err_t        err;
    ngx_geostream_followed_t  *ft;

    for (ft = rr->followed; ft; ft = ft->next) {
        if (ft->rkt == msg->rkt) {
            break;
        }
    }

    p = msg->partition;

    if (ft == NULL || p < 0 || p >= ft->rd.partitions) {
        return NULL;
    }

    was = ft->rd.next_offsets[p];

    err = rd_kafka_query_watermark_offsets(rr->kt.rk, ft->rd.name, p, &low,
                                           &high,
                                           NGX_GEOSTREAM_METADATA_TIMEOUT);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* reading stays stopped until Kafka answers: try again later */
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "geostream: offsets of \"%s\" [%d]: %s",
                      ft->rd.name, p, rd_kafka_err2str(err));
        low = 0;
        high = was;
    }

    what = (was > high) ? "reset" : "retention";

    return ngx_geostream_reader_restart(rr, ft, p, low, was, what);
}


/*
 * Reading of a partition starts again at "offset" (its log's start),
 * not where it was ("was"); the event tells the streams why ("what").
 */
static ngx_geostream_event_t *
ngx_geostream_reader_restart(ngx_geostream_reader_t *rr,
    ngx_geostream_followed_t *ft, int32_t p, int64_t offset, int64_t was,
    const char *what)
{
    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "geostream: \"%s\" [%d] no longer has offset %L (%s): "
                  "reading goes on from %L", ft->rd.name, p, was, what,
                  offset);

    rd_kafka_consume_stop(ft->rkt, p);
    (void) ngx_geostream_reader_start_at(rr, ft, p, offset);

    ft->rd.next_offsets[p] = offset;

    return ngx_geostream_event_reset(&ft->rd, p, offset, was, what);
}


/* reading of a partition begins at "offset" (0: the log's start) */
static ngx_int_t
ngx_geostream_reader_start_at(ngx_geostream_reader_t *rr,
    ngx_geostream_followed_t *ft, int32_t p, int64_t offset)
{
    if (rd_kafka_consume_start_queue(ft->rkt, p,
                                     offset ? offset
                                            : RD_KAFKA_OFFSET_BEGINNING,
                                     rr->kt.queue)
        == -1)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "geostream: cannot consume \"%s\" [%d]: %s",
                      ft->rd.name, p,
                      rd_kafka_err2str(rd_kafka_last_error()));
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Whether Kafka is another cluster than before (its id changed): a broker
 * that lost its data and was made again.  Its logs start at 0 again, and
 * they may have grown past the positions reading was at before reading
 * comes back, when no offset is out of range: checked before each batch
 * is used, from the metadata librdkafka has, without waiting.
 */
static ngx_uint_t
ngx_geostream_reader_new_cluster(ngx_geostream_reader_t *rr)
{
    char        *id;
    ngx_uint_t   changed;

    id = rd_kafka_clusterid(rr->kt.rk, 0);

    if (id == NULL) {
        return 0;
    }

    changed = (rr->cluster != NULL && ngx_strcmp(rr->cluster, id) != 0);

    if (rr->cluster == NULL || changed) {
        free(rr->cluster);
        rr->cluster = id;

    } else {
        free(id);
    }

    return changed;
}


/*
 * After all brokers were down, nothing read is used until Kafka answers
 * a metadata request again, which tells its cluster id: a broker that
 * came back empty is a new cluster, and what it has must be read from 0
 * (ngx_geostream_reader_new_cluster()), not from where reading was.
 */
static void
ngx_geostream_reader_back(ngx_geostream_reader_t *rr)
{
    rd_kafka_resp_err_t         err;
    const rd_kafka_metadata_t  *md;

    for ( ;; ) {
        err = rd_kafka_metadata(rr->kt.rk, 0, NULL, &md, 500);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
            break;
        }

        if (ngx_geostream_kafka_thread_stopping(&rr->kt)) {
            return;
        }
    }

    rr->brokers_down = 0;
}


/* every partition of every topic starts again from its beginning */
static void
ngx_geostream_reader_rewind(ngx_geostream_reader_t *rr,
    ngx_geostream_event_t ***tail)
{
    int32_t                    p;
    ngx_geostream_event_t     *ev;
    ngx_geostream_followed_t  *ft;

    for (ft = rr->followed; ft; ft = ft->next) {
        for (p = 0; p < ft->rd.partitions; p++) {
            ev = ngx_geostream_reader_restart(rr, ft, p, 0,
                                              ft->rd.next_offsets[p],
                                              "reset");
            if (ev) {
                **tail = ev;
                *tail = &ev->next;
            }
        }
    }
}
