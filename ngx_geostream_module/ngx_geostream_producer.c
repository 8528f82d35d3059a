/*
 * The worker's Kafka producers, on the event loop.
 * See ngx_geostream_producer.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <librdkafka/rdkafka.h>
#include <cjson/cJSON.h>

#include "ngx_geostream_producer.h"
#include "ngx_geostream_bridge.h"


#define NGX_GEOSTREAM_POLL_INTERVAL      1000    /* ms, safety net */
#define NGX_GEOSTREAM_HOLD_INTERVAL      200     /* ms, a stopping worker */


/*
 * A message whose report nobody waits for carries its key's bucket as its
 * opaque, with the low bit set, which no pointer to a delivery has.
 */
#define ngx_geostream_bucket_opaque(bucket)                                   \
    ((void *) (((uintptr_t) (bucket) << 1) | 1))
#define ngx_geostream_is_bucket(opaque)  ((uintptr_t) (opaque) & 1)
#define ngx_geostream_bucket(opaque)                                          \
    ((uint32_t) ((uintptr_t) (opaque) >> 1))


static rd_kafka_t *ngx_geostream_producer_new(ngx_geostream_producers_t *pr,
    ngx_cycle_t *cycle, ngx_uint_t which);
static void ngx_geostream_producer_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);
static void ngx_geostream_producer_delivered(rd_kafka_t *rk,
    const rd_kafka_message_t *msg, void *opaque);
static int ngx_geostream_producer_stats(rd_kafka_t *rk, char *json,
    size_t json_len, void *opaque);
static ngx_uint_t ngx_geostream_producer_which(ngx_geostream_producers_t *pr,
    rd_kafka_t *rk);
static void ngx_geostream_producer_set_up(ngx_geostream_producers_t *pr,
    rd_kafka_t *rk);
static void ngx_geostream_producer_count_failure(
    ngx_geostream_producers_t *pr, const char *topic, rd_kafka_resp_err_t err);
static void ngx_geostream_producer_log_failures(ngx_geostream_producers_t *pr,
    ngx_log_t *log, const char *when);
static void ngx_geostream_producer_give_up(ngx_geostream_producers_t *pr);
static int ngx_geostream_producer_purge(ngx_geostream_producers_t *pr);
static void ngx_geostream_producer_topics_stop(ngx_geostream_producers_t *pr);
static void ngx_geostream_producer_topics_free(ngx_geostream_producers_t *pr);
static void ngx_geostream_producer_hold(ngx_event_t *ev);
static ngx_int_t ngx_geostream_producer_stopping(
    ngx_geostream_producers_t *pr);
static void ngx_geostream_producer_notified(ngx_event_t *ev);
static void ngx_geostream_producer_poll(ngx_geostream_producers_t *pr);
static void ngx_geostream_producer_poll_timer(ngx_event_t *ev);


#if (NGX_DEBUG)
static const char  *ngx_geostream_producer_names[] = { "prompt", "batching" };
#endif


