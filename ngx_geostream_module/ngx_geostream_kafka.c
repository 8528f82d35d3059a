/*
 * librdkafka handles of a worker and their bridge to the event loop.
 * See ngx_geostream_kafka.h for the threading rules.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <pthread.h>

#include "ngx_geostream_kafka.h"
#include "ngx_geostream_message.h"


#define NGX_GEOSTREAM_CONSUME_WAIT       100     /* ms */
#define NGX_GEOSTREAM_CONSUME_BATCH      1024
#define NGX_GEOSTREAM_METADATA_TIMEOUT   5000    /* ms */
#define NGX_GEOSTREAM_METADATA_REFRESH   5       /* s, to notice partitions */
#define NGX_GEOSTREAM_RETRY_UNKNOWN      1       /* s, topic not there yet */

/*
 * The event streams get when a partition's log no longer has the reader's
 * position: "reset" (its end is before it) or "retention" (its start is
 * after it).  Topic names are [a-zA-Z0-9._-]: nothing to escape.
 */
#define NGX_GEOSTREAM_RESET_EVENT                                             \
    "id: %.*s\nevent: %s\ndata: {\"reason\":\"%s\",\"topic\":\"%s\","       \
    "\"partition\":%d,\"offset\":%lld,\"previous\":%lld}\n\n"


/* a topic as the consumer thread follows it; thread-only */
typedef struct ngx_geostream_followed_s  ngx_geostream_followed_t;

struct ngx_geostream_followed_s {
    ngx_geostream_reading_t     rd;              /* partitions started */
    ngx_geostream_followed_t   *next;
    rd_kafka_topic_t           *rkt;
    time_t                      refresh;         /* next metadata check */
};


/* a topic name the event loop asks the thread to follow */
typedef struct ngx_geostream_follow_s  ngx_geostream_follow_t;

struct ngx_geostream_follow_s {
    ngx_geostream_follow_t     *next;
    size_t                      len;
    char                        name[1];
};


typedef struct {
    rd_kafka_t                 *rk;
    rd_kafka_queue_t           *queue;
    pthread_t                   thread;
    pthread_mutex_t             mutex;

    /* under mutex */
    ngx_geostream_follow_t     *follow;
    ngx_geostream_event_t      *ready;
    ngx_geostream_event_t     **ready_tail;
    ngx_uint_t                  stop;

    /* thread-only */
    ngx_geostream_followed_t   *followed;
    char                       *cluster;        /* Kafka's cluster id */
    ngx_uint_t                  brokers_down;   /* since the last check */

    /* event-loop-only */
    ngx_connection_t           *notify;
    ngx_fd_t                    notify_write;
} ngx_geostream_consumer_t;


typedef struct {
    ngx_geostream_kafka_conf_t *conf;
    ngx_cycle_t                *cycle;
    ngx_geostream_dispatch_pt   dispatch;

    ngx_geostream_consumer_t   *consumer;
} ngx_geostream_worker_t;


static void ngx_geostream_kafka_consumer_down(rd_kafka_t *rk);

static ngx_int_t ngx_geostream_consumer_start(ngx_cycle_t *cycle);
static void ngx_geostream_consumer_stop(ngx_msec_t deadline);
static void ngx_geostream_consumer_notified(ngx_event_t *ev);
static void *ngx_geostream_consumer_thread(void *data);
static void ngx_geostream_consumer_add(ngx_geostream_consumer_t *cs,
    ngx_geostream_follow_t *f, ngx_geostream_event_t ***tail);
static void ngx_geostream_consumer_refresh(ngx_geostream_consumer_t *cs,
    ngx_geostream_followed_t *ft, ngx_geostream_event_t ***tail);

static ngx_geostream_event_t *ngx_geostream_consumer_reset(
    ngx_geostream_consumer_t *cs, rd_kafka_message_t *msg);
static ngx_geostream_event_t *ngx_geostream_consumer_restart(
    ngx_geostream_consumer_t *cs, ngx_geostream_followed_t *ft, int32_t p,
    int64_t offset, int64_t was, const char *what);
