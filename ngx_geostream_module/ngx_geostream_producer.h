/*
 * The worker's Kafka producers, on the event loop: their creation, a
 * handle per topic, which producer takes a message (ngx_geostream_route.h),
 * the produce call, delivery reports (handed to the caller's callback),
 * failure accounting, whether Kafka is away, and their end: a stopping
 * worker gives up what Kafka has not taken in time, an exiting one
 * flushes within a deadline.
 *
 * librdkafka signals waiting delivery reports through a pipe that nginx
 * watches, and the loop serves them with a non-blocking rd_kafka_poll();
 * a timer polls too, as a safety net, and logs the failures of the last
 * second.  No ngx_http here, and no librdkafka type in this header: the
 * HTTP location sees what it needs of a report in ngx_geostream_delivery_t.
 */

#ifndef _NGX_GEOSTREAM_PRODUCER_H_INCLUDED_
#define _NGX_GEOSTREAM_PRODUCER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_geostream_kafka_conf.h"
#include "ngx_geostream_route.h"
#include "ngx_geostream_stats.h"


/* topic and reason pairs counted between two summary log lines */
#define NGX_GEOSTREAM_FAILURE_KINDS      16


typedef struct ngx_geostream_producers_s  ngx_geostream_producers_t;


/*
 * A message someone waits for: its caller's memory, which must live until
 * its report comes (or the producers are gone).  The mechanism sets all
 * but "data"; "err" is 0 once Kafka has it, or librdkafka's error
 * (rd_kafka_resp_err_t), see ngx_geostream_producer_failure().
 */
typedef struct {
    void                       *data;          /* the caller's */
    uint32_t                    bucket;        /* its key's, routing */
    int32_t                     partition;     /* -1: not known */
    int64_t                     offset;        /* -1: not known */
    int                         err;
} ngx_geostream_delivery_t;


/* called on the event loop with each report that someone waits for */
typedef void (*ngx_geostream_delivered_pt)(ngx_geostream_producers_t *pr,
    ngx_geostream_delivery_t *d);


/* a message to produce */
typedef struct {
    const void                 *key;
    size_t                      key_len;
    const void                 *value;
    size_t                      value_len;
    int64_t                     timestamp;     /* ms; 0: when Kafka takes it */
    unsigned                    waiting:1;     /* a client waits for it */
    unsigned                    report:1;      /* delivered() is called */
} ngx_geostream_message_out_t;


/*
 * A topic's handles, one per producer that the worker has, kept for the
 * worker's life (at most NGX_GEOSTREAM_PRODUCER_TOPICS_MAX of them).
 */
typedef struct {
    ngx_str_node_t              sn;            /* by name */
    ngx_str_t                   name;          /* NUL-terminated */
    struct rd_kafka_topic_s    *rkt[NGX_GEOSTREAM_PRODUCERS];
    unsigned                    confirmed:1;   /* a delivery succeeded */
} ngx_geostream_producer_topic_t;

#define NGX_GEOSTREAM_PRODUCER_TOPICS_MAX   1024


/*
 * Messages that were not delivered, counted by topic and reason and
 * logged once a poll interval: when Kafka is away, messages expire by the
 * thousand, and a line for each would flood the error log.
 */
typedef struct {
    int                         err;
    ngx_uint_t                  count;
    u_char                      topic[256];
} ngx_geostream_failures_t;


struct ngx_geostream_producers_s {
    ngx_geostream_kafka_conf_t *conf;           /* NULL: not started */
    ngx_log_t                  *log;
    ngx_geostream_stats_t      *stats;
    ngx_geostream_delivered_pt  delivered;

    struct rd_kafka_s          *rk[NGX_GEOSTREAM_PRODUCERS];
    ngx_connection_t           *notify;
    ngx_fd_t                    notify_write;
    ngx_event_t                 poll_timer;

    ngx_geostream_route_t       route;

    ngx_rbtree_t                topics;         /* of ..._topic_t */
    ngx_rbtree_node_t           topics_sentinel;
    ngx_uint_t                  ntopics;

    /*
     * when librdkafka last said that all of a producer's brokers are
     * down, until one of them is seen up again; 0: not down
     */
    ngx_msec_t                  down_since[NGX_GEOSTREAM_PRODUCERS];

    /* a stopping worker gives up on what Kafka has not taken by then */
    ngx_msec_t                  stop_deadline;  /* 0: not set */

    /* requests waiting for reports; they hold a stopping worker */
    ngx_uint_t                  waiting;
    ngx_event_t                 hold;