ngx_int_t
ngx_geostream_producer_init(ngx_geostream_producers_t *pr, ngx_cycle_t *cycle,
    ngx_geostream_kafka_conf_t *kcf, ngx_geostream_stats_t *stats,
    ngx_geostream_delivered_pt delivered)
{
    ngx_uint_t         i;
    rd_kafka_queue_t  *main_queue;

    ngx_memzero(pr, sizeof(ngx_geostream_producers_t));
    pr->conf = kcf;
    pr->log = cycle->log;
    pr->stats = stats;
    pr->delivered = delivered;
    pr->notify_write = NGX_INVALID_FILE;

    ngx_geostream_route_init(&pr->route, (uint32_t) kcf->batch_rate);
    ngx_rbtree_init(&pr->topics, &pr->topics_sentinel,
                    ngx_str_rbtree_insert_value);

    pr->notify = ngx_geostream_pipe_open(cycle, &pr->notify_write,
                                         ngx_geostream_producer_notified);
    if (pr->notify == NULL) {
        return NGX_ERROR;
    }

    pr->notify->data = pr;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (i == NGX_GEOSTREAM_PRODUCER_PROMPT && !kcf->prompt_producer) {
            continue;
        }

        pr->rk[i] = ngx_geostream_producer_new(pr, cycle, i);
        if (pr->rk[i] == NULL) {
            return NGX_ERROR;
        }

        /* librdkafka writes to the pipe when its main queue gets an item */
        main_queue = rd_kafka_queue_get_main(pr->rk[i]);
        rd_kafka_queue_io_event_enable(main_queue, pr->notify_write, "p", 1);
        rd_kafka_queue_destroy(main_queue);
    }

    /*
     * A safety net only: reports arrive through the pipe.  Cancelable, so
     * that it never holds a shutting-down worker.
     */
    pr->poll_timer.handler = ngx_geostream_producer_poll_timer;
    pr->poll_timer.log = cycle->log;
    pr->poll_timer.data = pr;
    pr->poll_timer.cancelable = 1;
    ngx_add_timer(&pr->poll_timer, NGX_GEOSTREAM_POLL_INTERVAL);

    return NGX_OK;
}


static rd_kafka_t *
ngx_geostream_producer_new(ngx_geostream_producers_t *pr, ngx_cycle_t *cycle,
    ngx_uint_t which)
{
    char              errstr[512];
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *conf;

    conf = ngx_geostream_kafka_conf(cycle->log, pr->conf, RD_KAFKA_PRODUCER,
                                    which == NGX_GEOSTREAM_PRODUCER_PROMPT);
    if (conf == NULL) {
        return NULL;
    }

    rd_kafka_conf_set_log_cb(conf, ngx_geostream_kafka_log);
    rd_kafka_conf_set_error_cb(conf, ngx_geostream_producer_error);
    rd_kafka_conf_set_dr_msg_cb(conf, ngx_geostream_producer_delivered);
    rd_kafka_conf_set_stats_cb(conf, ngx_geostream_producer_stats);
    rd_kafka_conf_set_opaque(conf, pr);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "geostream: cannot create the kafka producer: %s",
                      errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    rd_kafka_set_log_queue(rk, NULL);

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, cycle->log, 0,
                   "geostream producer: %s is %s",
                   ngx_geostream_producer_names[which], rd_kafka_name(rk));

    return rk;
}


ngx_msec_t
ngx_geostream_producer_deadline(ngx_geostream_producers_t *pr)
{
    ngx_time_update();

    if (pr->stop_deadline) {
        return pr->stop_deadline;
    }

    return ngx_current_msec + (pr->conf ? pr->conf->flush_timeout : 0);
}


void
ngx_geostream_producer_exit(ngx_geostream_producers_t *pr,
    ngx_msec_t deadline)
{
    ngx_uint_t      i;
    ngx_msec_int_t  remaining;

    if (pr->conf == NULL) {
        return;
    }

    if (pr->poll_timer.timer_set) {
        ngx_del_timer(&pr->poll_timer);
    }

    /*
     * librdkafka wants the topics' handles destroyed before their
     * producer.  A message still queued keeps the topic it needs, and its
     * delivery report still carries the handle's opaque, the topic.
     */
    ngx_geostream_producer_topics_stop(pr);

    /* what was accepted is delivered before the worker goes, within bounds */
    pr->exiting = 1;

    /* the producers deliver in parallel: each waits what is left of it */
    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (pr->rk[i] == NULL) {
            continue;
        }

        ngx_time_update();
        remaining = (ngx_msec_int_t) (deadline - ngx_current_msec);

        rd_kafka_flush(pr->rk[i], remaining > 0 ? (int) remaining : 0);
    }

    ngx_geostream_producer_give_up(pr);

    ngx_geostream_producer_log_failures(pr, pr->log, "on exit");

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (pr->rk[i] != NULL) {
            rd_kafka_destroy(pr->rk[i]);
            pr->rk[i] = NULL;
        }
    }

    /* the last delivery reports, which point to the topics, are served */
    ngx_geostream_producer_topics_free(pr);

    ngx_geostream_pipe_close(pr->notify, pr->notify_write);
    pr->notify = NULL;
    pr->notify_write = NGX_INVALID_FILE;
}


