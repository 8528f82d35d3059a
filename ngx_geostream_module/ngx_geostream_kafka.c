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


#define NGX_GEOSTREAM_POLL_INTERVAL      1000    /* ms, safety net */
#define NGX_GEOSTREAM_FAILURE_KINDS      16      /* topic and reason pairs */

/*
 * Messages that were not delivered, counted by topic and reason and
 * logged once a poll interval: when Kafka is away, messages expire by the
 * thousand, and a line for each would flood the error log.
 */
typedef struct {
    rd_kafka_resp_err_t         err;
    ngx_uint_t                  count;
    u_char                      topic[256];
} ngx_geostream_failures_t;


typedef struct {
    ngx_geostream_kafka_conf_t *conf;
    ngx_cycle_t                *cycle;
    ngx_geostream_dispatch_pt   dispatch;
    ngx_geostream_delivered_pt  delivered;

    rd_kafka_t                 *producers[NGX_GEOSTREAM_PRODUCERS];
    ngx_connection_t           *producer_notify;
    ngx_fd_t                    producer_notify_write;
    ngx_event_t                 poll_timer;

    /*
     * when librdkafka last said that all of a producer's brokers are
     * down, until one of them is seen up again; 0: not down
     */
    ngx_msec_t                  down_since[NGX_GEOSTREAM_PRODUCERS];

    /* a stopping worker gives up on what Kafka has not taken by then */
    ngx_msec_t                  stop_deadline;  /* 0: not set */

    ngx_geostream_failures_t    failures[NGX_GEOSTREAM_FAILURE_KINDS];
    ngx_uint_t                  nfailures;
    ngx_uint_t                  failures_other;  /* past the kinds above */

    /* the threads' state, until the worker's state has one struct */
    ngx_geostream_reader_t      reader;
    ngx_geostream_replayer_t    replayer;
} ngx_geostream_worker_t;


static rd_kafka_conf_t *ngx_geostream_kafka_conf(ngx_log_t *log,
    ngx_geostream_kafka_conf_t *kcf, rd_kafka_type_t type,
    ngx_uint_t which);
static rd_kafka_t *ngx_geostream_kafka_producer_new(ngx_cycle_t *cycle,
    ngx_geostream_kafka_conf_t *kcf, ngx_uint_t which);
static void ngx_geostream_kafka_poll(ngx_geostream_worker_t *w);
static ngx_int_t ngx_geostream_kafka_conf_set(ngx_log_t *log,
    rd_kafka_conf_t *conf, const char *name, const char *value);
static void ngx_geostream_kafka_log(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static void ngx_geostream_kafka_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);
static void ngx_geostream_kafka_delivered(rd_kafka_t *rk,
    const rd_kafka_message_t *msg, void *opaque);
static int ngx_geostream_kafka_stats(rd_kafka_t *rk, char *json,
    size_t json_len, void *opaque);
static void ngx_geostream_kafka_set_up(rd_kafka_t *rk);
static void ngx_geostream_kafka_count_failure(const char *topic,
    rd_kafka_resp_err_t err);
static void ngx_geostream_kafka_log_failures(ngx_log_t *log,
    const char *when);
static int ngx_geostream_kafka_purge(ngx_geostream_worker_t *w);
static void ngx_geostream_kafka_producer_notified(ngx_event_t *ev);
static void ngx_geostream_kafka_poll_timer(ngx_event_t *ev);
static void ngx_geostream_kafka_dispatch(ngx_geostream_event_t *batch,
    void *data);



ngx_uint_t                       ngx_geostream_kafka_exiting;

static ngx_geostream_worker_t    ngx_geostream_worker;


/*
 * Defaults chosen to lose nothing that was accepted (producer) and to keep
 * a worker's memory bounded (consumer); every one of them can be
 * overridden from the nginx configuration.
 */