static ngx_int_t ngx_geostream_consumer_start_at(ngx_geostream_consumer_t *cs,
    ngx_geostream_followed_t *ft, int32_t p, int64_t offset);
static ngx_uint_t ngx_geostream_consumer_new_cluster(
    ngx_geostream_consumer_t *cs);
static void ngx_geostream_consumer_rewind(ngx_geostream_consumer_t *cs,
    ngx_geostream_event_t ***tail);
static void ngx_geostream_consumer_back(ngx_geostream_consumer_t *cs);
static size_t ngx_geostream_consumer_cursor(ngx_geostream_reading_t *rd,
    u_char **cursor);
static void ngx_geostream_consumer_hand_over(ngx_geostream_consumer_t *cs,
    ngx_geostream_event_t *batch, ngx_geostream_event_t **tail);


static ngx_geostream_worker_t    ngx_geostream_worker;


/*
 * The worker's start, until the worker's state (worker.c) orchestrates
 * it: the consumers' configuration, then the producers.
 */
ngx_int_t
ngx_geostream_kafka_init_process(ngx_cycle_t *cycle,
    ngx_geostream_kafka_conf_t *kcf, ngx_geostream_delivered_pt delivered,
    ngx_geostream_dispatch_pt dispatch)
{
    ngx_geostream_worker_t  *w;

    w = &ngx_geostream_worker;

    ngx_memzero(w, sizeof(ngx_geostream_worker_t));
    w->conf = kcf;
    w->cycle = cycle;
    w->dispatch = dispatch;

    ngx_geostream_kafka_consumers_init(kcf,
                                       ngx_geostream_kafka_consumer_down);

    return ngx_geostream_producer_init(ngx_geostream_worker_producers(),
                                       cycle, kcf, delivered);
}


/*
 * One deadline for all that the worker waits for on its way out; it may
 * have been set while requests waited (ngx_geostream_producer_stopping())
 */
void
ngx_geostream_kafka_exit_process(ngx_cycle_t *cycle)
{
    ngx_msec_t                  deadline;
    ngx_geostream_producers_t  *pr;

    pr = ngx_geostream_worker_producers();

    deadline = ngx_geostream_producer_deadline(pr);

    ngx_geostream_consumer_stop(deadline);

    ngx_geostream_producer_exit(pr, deadline);
}


/* the reader's handle has all its brokers down; on the reader thread */
static void
ngx_geostream_kafka_consumer_down(rd_kafka_t *rk)
{
    ngx_geostream_worker_t  *w;

    w = &ngx_geostream_worker;

    if (w->consumer && w->consumer->rk == rk) {
        w->consumer->brokers_down = 1;
    }
}


ngx_int_t
ngx_geostream_thread_join(pthread_t thread, ngx_msec_t deadline)
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


/*
 * A pipe whose read end the event loop watches like a connection; another
 * thread (librdkafka's, or the consumer's) writes a byte to wake it up.
 */
ngx_connection_t *
ngx_geostream_pipe_open(ngx_cycle_t *cycle, ngx_fd_t *write_fd,
    ngx_event_handler_pt handler)
{
    int                fds[2];
    ngx_connection_t  *c;

    if (pipe(fds) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "geostream: pipe() failed");
        return NULL;
    }

    if (ngx_nonblocking(fds[0]) == -1 || ngx_nonblocking(fds[1]) == -1
        || fcntl(fds[0], F_SETFD, FD_CLOEXEC) == -1
        || fcntl(fds[1], F_SETFD, FD_CLOEXEC) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "geostream: cannot set up the notification pipe");
        goto failed;
    }

    c = ngx_get_connection(fds[0], cycle->log);
    if (c == NULL) {
        goto failed;
    }

    c->read->handler = handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    c->data = &ngx_geostream_worker;

    if (ngx_add_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
        ngx_free_connection(c);
        goto failed;
    }

    *write_fd = fds[1];

    return c;

failed:

    close(fds[0]);
    close(fds[1]);

    return NULL;
}