void
ngx_geostream_producer_wait(ngx_geostream_producers_t *pr)
{
    if (pr->waiting++ == 0) {
        pr->hold.data = pr;
        ngx_geostream_producer_hold(&pr->hold);
    }
}


void
ngx_geostream_producer_waited(ngx_geostream_producers_t *pr)
{
    pr->waiting--;
}


/*
 * Keeps a gracefully stopping worker (reload) alive while requests wait
 * for their delivery reports, so that they get their answers; nginx exits
 * a worker once only cancelable timers are left.  Not for longer than
 * geostream_kafka_flush_timeout, though: with Kafka away the reports would
 * come only as messages expire, so then what is still undelivered is given
 * up, and its reports answer the waiting requests.
 */
static void
ngx_geostream_producer_hold(ngx_event_t *ev)
{
    ngx_geostream_producers_t  *pr;

    pr = ev->data;

    if (pr->waiting && ngx_exiting) {
        (void) ngx_geostream_producer_stopping(pr);
    }

    if (pr->waiting == 0) {
        return;
    }

    ev->handler = ngx_geostream_producer_hold;
    ev->log = ngx_cycle->log;
    ev->cancelable = 0;

    ngx_add_timer(ev, NGX_GEOSTREAM_HOLD_INTERVAL);
}


/*
 * Called while a stopping worker waits for delivery reports: the first
 * call starts geostream_kafka_flush_timeout, and once it is over what is
 * still undelivered is given up (NGX_OK; NGX_AGAIN before).
 */
static ngx_int_t
ngx_geostream_producer_stopping(ngx_geostream_producers_t *pr)
{
    if (pr->stop_deadline == 0) {
        pr->stop_deadline = ngx_current_msec + pr->conf->flush_timeout;
        pr->stop_deadline += (pr->stop_deadline == 0);

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pr->log, 0,
                       "geostream producer: stopping, %M ms for kafka",
                       pr->conf->flush_timeout);
        return NGX_AGAIN;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - pr->stop_deadline) < 0) {
        return NGX_AGAIN;
    }

    ngx_geostream_producer_give_up(pr);

    return NGX_OK;
}


/* what Kafka has not taken by the deadline is given up, and said once */
static void
ngx_geostream_producer_give_up(ngx_geostream_producers_t *pr)
{
    int  left;

    left = ngx_geostream_producer_purge(pr);

    if (left > 0) {
        ngx_log_error(NGX_LOG_ALERT, pr->log, 0,
                      "geostream: %d kafka messages not delivered "
                      "within geostream_kafka_flush_timeout %M",
                      left, pr->conf->flush_timeout);
    }
}


/*
 * Gives up what is still undelivered, so that a stopping worker goes in
 * time even with Kafka away: purged messages get their delivery reports
 * (counted as failed, and answering the requests that wait for them) at
 * once, and librdkafka then has nothing left to wait for on its way out.
 * Returns how many messages were given up.
 */
static int
ngx_geostream_producer_purge(ngx_geostream_producers_t *pr)
{
    int          left, n;
    ngx_uint_t   i;
    rd_kafka_t  *rk;

    left = 0;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        rk = pr->rk[i];

        if (rk == NULL) {
            continue;
        }

        n = rd_kafka_outq_len(rk);

        if (n == 0) {
            continue;
        }

        left += n;

        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pr->log, 0,
                       "geostream producer: %s gives up %d messages",
                       rd_kafka_name(rk), n);

        (void) rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE
                                  | RD_KAFKA_PURGE_F_INFLIGHT
                                  | RD_KAFKA_PURGE_F_NON_BLOCKING);
        rd_kafka_poll(rk, 0);
    }

    return left;
}