static const char  *ngx_geostream_producer_defaults[] = {
    "acks", "all",
    "enable.idempotence", "true",
    "linger.ms", "5",
    "message.timeout.ms", "30000",
    /*
     * keys hashed as Kafka's Java client (and python3-kafka) hash them, so
     * an entity's positions share a partition whoever produces them
     */
    "partitioner", "murmur2_random",
    /* a topic exists because someone made it, not because a URL named it */
    "allow.auto.create.topics", "false",
    /*
     * and one that Kafka says it does not have is refused after this long
     * (librdkafka's 30 s default would first let the message time out)
     */
    "topic.metadata.propagation.max.ms", "2000",
    /* the brokers' states, to see Kafka come back after an outage */
    "statistics.interval.ms", "1000",
    NULL
};

/*
 * A waiting client pays the whole linger.ms of its message, and so does a
 * live map for a message sent at a low rate: the prompt producer batches
 * for a shorter time, or not at all.  For 202 locations it serves only
 * low rates, where batches of one message cost nothing more; a waiting
 * location can bring it high rates, where 1 ms batches keep its
 * throughput.  Set before the configured properties, which win.
 */
static const char  *ngx_geostream_prompt_producer_defaults[] = {
    "linger.ms", "0",
    NULL
};

static const char  *ngx_geostream_prompt_waiting_producer_defaults[] = {
    "linger.ms", "1",
    NULL
};

static const char  *ngx_geostream_consumer_defaults[] = {
    "enable.partition.eof", "false",
    "queued.max.messages.kbytes", "8192",
    "auto.offset.reset", "smallest",
    "enable.auto.commit", "false",
    NULL
};


char *
ngx_geostream_kafka_check_conf(ngx_conf_t *cf,
    ngx_geostream_kafka_conf_t *kcf)
{
    rd_kafka_conf_t  *conf;

    conf = ngx_geostream_kafka_conf(cf->log, kcf, RD_KAFKA_PRODUCER,
                                    NGX_GEOSTREAM_PRODUCER_PROMPT);
    if (conf == NULL) {
        return NGX_CONF_ERROR;
    }

    rd_kafka_conf_destroy(conf);

    conf = ngx_geostream_kafka_conf(cf->log, kcf, RD_KAFKA_CONSUMER, 0);
    if (conf == NULL) {
        return NGX_CONF_ERROR;
    }

    rd_kafka_conf_destroy(conf);

    return NGX_CONF_OK;
}


/* "which" is the producer (NGX_GEOSTREAM_PRODUCER_*) a configuration is for */
static rd_kafka_conf_t *
ngx_geostream_kafka_conf(ngx_log_t *log, ngx_geostream_kafka_conf_t *kcf,
    rd_kafka_type_t type, ngx_uint_t which)
{
    const char              **d, **defaults[2];
    ngx_uint_t                i, n;
    ngx_array_t              *lists[2];
    ngx_keyval_t             *kv;
    rd_kafka_conf_t          *conf;

    conf = rd_kafka_conf_new();

    defaults[0] = (type == RD_KAFKA_PRODUCER)
                  ? ngx_geostream_producer_defaults
                  : ngx_geostream_consumer_defaults;
    defaults[1] = NULL;

    if (type == RD_KAFKA_PRODUCER && which == NGX_GEOSTREAM_PRODUCER_PROMPT) {
        defaults[1] = kcf->waiting_location
                      ? ngx_geostream_prompt_waiting_producer_defaults
                      : ngx_geostream_prompt_producer_defaults;
    }

    for (n = 0; n < 2; n++) {
        for (d = defaults[n]; d && *d; d += 2) {
            if (ngx_geostream_kafka_conf_set(log, conf, d[0], d[1])
                != NGX_OK)
            {
                goto failed;
            }
        }
    }

    /* a worker's librdkafka logs are served on a queue, not on its threads */
    if (ngx_geostream_kafka_conf_set(log, conf, "log.queue", "true")
        != NGX_OK)
    {
        goto failed;
    }

    if (kcf->brokers.len
        && ngx_geostream_kafka_conf_set(log, conf, "bootstrap.servers",
                                        (char *) kcf->brokers.data)
           != NGX_OK)
    {
        goto failed;
    }

    lists[0] = kcf->options;
    lists[1] = (type == RD_KAFKA_PRODUCER) ? kcf->producer_options
                                           : kcf->consumer_options;

    for (n = 0; n < 2; n++) {
        if (lists[n] == NULL) {
            continue;
        }

        kv = lists[n]->elts;

        for (i = 0; i < lists[n]->nelts; i++) {
            if (ngx_geostream_kafka_conf_set(log, conf,
                                             (char *) kv[i].key.data,
                                             (char *) kv[i].value.data)
                != NGX_OK)
            {
                goto failed;
            }
        }
    }

    return conf;

failed:

    rd_kafka_conf_destroy(conf);

    return NULL;
}