    ngx_geostream_failures_t    failures[NGX_GEOSTREAM_FAILURE_KINDS];
    ngx_uint_t                  nfailures;
    ngx_uint_t                  failures_other; /* past the kinds above */

    /* set once the worker flushes its producers on exit: requests are gone */
    unsigned                    exiting:1;
};


/* what the status location shows of the worker's producers */
typedef struct {
    ngx_uint_t                  running;       /* the batching one exists */
    ngx_uint_t                  batch_rate;
    ngx_uint_t                  batching;      /* the route batches now */
    ngx_uint_t                  kafka_unavailable;
    ngx_int_t                   queued;
    double                      linger_ms[NGX_GEOSTREAM_PRODUCERS]; /* <0 */
} ngx_geostream_producer_status_t;


/* why Kafka did not take a message, for those who answer for it */
typedef enum {
    NGX_GEOSTREAM_PRODUCE_OK = 0,
    NGX_GEOSTREAM_PRODUCE_QUEUE_FULL,      /* librdkafka's queue is full */
    NGX_GEOSTREAM_PRODUCE_PURGED,          /* given up by a stopping worker */
    NGX_GEOSTREAM_PRODUCE_TIMED_OUT,
    NGX_GEOSTREAM_PRODUCE_UNKNOWN_TOPIC,
    NGX_GEOSTREAM_PRODUCE_TOO_LARGE,
    NGX_GEOSTREAM_PRODUCE_FAILED           /* any other reason */
} ngx_geostream_produce_failure_e;


/*
 * Starts the worker's producers (the prompt one only when a location can
 * use it), their pipe and their poll timer.  NGX_ERROR when one of them
 * cannot start (logged): the worker serves on, its produce requests are
 * refused.
 */
ngx_int_t ngx_geostream_producer_init(ngx_geostream_producers_t *pr,
    ngx_cycle_t *cycle, ngx_geostream_kafka_conf_t *kcf,
    ngx_geostream_stats_t *stats, ngx_geostream_delivered_pt delivered);

/*
 * The exiting worker's deadline for all it waits for on its way out:
 * the one that a stopping worker set (ngx_geostream_producer_stopping()),
 * or geostream_kafka_flush_timeout from now.
 */
ngx_msec_t ngx_geostream_producer_deadline(ngx_geostream_producers_t *pr);

/*
 * At worker exit: what was accepted is delivered until "deadline", the
 * rest is given up (and logged), and the producers, their topics and
 * their pipe go.  Reports served meanwhile find pr->exiting set.
 */
void ngx_geostream_producer_exit(ngx_geostream_producers_t *pr,
    ngx_msec_t deadline);

/*
 * A request waits for its delivery reports (wait), or has them all
 * (waited).  While requests wait, a stopping worker stays, for
 * geostream_kafka_flush_timeout at most: then what is still undelivered
 * is given up, and its reports answer the requests.
 */
void ngx_geostream_producer_wait(ngx_geostream_producers_t *pr);
void ngx_geostream_producer_waited(ngx_geostream_producers_t *pr);

/*
 * The topic with a handle of each producer the worker has; NULL on
 * failure (logged), or when the worker has no producer.
 */
ngx_geostream_producer_topic_t *ngx_geostream_producer_topic(
    ngx_geostream_producers_t *pr, ngx_str_t *name, ngx_log_t *log);

/*
 * Hands a message to the producer that the route picks.  0 once
 * librdkafka holds it, or the error why not (in d->err too; logged on
 * "log").  With m->report, delivered() gets "d" with its outcome.
 */
int ngx_geostream_producer_produce(ngx_geostream_producers_t *pr,
    ngx_geostream_producer_topic_t *t, ngx_geostream_message_out_t *m,
    ngx_geostream_delivery_t *d, ngx_log_t *log);

/* what a delivery's "err" means, and the words for it */
ngx_geostream_produce_failure_e ngx_geostream_producer_failure(int err);
const char *ngx_geostream_producer_strerror(int err);

/*
 * Whether every producer of the worker has had all its brokers down for
 * geostream_kafka_down_grace: new messages would only wait to expire.
 */
ngx_uint_t ngx_geostream_producer_unavailable(ngx_geostream_producers_t *pr);

/* messages that the worker's producers hold, delivery reports included */
ngx_int_t ngx_geostream_producer_queued(ngx_geostream_producers_t *pr);

void ngx_geostream_producer_status(ngx_geostream_producers_t *pr,
    ngx_geostream_producer_status_t *st);


#endif /* _NGX_GEOSTREAM_PRODUCER_H_INCLUDED_ */