ngx_geostream_producer_topic_t *
ngx_geostream_producer_topic(ngx_geostream_producers_t *pr, ngx_str_t *name,
    ngx_log_t *log)
{
    uint32_t                         hash;
    ngx_uint_t                       which;
    ngx_str_node_t                  *sn;
    rd_kafka_topic_conf_t           *tconf;
    ngx_geostream_producer_topic_t  *t;

    if (pr->rk[NGX_GEOSTREAM_PRODUCER_BATCHING] == NULL) {
        return NULL;
    }

    hash = ngx_crc32_long(name->data, name->len);

    sn = ngx_str_rbtree_lookup(&pr->topics, name, hash);
    if (sn != NULL) {
        t = (ngx_geostream_producer_topic_t *) sn;
        goto found;
    }

    if (pr->ntopics >= NGX_GEOSTREAM_PRODUCER_TOPICS_MAX) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "geostream: more than %d topics produced to by one "
                      "worker; restrict them with geostream_topics",
                      NGX_GEOSTREAM_PRODUCER_TOPICS_MAX);
        return NULL;
    }

    t = ngx_calloc(sizeof(ngx_geostream_producer_topic_t) + name->len + 1,
                   log);
    if (t == NULL) {
        return NULL;
    }

    t->name.len = name->len;
    t->name.data = (u_char *) (t + 1);
    ngx_memcpy(t->name.data, name->data, name->len);
    t->name.data[name->len] = '\0';

    t->sn.node.key = hash;
    t->sn.str = t->name;
    ngx_rbtree_insert(&pr->topics, &t->sn.node);
    pr->ntopics++;

found:

    for (which = 0; which < NGX_GEOSTREAM_PRODUCERS; which++) {
        if (pr->rk[which] == NULL || t->rkt[which]) {
            continue;
        }

        /* delivery reports find the topic through the handle */
        tconf = rd_kafka_default_topic_conf_dup(pr->rk[which]);
        if (tconf == NULL) {
            return NULL;
        }

        rd_kafka_topic_conf_set_opaque(tconf, t);

        t->rkt[which] = rd_kafka_topic_new(pr->rk[which],
                                           (char *) t->name.data, tconf);
        if (t->rkt[which] == NULL) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "geostream: topic \"%V\": %s", name,
                          rd_kafka_err2str(rd_kafka_last_error()));
            return NULL;
        }
    }

    return t;
}


/* the topics' handles go before their producers */
static void
ngx_geostream_producer_topics_stop(ngx_geostream_producers_t *pr)
{
    ngx_uint_t                       which;
    ngx_rbtree_node_t               *node;
    ngx_geostream_producer_topic_t  *t;

    if (pr->topics.root == pr->topics.sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(pr->topics.root, pr->topics.sentinel);
         node;
         node = ngx_rbtree_next(&pr->topics, node))
    {
        t = (ngx_geostream_producer_topic_t *) node;

        for (which = 0; which < NGX_GEOSTREAM_PRODUCERS; which++) {
            if (t->rkt[which]) {
                rd_kafka_topic_destroy(t->rkt[which]);
                t->rkt[which] = NULL;
            }
        }
    }
}


/* ...and the topics once the producers are gone, with their last reports */
static void
ngx_geostream_producer_topics_free(ngx_geostream_producers_t *pr)
{
    ngx_rbtree_node_t  *node;

    while (pr->topics.root != pr->topics.sentinel) {
        node = ngx_rbtree_min(pr->topics.root, pr->topics.sentinel);
        ngx_rbtree_delete(&pr->topics, node);
        ngx_free(node);
    }

    pr->ntopics = 0;
}


/*
 * Delivery reports are awaited (the message gets "d" as its opaque) when
 * the caller wants them, and the route then counts the message in flight
 * until its report; otherwise the opaque is the bucket, which the report
 * gives back to the route.
 */