/* librdkafka takes topic properties on the global configuration too */
static ngx_int_t
ngx_geostream_kafka_conf_set(ngx_log_t *log, rd_kafka_conf_t *conf,
    const char *name, const char *value)
{
    char  errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "geostream: kafka property \"%s\" = \"%s\": %s",
                      name, value, errstr);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_geostream_kafka_init_process(ngx_cycle_t *cycle,
    ngx_geostream_kafka_conf_t *kcf, ngx_geostream_delivered_pt delivered,
    ngx_geostream_dispatch_pt dispatch)
{
    ngx_uint_t               i;
    rd_kafka_queue_t        *main_queue;
    ngx_geostream_worker_t  *w;

    w = &ngx_geostream_worker;

    ngx_memzero(w, sizeof(ngx_geostream_worker_t));
    w->conf = kcf;
    w->cycle = cycle;
    w->dispatch = dispatch;
    w->delivered = delivered;
    w->producer_notify_write = NGX_INVALID_FILE;

    ngx_geostream_reader_init(&w->reader, cycle, ngx_geostream_kafka_dispatch,
                              w);
    ngx_geostream_replayer_init(&w->replayer, cycle,
                                ngx_geostream_kafka_dispatch, w);

    w->producer_notify = ngx_geostream_pipe_open(cycle,
                                       &w->producer_notify_write,
                                       ngx_geostream_kafka_producer_notified);
    if (w->producer_notify == NULL) {
        return NGX_ERROR;
    }

    w->producer_notify->data = w;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (i == NGX_GEOSTREAM_PRODUCER_PROMPT && !kcf->prompt_producer) {
            continue;
        }

        w->producers[i] = ngx_geostream_kafka_producer_new(cycle, kcf, i);
        if (w->producers[i] == NULL) {
            return NGX_ERROR;
        }

        /* librdkafka writes to the pipe when its main queue gets an item */
        main_queue = rd_kafka_queue_get_main(w->producers[i]);
        rd_kafka_queue_io_event_enable(main_queue, w->producer_notify_write,
                                       "p", 1);
        rd_kafka_queue_destroy(main_queue);
    }

    /*
     * A safety net only: reports arrive through the pipe.  Cancelable, so
     * that it never holds a shutting-down worker.
     */
    w->poll_timer.handler = ngx_geostream_kafka_poll_timer;
    w->poll_timer.log = cycle->log;
    w->poll_timer.data = w;
    w->poll_timer.cancelable = 1;
    ngx_add_timer(&w->poll_timer, NGX_GEOSTREAM_POLL_INTERVAL);

    return NGX_OK;
}


static rd_kafka_t *
ngx_geostream_kafka_producer_new(ngx_cycle_t *cycle,
    ngx_geostream_kafka_conf_t *kcf, ngx_uint_t which)
{
    char              errstr[512];
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *conf;

    conf = ngx_geostream_kafka_conf(cycle->log, kcf, RD_KAFKA_PRODUCER,
                                    which);
    if (conf == NULL) {
        return NULL;
    }

    rd_kafka_conf_set_log_cb(conf, ngx_geostream_kafka_log);
    rd_kafka_conf_set_error_cb(conf, ngx_geostream_kafka_error);
    rd_kafka_conf_set_dr_msg_cb(conf, ngx_geostream_kafka_delivered);
    rd_kafka_conf_set_stats_cb(conf, ngx_geostream_kafka_stats);
    rd_kafka_conf_set_opaque(conf, cycle->log);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "geostream: cannot create the kafka producer: %s",
                      errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    rd_kafka_set_log_queue(rk, NULL);

    return rk;
}