void
ngx_geostream_pipe_close(ngx_connection_t *c, ngx_fd_t write_fd)
{
    if (c != NULL) {
        ngx_close_connection(c);
    }

    if (write_fd != NGX_INVALID_FILE) {
        close(write_fd);
    }
}


void
ngx_geostream_pipe_drain(ngx_connection_t *c)
{
    u_char  buf[64];

    while (read(c->fd, buf, sizeof(buf)) > 0) {
        /* void */
    }
}


ngx_int_t
ngx_geostream_kafka_follow(ngx_str_t *topic)
{
    ngx_geostream_follow_t    *f;
    ngx_geostream_worker_t    *w;
    ngx_geostream_consumer_t  *cs;

    w = &ngx_geostream_worker;

    if (w->consumer == NULL && ngx_geostream_consumer_start(w->cycle)
                               != NGX_OK)
    {
        return NGX_ERROR;
    }

    cs = w->consumer;

    f = ngx_alloc(sizeof(ngx_geostream_follow_t) + topic->len,
                  w->cycle->log);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->len = topic->len;
    ngx_memcpy(f->name, topic->data, topic->len);
    f->name[topic->len] = '\0';

    pthread_mutex_lock(&cs->mutex);
    f->next = cs->follow;
    cs->follow = f;
    pthread_mutex_unlock(&cs->mutex);

    /* wake the thread up from its wait for messages */
    rd_kafka_queue_yield(cs->queue);

    return NGX_OK;
}


/*
 * Waits up to "timeout" ms for a message, then takes every message that is
 * ready, up to "size", without waiting more.  rd_kafka_consume_batch_queue()
 * alone waits out its whole timeout to fill the batch: ~100 ms of latency
 * on every event of a quiet topic.
 */
ssize_t
ngx_geostream_kafka_consume(rd_kafka_queue_t *queue, int timeout,
    rd_kafka_message_t **msgs, size_t size)
{
    ssize_t  n;

    msgs[0] = rd_kafka_consume_queue(queue, timeout);

    if (msgs[0] == NULL) {
        return 0;
    }

    n = rd_kafka_consume_batch_queue(queue, 0, msgs + 1, size - 1);

    return 1 + (n > 0 ? n : 0);
}


/* for another thread of the worker: events to the event loop */
void
ngx_geostream_kafka_hand_over(ngx_geostream_event_t *batch,
    ngx_geostream_event_t **tail)
{
    ngx_geostream_consumer_hand_over(ngx_geostream_worker.consumer, batch,
                                     tail);
}


static ngx_int_t
ngx_geostream_consumer_start(ngx_cycle_t *cycle)
{
    int                        err;
    ngx_geostream_worker_t    *w;
    ngx_geostream_consumer_t  *cs;

    w = &ngx_geostream_worker;

    cs = ngx_calloc(sizeof(ngx_geostream_consumer_t), cycle->log);
    if (cs == NULL) {
        return NGX_ERROR;
    }

    cs->ready_tail = &cs->ready;
    cs->notify_write = NGX_INVALID_FILE;

    cs->rk = ngx_geostream_kafka_consumer_new(cycle->log, 0);
    if (cs->rk == NULL) {
        goto failed;
    }

    cs->queue = rd_kafka_queue_new(cs->rk);

    cs->notify = ngx_geostream_pipe_open(cycle, &cs->notify_write,
                                          ngx_geostream_consumer_notified);
    if (cs->notify == NULL) {
        goto failed;
    }

    if (pthread_mutex_init(&cs->mutex, NULL) != 0) {
        goto failed;
    }

    err = pthread_create(&cs->thread, NULL, ngx_geostream_consumer_thread,
                         cs);
    if (err != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, err,
                      "geostream: cannot start the consumer thread");
        pthread_mutex_destroy(&cs->mutex);
        goto failed;
    }

    w->consumer = cs;

    return NGX_OK;

failed:

    ngx_geostream_pipe_close(cs->notify, cs->notify_write);

    if (cs->queue) {
        rd_kafka_queue_destroy(cs->queue);
    }

    if (cs->rk) {
        rd_kafka_destroy(cs->rk);
    }

    ngx_free(cs);

    return NGX_ERROR;
}