int
ngx_geostream_producer_produce(ngx_geostream_producers_t *pr,
    ngx_geostream_producer_topic_t *t, ngx_geostream_message_out_t *m,
    ngx_geostream_delivery_t *d, ngx_log_t *log)
{
    void                 *opaque;
    ngx_uint_t            which;
    rd_kafka_resp_err_t   err;

    d->partition = -1;
    d->offset = -1;
    d->err = RD_KAFKA_RESP_ERR_NO_ERROR;
    d->bucket = ngx_geostream_route_bucket(m->key, m->key_len);

    which = ngx_geostream_route_pick(&pr->route, d->bucket, m->waiting,
                                     (uint64_t) ngx_current_msec);
    opaque = m->report ? (void *) d : ngx_geostream_bucket_opaque(d->bucket);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, log, 0,
                   "geostream produce: topic \"%V\", bucket %uD, the %s "
                   "producer%s", &t->name, d->bucket,
                   ngx_geostream_producer_names[which],
                   m->report ? ", report awaited" : "");

    if (t->rkt[which] == NULL) {
        /* the producer did not start (logged by then) */
        err = RD_KAFKA_RESP_ERR__STATE;

    } else {
        err = rd_kafka_producev(pr->rk[which],
                  RD_KAFKA_V_RKT(t->rkt[which]),
                  RD_KAFKA_V_KEY((void *) m->key, m->key_len),
                  RD_KAFKA_V_VALUE((void *) m->value, m->value_len),
                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                  RD_KAFKA_V_TIMESTAMP(m->timestamp),
                  RD_KAFKA_V_OPAQUE(opaque),
                  RD_KAFKA_V_END);
    }

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_geostream_route_done(&pr->route, d->bucket);

        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "geostream: cannot produce to topic \"%V\": %s",
                      &t->name, rd_kafka_err2str(err));

        d->err = err;
        return err;
    }

    ngx_geostream_stats_add(pr->stats, produced[which], 1);
    ngx_geostream_stats_add(pr->stats, in_flight, 1);

    return RD_KAFKA_RESP_ERR_NO_ERROR;
}


ngx_geostream_produce_failure_e
ngx_geostream_producer_failure(int err)
{
    switch (err) {

    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return NGX_GEOSTREAM_PRODUCE_OK;

    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return NGX_GEOSTREAM_PRODUCE_QUEUE_FULL;

    /* given up by a worker that stops with Kafka away */
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        return NGX_GEOSTREAM_PRODUCE_PURGED;

    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return NGX_GEOSTREAM_PRODUCE_TIMED_OUT;

    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return NGX_GEOSTREAM_PRODUCE_UNKNOWN_TOPIC;

    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return NGX_GEOSTREAM_PRODUCE_TOO_LARGE;

    default:
        return NGX_GEOSTREAM_PRODUCE_FAILED;
    }
}


const char *
ngx_geostream_producer_strerror(int err)
{
    return rd_kafka_err2str(err);
}


/* served on the event loop by rd_kafka_poll(); "opaque": the producers */
static void
ngx_geostream_producer_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_geostream_producers_t *pr = opaque;

    ngx_uint_t  which;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pr->log, 0,
                   "geostream producer: %s: kafka error %s",
                   rd_kafka_name(rk), rd_kafka_err2name(err));

    which = ngx_geostream_producer_which(pr, rk);

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN
        && which < NGX_GEOSTREAM_PRODUCERS && pr->down_since[which] == 0)
    {
        /* 0 means "not down": a clock at 0 counts from 1 */
        pr->down_since[which] = ngx_current_msec ? ngx_current_msec : 1;

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pr->log, 0,
                       "geostream producer: %s: all brokers are down",
                       rd_kafka_name(rk));
    }

    ngx_geostream_kafka_log_error(pr->log, rk, err, reason);
}