void
ngx_geostream_kafka_exit_process(ngx_cycle_t *cycle)
{
    int                      left;
    ngx_uint_t               i;
    ngx_msec_t               deadline;
    ngx_msec_int_t           remaining;
    rd_kafka_t              *rk;
    ngx_geostream_worker_t  *w;

    w = &ngx_geostream_worker;

    /*
     * One deadline for all that the worker waits for on its way out; it
     * may have been set while requests waited (stopping())
     */
    ngx_time_update();
    deadline = w->stop_deadline ? w->stop_deadline
                                : ngx_current_msec + w->conf->flush_timeout;

    /* the threads first: nothing is handed over once the loop is gone */
    ngx_geostream_replay_stop(&w->replayer, deadline);
    ngx_geostream_reader_stop(&w->reader, deadline);

    if (w->poll_timer.timer_set) {
        ngx_del_timer(&w->poll_timer);
    }

    /* what was accepted is delivered before the worker goes, within bounds */
    ngx_geostream_kafka_exiting = 1;

    /* the producers deliver in parallel: each waits what is left of it */
    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        rk = w->producers[i];

        if (rk == NULL) {
            continue;
        }

        ngx_time_update();
        remaining = (ngx_msec_int_t) (deadline - ngx_current_msec);

        rd_kafka_flush(rk, remaining > 0 ? (int) remaining : 0);
    }

    left = ngx_geostream_kafka_purge(w);

    if (left > 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "geostream: %d kafka messages not delivered "
                      "within geostream_kafka_flush_timeout %M",
                      left, w->conf->flush_timeout);
    }

    ngx_geostream_kafka_log_failures(cycle->log, "on exit");

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        rk = w->producers[i];

        if (rk == NULL) {
            continue;
        }

        rd_kafka_destroy(rk);
        w->producers[i] = NULL;
    }

    ngx_geostream_pipe_close(w->producer_notify,
                                   w->producer_notify_write);
    w->producer_notify = NULL;
    w->producer_notify_write = NGX_INVALID_FILE;
}


ngx_int_t
ngx_geostream_kafka_stopping(void)
{
    int                      left;
    ngx_geostream_worker_t  *w;

    w = &ngx_geostream_worker;

    if (w->stop_deadline == 0) {
        w->stop_deadline = ngx_current_msec + w->conf->flush_timeout;
        w->stop_deadline += (w->stop_deadline == 0);
        return NGX_AGAIN;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - w->stop_deadline) < 0) {
        return NGX_AGAIN;
    }

    left = ngx_geostream_kafka_purge(w);

    if (left > 0) {
        ngx_log_error(NGX_LOG_ALERT, w->cycle->log, 0,
                      "geostream: %d kafka messages not delivered "
                      "within geostream_kafka_flush_timeout %M",
                      left, w->conf->flush_timeout);
    }

    return NGX_OK;
}


/*
 * Gives up what is still undelivered, so that a stopping worker goes in
 * time even with Kafka away: purged messages get their delivery reports
 * (counted as failed, and answering the requests that wait for them) at
 * once, and librdkafka then has nothing left to wait for on its way out.
 * Returns how many messages were given up.
 */
static int
ngx_geostream_kafka_purge(ngx_geostream_worker_t *w)
{
    int          left, n;
    ngx_uint_t   i;
    rd_kafka_t  *rk;

    left = 0;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        rk = w->producers[i];

        if (rk == NULL) {
            continue;
        }

        n = rd_kafka_outq_len(rk);

        if (n == 0) {
            continue;
        }

        left += n;

        (void) rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE
                                  | RD_KAFKA_PURGE_F_INFLIGHT
                                  | RD_KAFKA_PURGE_F_NON_BLOCKING);
        rd_kafka_poll(rk, 0);
    }

    return left;
}


rd_kafka_t *
ngx_geostream_kafka_producer(ngx_uint_t which)
{
    return ngx_geostream_worker.producers[which];
}


int
ngx_geostream_kafka_queued(void)
{
    int          n;
    ngx_uint_t   i;

    n = 0;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (ngx_geostream_worker.producers[i]) {
            n += rd_kafka_outq_len(ngx_geostream_worker.producers[i]);
        }
    }

    return n;
}