static void
ngx_geostream_consumer_stop(ngx_msec_t deadline)
{
    int32_t                    p;
    ngx_geostream_event_t     *ev, *next_ev;
    ngx_geostream_follow_t    *f, *next_f;
    ngx_geostream_worker_t    *w;
    ngx_geostream_followed_t  *ft, *next_ft;
    ngx_geostream_consumer_t  *cs;

    w = &ngx_geostream_worker;
    cs = w->consumer;

    if (cs == NULL) {
        return;
    }

    /* the replay thread hands over through the consumer: it stops first */
    ngx_geostream_replay_stop(deadline);

    pthread_mutex_lock(&cs->mutex);
    cs->stop = 1;
    pthread_mutex_unlock(&cs->mutex);

    rd_kafka_queue_yield(cs->queue);

    /*
     * With Kafka away, the thread may be in a metadata request that takes
     * its whole timeout: the worker does not wait past its deadline for
     * it, and leaves the consumer as it is (the process is exiting).
     */
    if (ngx_geostream_thread_join(cs->thread, deadline) != NGX_OK) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "geostream: the consumer thread is still waiting "
                      "for kafka; the worker exits without it");
        w->consumer = NULL;
        return;
    }

    for (ft = cs->followed; ft; ft = next_ft) {
        next_ft = ft->next;

        for (p = 0; p < ft->rd.partitions; p++) {
            rd_kafka_consume_stop(ft->rkt, p);
        }

        rd_kafka_topic_destroy(ft->rkt);
        free(ft->rd.next_offsets);
        free(ft->rd.name);
        free(ft);
    }

    for (f = cs->follow; f; f = next_f) {
        next_f = f->next;
        ngx_free(f);
    }

    for (ev = cs->ready; ev; ev = next_ev) {
        next_ev = ev->next;
        free(ev);
    }

    free(cs->cluster);
    rd_kafka_queue_destroy(cs->queue);
    rd_kafka_destroy(cs->rk);

    ngx_geostream_pipe_close(cs->notify, cs->notify_write);
    pthread_mutex_destroy(&cs->mutex);

    ngx_free(cs);
    w->consumer = NULL;
}


static void
ngx_geostream_consumer_notified(ngx_event_t *ev)
{
    ngx_connection_t          *c;
    ngx_geostream_event_t     *batch;
    ngx_geostream_worker_t    *w;
    ngx_geostream_consumer_t  *cs;

    c = ev->data;
    w = c->data;
    cs = w->consumer;

    ngx_geostream_pipe_drain(c);

    pthread_mutex_lock(&cs->mutex);
    batch = cs->ready;
    cs->ready = NULL;
    cs->ready_tail = &cs->ready;
    pthread_mutex_unlock(&cs->mutex);

    if (batch) {
        w->dispatch(batch);
    }
}


void
ngx_geostream_event_release(ngx_geostream_event_t *ev)
{
    if (--ev->refs == 0) {
        free(ev);
    }
}


/* the consumer thread: nothing below touches nginx objects */