static void
ngx_geostream_producer_delivered(rd_kafka_t *rk,
    const rd_kafka_message_t *msg, void *opaque)
{
    ngx_geostream_delivery_t        *d;
    ngx_geostream_producers_t       *pr;
    ngx_geostream_producer_topic_t  *t;

    pr = opaque;

    ngx_geostream_stats_add(pr->stats, in_flight, -1);

    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_geostream_stats_add(pr->stats, delivered, 1);
        ngx_geostream_producer_set_up(pr, rk);

    } else {
        ngx_geostream_stats_add(pr->stats, failed, 1);
        ngx_geostream_producer_count_failure(pr,
                                             rd_kafka_topic_name(msg->rkt),
                                             msg->err);

        ngx_log_debug3(NGX_LOG_DEBUG_EVENT, pr->log, 0,
                       "geostream producer: %s: not delivered to \"%s\": %s",
                       rd_kafka_name(rk), rd_kafka_topic_name(msg->rkt),
                       rd_kafka_err2name(msg->err));
    }

    t = rd_kafka_topic_opaque(msg->rkt);

    if (t != NULL && msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        t->confirmed = 1;
    }

    if (ngx_geostream_is_bucket(msg->_private)) {
        /* a message that nobody waits for */
        ngx_geostream_route_done(&pr->route,
                                 ngx_geostream_bucket(msg->_private));
        return;
    }

    d = msg->_private;

    if (d == NULL) {
        return;
    }

    ngx_geostream_route_done(&pr->route, d->bucket);

    d->err = msg->err;
    d->partition = msg->partition;
    d->offset = msg->offset;

    pr->delivered(pr, d);
}


/*
 * librdkafka's statistics, every statistics.interval.ms: while a
 * producer's brokers are down, they say when one of them is up again (a
 * producer that is refused messages has no deliveries to tell it).
 */
static int
ngx_geostream_producer_stats(rd_kafka_t *rk, char *json, size_t json_len,
    void *opaque)
{
    ngx_geostream_producers_t *pr = opaque;

    cJSON       *stats, *brokers, *broker, *state;
    ngx_uint_t   which;

    which = ngx_geostream_producer_which(pr, rk);

    if (which == NGX_GEOSTREAM_PRODUCERS || pr->down_since[which] == 0) {
        return 0;
    }

    stats = cJSON_ParseWithLength(json, json_len);
    brokers = cJSON_GetObjectItemCaseSensitive(stats, "brokers");

    cJSON_ArrayForEach(broker, brokers) {
        state = cJSON_GetObjectItemCaseSensitive(broker, "state");

        if (cJSON_IsString(state) && ngx_strcmp(state->valuestring, "UP") == 0)
        {
            ngx_geostream_producer_set_up(pr, rk);
            break;
        }
    }

    cJSON_Delete(stats);

    /* 0: librdkafka frees the JSON */
    return 0;
}


/* NGX_GEOSTREAM_PRODUCERS when "rk" is none of the worker's producers */
static ngx_uint_t
ngx_geostream_producer_which(ngx_geostream_producers_t *pr, rd_kafka_t *rk)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (pr->rk[i] == rk) {
            break;
        }
    }

    return i;
}


static void
ngx_geostream_producer_set_up(ngx_geostream_producers_t *pr, rd_kafka_t *rk)
{
    ngx_uint_t  which;

    which = ngx_geostream_producer_which(pr, rk);

    if (which < NGX_GEOSTREAM_PRODUCERS && pr->down_since[which]) {
        pr->down_since[which] = 0;

        ngx_log_error(NGX_LOG_NOTICE, pr->log, 0,
                      "geostream: kafka %s: a broker is up again",
                      rd_kafka_name(rk));
    }
}


ngx_uint_t
ngx_geostream_producer_unavailable(ngx_geostream_producers_t *pr)
{
    ngx_uint_t  i, running;

    running = 0;

    /* refused only when no producer of the worker has a broker */
    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (pr->rk[i] == NULL) {
            continue;
        }

        running++;

        if (pr->down_since[i] == 0
            || ngx_current_msec - pr->down_since[i] < pr->conf->down_grace)
        {
            return 0;
        }
    }

    return running > 0;
}