static void
ngx_geostream_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    ngx_log_t   *log;
    ngx_uint_t   nlevel;

    log = rd_kafka_opaque(rk);

    /* syslog levels as librdkafka uses them, mapped onto nginx's */
    if (level <= 2) {
        nlevel = NGX_LOG_CRIT;

    } else if (level == 3) {
        nlevel = NGX_LOG_ERR;

    } else if (level == 4) {
        nlevel = NGX_LOG_WARN;

    } else if (level <= 6) {
        nlevel = NGX_LOG_INFO;

    } else {
        nlevel = NGX_LOG_DEBUG;
    }

    ngx_log_error(nlevel, log, 0, "geostream: kafka %s %s: %s",
                  rd_kafka_name(rk), fac, buf);
}


static void
ngx_geostream_kafka_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_log_t               *log;
    ngx_uint_t               i, level;
    ngx_geostream_worker_t  *w;

    log = opaque;
    w = &ngx_geostream_worker;
    level = (err == RD_KAFKA_RESP_ERR__FATAL) ? NGX_LOG_ALERT : NGX_LOG_ERR;

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        /* served on the consumer thread by its rd_kafka_poll() */
        ngx_geostream_reader_brokers_down(&w->reader, rk);

        for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
            if (w->producers[i] == rk && w->down_since[i] == 0) {
                /* 0 means "not down": a clock at 0 counts from 1 */
                w->down_since[i] = ngx_current_msec ? ngx_current_msec : 1;
            }
        }
    }

    ngx_log_error(level, log, 0, "geostream: kafka %s: %s: %s",
                  rd_kafka_name(rk), rd_kafka_err2name(err), reason);
}


static void
ngx_geostream_kafka_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg,
    void *opaque)
{
    ngx_geostream_stats_add(in_flight, -1);

    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_geostream_stats_add(delivered, 1);
        ngx_geostream_kafka_set_up(rk);

    } else {
        ngx_geostream_stats_add(failed, 1);
        ngx_geostream_kafka_count_failure(rd_kafka_topic_name(msg->rkt),
                                          msg->err);
    }

    ngx_geostream_worker.delivered(msg);
}


/*
 * librdkafka's statistics, every statistics.interval.ms: while a
 * producer's brokers are down, they say when one of them is up again (a
 * producer that is refused messages has no deliveries to tell it).
 */
static int
ngx_geostream_kafka_stats(rd_kafka_t *rk, char *json, size_t json_len,
    void *opaque)
{
    cJSON                   *stats, *brokers, *broker, *state;
    ngx_uint_t               i;
    ngx_geostream_worker_t  *w;

    w = &ngx_geostream_worker;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (w->producers[i] == rk) {
            break;
        }
    }

    if (i == NGX_GEOSTREAM_PRODUCERS || w->down_since[i] == 0) {
        return 0;
    }

    stats = cJSON_ParseWithLength(json, json_len);
    brokers = cJSON_GetObjectItemCaseSensitive(stats, "brokers");

    cJSON_ArrayForEach(broker, brokers) {
        state = cJSON_GetObjectItemCaseSensitive(broker, "state");

        if (cJSON_IsString(state) && ngx_strcmp(state->valuestring, "UP") == 0)
        {
            ngx_geostream_kafka_set_up(rk);
            break;
        }
    }

    cJSON_Delete(stats);

    /* 0: librdkafka frees the JSON */
    return 0;
}


static void
ngx_geostream_kafka_set_up(rd_kafka_t *rk)
{
    ngx_uint_t               i;
    ngx_geostream_worker_t  *w;

    w = &ngx_geostream_worker;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (w->producers[i] == rk && w->down_since[i]) {
            w->down_since[i] = 0;

            ngx_log_error(NGX_LOG_NOTICE, w->cycle->log, 0,
                          "geostream: kafka %s: a broker is up again",
                          rd_kafka_name(rk));
        }
    }
}


ngx_uint_t
ngx_geostream_kafka_unavailable(void)
{
    ngx_uint_t               i, running;
    ngx_geostream_worker_t  *w;

    w = &ngx_geostream_worker;
    running = 0;

    /* refused only when no producer of the worker has a broker */
    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (w->producers[i] == NULL) {
            continue;
        }

        running++;

        if (w->down_since[i] == 0
            || ngx_current_msec - w->down_since[i] < w->conf->down_grace)
        {
            return 0;
        }
    }

    return running > 0;
}