static void *
ngx_geostream_consumer_thread(void *data)
{
    ngx_geostream_consumer_t  *cs = data;

    time_t                     now;
    ssize_t                    i, n;
    ngx_uint_t                 stop;
    ngx_geostream_event_t     *batch, **tail, *ev;
    ngx_geostream_follow_t    *follow, *next;
    rd_kafka_message_t        *msgs[NGX_GEOSTREAM_CONSUME_BATCH];
    ngx_geostream_followed_t  *ft;

    for ( ;; ) {
        pthread_mutex_lock(&cs->mutex);
        stop = cs->stop;
        follow = cs->follow;
        cs->follow = NULL;
        pthread_mutex_unlock(&cs->mutex);

        if (stop) {
            for ( /* void */ ; follow; follow = next) {
                next = follow->next;
                free(follow);
            }

            return NULL;
        }

        batch = NULL;
        tail = &batch;

        for ( /* void */ ; follow; follow = next) {
            next = follow->next;
            ngx_geostream_consumer_add(cs, follow, &tail);
            free(follow);
        }

        now = time(NULL);

        for (ft = cs->followed; ft; ft = ft->next) {
            if (now >= ft->refresh) {
                ngx_geostream_consumer_refresh(cs, ft, &tail);
            }
        }

        /* logs and errors of the consumer instance */
        rd_kafka_poll(cs->rk, 0);

        if (batch) {
            ngx_geostream_consumer_hand_over(cs, batch, tail);
            batch = NULL;
            tail = &batch;
        }

        n = ngx_geostream_kafka_consume(cs->queue, NGX_GEOSTREAM_CONSUME_WAIT,
                                        msgs, NGX_GEOSTREAM_CONSUME_BATCH);

        /* an outage that began before this batch came is known now */
        rd_kafka_poll(cs->rk, 0);

        if (cs->brokers_down) {
            ngx_geostream_consumer_back(cs);
        }

        if (n > 0 && ngx_geostream_consumer_new_cluster(cs)) {
            /* this batch may be of the new logs: they are read from 0 */
            for (i = 0; i < n; i++) {
                rd_kafka_message_destroy(msgs[i]);
            }

            ngx_geostream_consumer_rewind(cs, &tail);
            n = 0;
        }

        for (i = 0; i < n; i++) {
            ev = NULL;

            if (msgs[i]->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                for (ft = cs->followed; ft; ft = ft->next) {
                    if (ft->rkt == msgs[i]->rkt) {
                        ev = ngx_geostream_kafka_event(&ft->rd, msgs[i]);
                        break;
                    }
                }

            } else if (msgs[i]->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
            {
                ev = ngx_geostream_consumer_reset(cs, msgs[i]);

            } else if (msgs[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                              "geostream: consuming \"%s\" [%d]: %s",
                              msgs[i]->rkt ? rd_kafka_topic_name(msgs[i]->rkt)
                                           : "-",
                              msgs[i]->partition,
                              rd_kafka_message_errstr(msgs[i]));
            }

            rd_kafka_message_destroy(msgs[i]);

            if (ev) {
                *tail = ev;
                tail = &ev->next;
            }
        }

        if (batch) {
            ngx_geostream_consumer_hand_over(cs, batch, tail);
        }
    }
}


static void
ngx_geostream_consumer_add(ngx_geostream_consumer_t *cs,
    ngx_geostream_follow_t *f, ngx_geostream_event_t ***tail)
{
    char                       errstr[512];
    rd_kafka_topic_conf_t     *tconf;
    ngx_geostream_followed_t  *ft;

    for (ft = cs->followed; ft; ft = ft->next) {
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
     * the thread handles (ngx_geostream_consumer_reset()), so that streams
     * are told, whatever auto.offset.reset the configuration gives.
     */
    tconf = rd_kafka_default_topic_conf_dup(cs->rk);
    if (tconf != NULL
        && rd_kafka_topic_conf_set(tconf, "auto.offset.reset", "error",
                                   errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK)
    {
        rd_kafka_topic_conf_destroy(tconf);
        tconf = NULL;
    }

    ft->rkt = rd_kafka_topic_new(cs->rk, f->name, tconf);

    if (ft->rd.name == NULL || ft->rkt == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "geostream: cannot follow topic \"%s\"", f->name);
        free(ft->rd.name);
        free(ft);
        return;
    }

    ft->next = cs->followed;
    cs->followed = ft;

    ngx_geostream_consumer_refresh(cs, ft, tail);
}


/*
 * A partition's log does not have the position reading was at (offset out
 * of range): its end is before it (the topic was deleted and made again,
 * or a broker lost its data) or its start is after it (retention passed
 * it).  Reading goes on from the log's start, and every stream of the
 * topic gets an event that says so, with the cursor from then on.
 */
static ngx_geostream_event_t *
ngx_geostream_consumer_reset(ngx_geostream_consumer_t *cs,
    rd_kafka_message_t *msg)
{
    int32_t                    p;
    int64_t                    low, high, was;
    const char                *what;
    rd_kafka_resp_err_t        err;
    ngx_geostream_followed_t  *ft;

    for (ft = cs->followed; ft; ft = ft->next) {
        if (ft->rkt == msg->rkt) {
            break;
        }
    }

    p = msg->partition;

    if (ft == NULL || p < 0 || p >= ft->rd.partitions) {
        return NULL;
    }

    was = ft->rd.next_offsets[p];

    err = rd_kafka_query_watermark_offsets(cs->rk, ft->rd.name, p, &low,
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

    return ngx_geostream_consumer_restart(cs, ft, p, low, was, what);
}


/*
 * Reading of a partition starts again at "offset" (its log's start),
 * not where it was ("was"); the event tells the streams why ("what").
 */
static ngx_geostream_event_t *
ngx_geostream_consumer_restart(ngx_geostream_consumer_t *cs,
    ngx_geostream_followed_t *ft, int32_t p, int64_t offset, int64_t was,
    const char *what)
{
    int                     len;
    u_char                 *cursor;
    size_t                  n;
    ngx_geostream_event_t  *ev;

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "geostream: \"%s\" [%d] no longer has offset %L (%s): "
                  "reading goes on from %L", ft->rd.name, p, was, what,
                  offset);

    rd_kafka_consume_stop(ft->rkt, p);
    (void) ngx_geostream_consumer_start_at(cs, ft, p, offset);

    ft->rd.next_offsets[p] = offset;

    n = ngx_geostream_consumer_cursor(&ft->rd, &cursor);
    if (cursor == NULL) {
        return NULL;
    }

    /* "id: " first, as in a message's event, so that it places streams */
    len = snprintf(NULL, 0, NGX_GEOSTREAM_RESET_EVENT, (int) n, cursor, what,
                   what, ft->rd.name, p, (long long) offset,
                   (long long) was);

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_RESET, &ft->rd, NULL,
                                   0, len + 1);
    if (ev != NULL) {
        ev->partition = p;
        ev->offset = offset;
        ev->timestamp = (int64_t) time(NULL) * 1000;
        ev->data.len = snprintf((char *) ev->data.data, len + 1,
                                NGX_GEOSTREAM_RESET_EVENT, (int) n, cursor,
                                what, what, ft->rd.name, p,
                                (long long) offset, (long long) was);
    }

    free(cursor);

    return ev;
}


/* reading of a partition begins at "offset" (0: the log's start) */
static ngx_int_t
ngx_geostream_consumer_start_at(ngx_geostream_consumer_t *cs,
    ngx_geostream_followed_t *ft, int32_t p, int64_t offset)
{
    if (rd_kafka_consume_start_queue(ft->rkt, p,
                                     offset ? offset
                                            : RD_KAFKA_OFFSET_BEGINNING,
                                     cs->queue)
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
ngx_geostream_consumer_new_cluster(ngx_geostream_consumer_t *cs)
{
    char        *id;
    ngx_uint_t   changed;

    id = rd_kafka_clusterid(cs->rk, 0);

    if (id == NULL) {
        return 0;
    }

    changed = (cs->cluster != NULL && ngx_strcmp(cs->cluster, id) != 0);

    if (cs->cluster == NULL || changed) {
        free(cs->cluster);
        cs->cluster = id;

    } else {
        free(id);
    }

    return changed;
}


/*
 * After all brokers were down, nothing read is used until Kafka answers
 * a metadata request again, which tells its cluster id: a broker that
 * came back empty is a new cluster, and what it has must be read from 0
 * (ngx_geostream_consumer_new_cluster()), not from where reading was.
 */
static void
ngx_geostream_consumer_back(ngx_geostream_consumer_t *cs)
{
    ngx_uint_t                  stop;
    rd_kafka_resp_err_t         err;
    const rd_kafka_metadata_t  *md;

    for ( ;; ) {
        err = rd_kafka_metadata(cs->rk, 0, NULL, &md, 500);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
            break;
        }

        pthread_mutex_lock(&cs->mutex);
        stop = cs->stop;
        pthread_mutex_unlock(&cs->mutex);

        if (stop) {
            return;
        }
    }

    cs->brokers_down = 0;
}


/* every partition of every topic starts again from its beginning */
static void
ngx_geostream_consumer_rewind(ngx_geostream_consumer_t *cs,
    ngx_geostream_event_t ***tail)
{
    int32_t                    p;
    ngx_geostream_event_t     *ev;
    ngx_geostream_followed_t  *ft;

    for (ft = cs->followed; ft; ft = ft->next) {
        for (p = 0; p < ft->rd.partitions; p++) {
            ev = ngx_geostream_consumer_restart(cs, ft, p, 0,
                                                ft->rd.next_offsets[p],
                                                "reset");
            if (ev) {
                **tail = ev;
                *tail = &ev->next;
            }
        }
    }
}


/*
 * Starts the partitions of a topic that are not started yet.  The first
 * time, existing partitions start at their high watermark (what is
 * produced from now on); partitions that appear later, and every partition
 * of a topic that did not exist yet, start at the beginning, since all of
 * their messages are new to the subscribers.
 */
static void
ngx_geostream_consumer_refresh(ngx_geostream_consumer_t *cs,
    ngx_geostream_followed_t *ft, ngx_geostream_event_t ***tail)
{
    u_char                        *cursor;
    size_t                         n;
    int32_t                        p, count;
    int64_t                        low, high, start, *offsets;
    ngx_uint_t                     first;
    rd_kafka_resp_err_t            err;
    ngx_geostream_event_t         *ev;
    const rd_kafka_metadata_t     *md;

    first = (ft->rd.next_offsets == NULL);

    err = rd_kafka_metadata(cs->rk, 0, ft->rkt, &md,
                            NGX_GEOSTREAM_METADATA_TIMEOUT);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "geostream: metadata of topic \"%s\": %s",
                      ft->rd.name, rd_kafka_err2str(err));
        ft->refresh = time(NULL) + NGX_GEOSTREAM_RETRY_UNKNOWN;
        return;
    }

    count = 0;

    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        count = md->topics[0].partition_cnt;
    }

    rd_kafka_metadata_destroy(md);

    ft->refresh = time(NULL) + (count ? NGX_GEOSTREAM_METADATA_REFRESH
                                      : NGX_GEOSTREAM_RETRY_UNKNOWN);

    if (count > ft->rd.partitions) {
        offsets = realloc(ft->rd.next_offsets, count * sizeof(int64_t));
        if (offsets == NULL) {
            return;
        }

        ft->rd.next_offsets = offsets;

        for (p = ft->rd.partitions; p < count; p++) {
            start = 0;

            if (first) {
                err = rd_kafka_query_watermark_offsets(cs->rk, ft->rd.name, p,
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

            if (ngx_geostream_consumer_start_at(cs, ft, p, start) != NGX_OK) {
                break;
            }

            ft->rd.next_offsets[p] = start;
            ft->rd.partitions = p + 1;
        }
    }

    if (!first) {
        return;
    }

    if (ft->rd.next_offsets == NULL) {
        /* a topic that does not exist yet is ready too: see above */
        ft->rd.next_offsets = malloc(sizeof(int64_t));
        if (ft->rd.next_offsets == NULL) {
            return;
        }
    }

    n = ngx_geostream_consumer_cursor(&ft->rd, &cursor);
    if (cursor == NULL) {
        return;
    }

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_TOPIC_READY, &ft->rd,
                                   NULL, 0, n);
    if (ev != NULL) {
        ngx_memcpy(ev->data.data, cursor, n);
        ev->timestamp = (int64_t) time(NULL) * 1000;
        **tail = ev;
        *tail = &ev->next;
    }

    free(cursor);
}