static void
ngx_geostream_producer_count_failure(ngx_geostream_producers_t *pr,
    const char *topic, rd_kafka_resp_err_t err)
{
    ngx_uint_t                 i;
    ngx_geostream_failures_t  *f;

    for (i = 0; i < pr->nfailures; i++) {
        f = &pr->failures[i];

        if (f->err == (int) err
            && ngx_strcmp(f->topic, (u_char *) topic) == 0)
        {
            f->count++;
            return;
        }
    }

    if (pr->nfailures == NGX_GEOSTREAM_FAILURE_KINDS) {
        pr->failures_other++;
        return;
    }

    f = &pr->failures[pr->nfailures++];
    f->err = err;
    f->count = 1;
    ngx_cpystrn(f->topic, (u_char *) topic, sizeof(f->topic));
}


/* a line for each topic and reason since the last call */
static void
ngx_geostream_producer_log_failures(ngx_geostream_producers_t *pr,
    ngx_log_t *log, const char *when)
{
    ngx_uint_t                 i;
    ngx_geostream_failures_t  *f;

    for (i = 0; i < pr->nfailures; i++) {
        f = &pr->failures[i];

        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "geostream: not delivered %s: %ui to topic \"%s\": "
                      "%s", when, f->count, f->topic,
                      rd_kafka_err2str(f->err));
    }

    if (pr->failures_other) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "geostream: not delivered %s: %ui more, to other "
                      "topics or for other reasons", when,
                      pr->failures_other);
    }

    pr->nfailures = 0;
    pr->failures_other = 0;
}


static void
ngx_geostream_producer_notified(ngx_event_t *ev)
{
    ngx_connection_t  *c;

    c = ev->data;

    ngx_geostream_pipe_drain(c);

    ngx_geostream_producer_poll(c->data);
}


/* serves the delivery reports that are ready, without blocking */
static void
ngx_geostream_producer_poll(ngx_geostream_producers_t *pr)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (pr->rk[i]) {
            rd_kafka_poll(pr->rk[i], 0);
        }
    }
}


static void
ngx_geostream_producer_poll_timer(ngx_event_t *ev)
{
    ngx_geostream_producers_t  *pr;

    pr = ev->data;

    ngx_geostream_producer_poll(pr);
    ngx_geostream_producer_log_failures(pr, ev->log, "in the last second");

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_GEOSTREAM_POLL_INTERVAL);
    }
}


ngx_int_t
ngx_geostream_producer_queued(ngx_geostream_producers_t *pr)
{
    ngx_int_t   n;
    ngx_uint_t  i;

    n = 0;

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        if (pr->rk[i]) {
            n += rd_kafka_outq_len(pr->rk[i]);
        }
    }

    return n;
}


/*
 * A producer's linger.ms as it runs, defaults and configuration applied:
 * the latency a waiting client pays at least, and what batching gets.
 */
void
ngx_geostream_producer_status(ngx_geostream_producers_t *pr,
    ngx_geostream_producer_status_t *st)
{
    char        value[32];
    size_t      size;
    ngx_uint_t  i;

    st->running = (pr->rk[NGX_GEOSTREAM_PRODUCER_BATCHING] != NULL);
    st->batch_rate = pr->route.batch_rate;
    st->batching = pr->route.batching;
    st->kafka_unavailable = ngx_geostream_producer_unavailable(pr);
    st->queued = ngx_geostream_producer_queued(pr);

    for (i = 0; i < NGX_GEOSTREAM_PRODUCERS; i++) {
        st->linger_ms[i] = -1;

        if (pr->rk[i] == NULL) {
            continue;
        }

        size = sizeof(value);

        if (rd_kafka_conf_get(rd_kafka_conf(pr->rk[i]), "linger.ms", value,
                              &size)
            == RD_KAFKA_CONF_OK)
        {
            st->linger_ms[i] = strtod(value, NULL);
        }
    }
}
