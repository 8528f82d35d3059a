/*
 * librdkafka handles of a worker and their bridge to the event loop.
 *
 * The producers live on the event loop: ngx_geostream_producer.h.
 *
 * The consumer lives on its own thread, one per worker: it reads every
 * topic that the worker's subscribers follow, turns each message into a
 * ready-made SSE event, and hands batches of events to the event loop
 * through a locked list and a pipe.  The thread never touches nginx
 * objects; the loop never blocks on Kafka.
 */

#ifndef _NGX_GEOSTREAM_KAFKA_H_INCLUDED_
#define _NGX_GEOSTREAM_KAFKA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <pthread.h>
#include <librdkafka/rdkafka.h>

#include "ngx_geostream_route.h"
/* what moved out of this header; included here for now */
#include "ngx_geostream_stats.h"
#include "ngx_geostream_kafka_conf.h"
#include "ngx_geostream_producer.h"


typedef enum {
    NGX_GEOSTREAM_EVENT_MESSAGE = 0,
    /* from now on, everything produced to the topic will be delivered */
    NGX_GEOSTREAM_EVENT_TOPIC_READY,
    /* a replayed message, for one replay's owner only */
    NGX_GEOSTREAM_EVENT_REPLAY,
    /* a replay's notice to its owner (SSE bytes, no filter applies) */
    NGX_GEOSTREAM_EVENT_REPLAY_NOTICE,
    /* the replay is over; its owner takes it from here */
    NGX_GEOSTREAM_EVENT_REPLAY_DONE,
    /*
     * a partition's log no longer has the reader's position (it was made
     * again, or retention passed it): reading goes on from the log's
     * start; an SSE event with its new "id:" for every subscriber
     */
    NGX_GEOSTREAM_EVENT_RESET
} ngx_geostream_event_type_e;


typedef struct ngx_geostream_event_s   ngx_geostream_event_t;
typedef struct ngx_geostream_replay_s  ngx_geostream_replay_t;


/* a topic as a thread reads it: where each partition is (the cursor) */
typedef struct {
    char                       *name;
    size_t                      name_len;
    int32_t                     partitions;
    int64_t                    *next_offsets;
} ngx_geostream_reading_t;


/*
 * A read of a topic's past from Kafka, for one subscriber whose position
 * the history ring no longer has: from "rd"'s offsets (or, with "since",
 * the offsets of that time) up to, not including, "to".  The worker's
 * replay thread runs one at a time.  The event loop owns "owner" and frees
 * the replay once it has its REPLAY_DONE event.
 */
struct ngx_geostream_replay_s {
    ngx_geostream_replay_t     *next;
    void                       *owner;          /* NULL: the owner left */
    ngx_geostream_reading_t     rd;
    int64_t                    *to;
    int64_t                     since;          /* ms, or -1 */
    unsigned                    notify_retention:1;
};

/*
 * One message of a topic as subscribers receive it: the complete SSE
 * event, built once by the consumer thread and shared by every subscriber
 * that sends it.  Owned by the event loop once handed over; "refs" counts
 * who still points at "data".
 */
struct ngx_geostream_event_s {
    ngx_geostream_event_t      *next;
    ngx_geostream_event_type_e  type;
    ngx_uint_t                  refs;
    size_t                      size;         /* the memory it was given */
    ngx_str_t                   topic;
    ngx_geostream_replay_t     *replay;
    int32_t                     partition;
    int64_t                     offset;
    int64_t                     timestamp;    /* Kafka's, ms */

    /* what filters look at */
    ngx_str_t                   name;
    double                      lat;
    double                      lon;

    /* a message: its SSE event; TOPIC_READY: the cursor reading began at */
    ngx_str_t                   data;
};


typedef void (*ngx_geostream_dispatch_pt)(ngx_geostream_event_t *batch);


ngx_int_t ngx_geostream_kafka_init_process(ngx_cycle_t *cycle,
    ngx_geostream_kafka_conf_t *kcf, ngx_geostream_delivered_pt delivered,
    ngx_geostream_dispatch_pt dispatch);
void ngx_geostream_kafka_exit_process(ngx_cycle_t *cycle);


/* asks the consumer thread (started on first use) to follow a topic */
ngx_int_t ngx_geostream_kafka_follow(ngx_str_t *topic);

void ngx_geostream_event_release(ngx_geostream_event_t *ev);

/*
 * Starts a replay (and the worker's replay thread, on first use); "from"
 * and "to" have n partitions each.  NULL when it cannot.
 */
ngx_geostream_replay_t *ngx_geostream_replay_start(ngx_str_t *topic,
    const int64_t *from, const int64_t *to, size_t n, int64_t since,
    ngx_uint_t notify_retention, void *owner);
void ngx_geostream_replay_free(ngx_geostream_replay_t *rp);
void ngx_geostream_replay_stop(ngx_msec_t deadline);

/*
 * Waits for a thread of the worker until "deadline" (ngx_current_msec's
 * clock): NGX_OK once it has ended; NGX_AGAIN if it is still in a call to
 * Kafka that does not return in time, when the exiting worker leaves it.
 */
ngx_int_t ngx_geostream_thread_join(pthread_t thread, ngx_msec_t deadline);

/*
 * A pipe whose read end the event loop watches like a connection (its
 * data is the worker's state); another thread writes a byte to "write_fd"
 * to wake the loop up, and "handler" drains it.
 */
ngx_connection_t *ngx_geostream_pipe_open(ngx_cycle_t *cycle,
    ngx_fd_t *write_fd, ngx_event_handler_pt handler);
void ngx_geostream_pipe_close(ngx_connection_t *c, ngx_fd_t write_fd);
void ngx_geostream_pipe_drain(ngx_connection_t *c);

/* for the worker's threads (ngx_geostream_replay.c): no nginx objects */
ssize_t ngx_geostream_kafka_consume(rd_kafka_queue_t *queue, int timeout,
    rd_kafka_message_t **msgs, size_t size);
void ngx_geostream_kafka_hand_over(ngx_geostream_event_t *batch,
    ngx_geostream_event_t **tail);
ngx_geostream_event_t *ngx_geostream_kafka_event(ngx_geostream_reading_t *rd,
    rd_kafka_message_t *msg);
ngx_geostream_event_t *ngx_geostream_event_alloc(
    ngx_geostream_event_type_e type, ngx_geostream_reading_t *rd,
    const char *name, size_t name_len, size_t data_len);


#endif /* _NGX_GEOSTREAM_KAFKA_H_INCLUDED_ */