/*
 * A message as subscribers receive it; advances the reader's cursor.
 * NULL when the message is not a valid position (skipped, counted).
 */
ngx_geostream_event_t *
ngx_geostream_kafka_event(ngx_geostream_reading_t *rd,
    rd_kafka_message_t *msg)
{
    u_char                    *id;
    char                      *json;
    size_t                     id_len, json_len;
    ngx_geostream_event_t     *ev;
    ngx_geostream_error_t      err;
    ngx_geostream_position_t   pos;

    if (msg->partition >= 0 && msg->partition < rd->partitions) {
        rd->next_offsets[msg->partition] = msg->offset + 1;
    }

    ngx_geostream_stats_add(consumed, 1);

    if (ngx_geostream_position_parse(&pos, msg->payload, msg->len, &err)
        != 0)
    {
        ngx_geostream_stats_add(skipped, 1);
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "geostream: skipped message at \"%s\" [%d] offset %O: "
                      "%s: %s", rd->name, msg->partition,
                      (off_t) msg->offset, err.code, err.detail);
        return NULL;
    }

    json = ngx_geostream_position_event(&pos, rd->name);

    if (json == NULL) {
        ngx_geostream_position_free(&pos);
        return NULL;
    }

    json_len = ngx_strlen(json);

    id_len = ngx_geostream_consumer_cursor(rd, &id);
    if (id == NULL) {
        free(json);
        ngx_geostream_position_free(&pos);
        return NULL;
    }

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_MESSAGE, rd,
                                   pos.name, pos.name_len,
                                   ngx_geostream_sse_event_size(id, id_len,
                                               (u_char *) json, json_len));
    if (ev != NULL) {
        ev->partition = msg->partition;
        ev->offset = msg->offset;
        ev->timestamp = rd_kafka_message_timestamp(msg, NULL);
        ev->lat = pos.lat;
        ev->lon = pos.lon;
        ngx_geostream_sse_event_write(ev->data.data, id, id_len,
                                      (u_char *) json, json_len);
    }

    ngx_geostream_position_free(&pos);
    free(id);
    free(json);

    return ev;
}