static void
ngx_geostream_kafka_count_failure(const char *topic, rd_kafka_resp_err_t err)
{
    ngx_uint_t                 i;
    ngx_geostream_worker_t    *w;
    ngx_geostream_failures_t  *f;

    w = &ngx_geostream_worker;

    for (i = 0; i < w->nfailures; i++) {
        f = &w->failures[i];

        if (f->err == err && ngx_strcmp(f->topic, topic) == 0) {
            f->count++;
            return;
        }
    }

    if (w->nfailures == NGX_GEOSTREAM_FAILURE_KINDS) {
        w->failures_other++;
        return;
    }

    f = &w->failures[w->nfailures++];
    f->err = err;
    f->count = 1;
    ngx_cpystrn(f->topic, (u_char *) topic, sizeof(f->topic));
}


/* a line for each topic and reason since the last call */
static void
ngx_geostream_kafka_log_failures(ngx_log_t *log, const char *when)
{
    ngx_uint_t                 i;
    ngx_geostream_worker_t    *w;
    ngx_geostream_failures_t  *f;

    w = &ngx_geostream_worker;

    for (i = 0; i < w->nfailures; i++) {
        f = &w->failures[i];

        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "geostream: not delivered %s: %ui to topic \"%s\": "
                      "%s", when, f->count, f->topic,
                      rd_kafka_err2str(f->err));
    }

    if (w->failures_other) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "geostream: not delivered %s: %ui more, to other "
                      "topics or for other reasons", when,
                      w->failures_other);
    }

    w->nfailures = 0;
    w->failures_other = 0;
}


static void
ngx_geostream_kafka_producer_notified(ngx_event_t *ev)
{
    ngx_connection_t        *c;
    ngx_geostream_worker_t  *w;

    c = ev->data;
    w = c->data;

    ngx_geostream_pipe_drain(c);

    ngx_geostream_kafka_poll(w);
}


/* serves the delivery reports that are ready, without blocking */
static void
ngx_geostream_kafka_poll(ngx_geostream_worker_t *w)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (w->producers[i]) {
            rd_kafka_poll(w->producers[i], 0);
        }
    }
}


static void
ngx_geostream_kafka_poll_timer(ngx_event_t *ev)
{
    ngx_geostream_worker_t  *w;

    w = ev->data;

    ngx_geostream_kafka_poll(w);
    ngx_geostream_kafka_log_failures(ev->log, "in the last second");

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_GEOSTREAM_POLL_INTERVAL);
    }
}


/* until the worker's state has one struct: its reader's */
ngx_int_t
ngx_geostream_kafka_follow(ngx_str_t *topic)
{
    return ngx_geostream_reader_follow(&ngx_geostream_worker.reader, topic);
}


ngx_geostream_replayer_t *
ngx_geostream_kafka_replayer(void)
{
    return &ngx_geostream_worker.replayer;
}


static void
ngx_geostream_kafka_dispatch(ngx_geostream_event_t *batch, void *data)
{
    ngx_geostream_worker_t  *w = data;

    w->dispatch(batch);
}


/*
 * A consumer instance with the configured properties.  No group.id:
 * partitions are started directly at known offsets with the simple
 * consumer interface, so no group coordination delays or shares the
 * stream; every worker reads every partition.
 */
rd_kafka_t *
ngx_geostream_kafka_consumer_new(ngx_log_t *log, ngx_uint_t partition_eof)
{
    char              errstr[512];
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *conf;

    conf = ngx_geostream_kafka_conf(log, ngx_geostream_worker.conf,
                                    RD_KAFKA_CONSUMER, 0);
    if (conf == NULL) {
        return NULL;
    }

    if (partition_eof
        && ngx_geostream_kafka_conf_set(log, conf, "enable.partition.eof",
                                        "true")
           != NGX_OK)
    {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    rd_kafka_conf_set_log_cb(conf, ngx_geostream_kafka_log);
    rd_kafka_conf_set_error_cb(conf, ngx_geostream_kafka_error);
    rd_kafka_conf_set_opaque(conf, log);

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "geostream: cannot create a kafka consumer: %s",
                      errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    rd_kafka_set_log_queue(rk, NULL);

    return rk;
}