/* the topic's cursor now: every partition's next offset, "0:12,1:7" */
static size_t
ngx_geostream_consumer_cursor(ngx_geostream_reading_t *rd, u_char **cursor)
{
    u_char   *p, *last;
    size_t    size;
    int32_t   i;

    size = rd->partitions * (NGX_INT32_LEN + NGX_INT64_LEN + 2) + 1;

    *cursor = malloc(size);
    if (*cursor == NULL) {
        return 0;
    }

    p = *cursor;
    last = p + size;

    for (i = 0; i < rd->partitions; i++) {
        p = ngx_slprintf(p, last, "%s%D:%L", i ? "," : "", i,
                         rd->next_offsets[i]);
    }

    return p - *cursor;
}


/* one allocation: the event, its topic, the entity's name, its SSE bytes */
ngx_geostream_event_t *
ngx_geostream_event_alloc(ngx_geostream_event_type_e type,
    ngx_geostream_reading_t *rd, const char *name, size_t name_len,
    size_t data_len)
{
    size_t                  size;
    ngx_geostream_event_t  *ev;

    size = sizeof(ngx_geostream_event_t) + rd->name_len + 1 + name_len
           + data_len;

    ev = malloc(size);
    if (ev == NULL) {
        return NULL;
    }

    ngx_memzero(ev, sizeof(ngx_geostream_event_t));

    ev->type = type;
    ev->refs = 1;
    ev->size = size;
    ev->partition = -1;
    ev->offset = -1;

    ev->topic.len = rd->name_len;
    ev->topic.data = (u_char *) (ev + 1);
    ngx_memcpy(ev->topic.data, rd->name, rd->name_len);
    ev->topic.data[rd->name_len] = '\0';

    ev->name.len = name_len;
    ev->name.data = ev->topic.data + rd->name_len + 1;
    ngx_memcpy(ev->name.data, name, name_len);

    ev->data.len = data_len;
    ev->data.data = ev->name.data + name_len;

    return ev;
}


static void
ngx_geostream_consumer_hand_over(ngx_geostream_consumer_t *cs,
    ngx_geostream_event_t *batch, ngx_geostream_event_t **tail)
{
    ngx_uint_t  wake;

    pthread_mutex_lock(&cs->mutex);

    /* one byte per batch the loop has not picked up yet is enough */
    wake = (cs->ready == NULL);

    *cs->ready_tail = batch;
    cs->ready_tail = tail;

    pthread_mutex_unlock(&cs->mutex);

    if (wake) {
        (void) write(cs->notify_write, "c", 1);
    }
}
