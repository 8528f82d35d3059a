/*
 * The worker's topics: the registry of the topics its streams follow, the
 * history ring of each, the dispatch of the batches of events the reader
 * thread hands over, and the coordination of replays (ring, then Kafka,
 * then live).  A stream follows a topic through a member.
 */

#ifndef _NGX_HTTP_GEOSTREAM_TOPICS_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_TOPICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_geostream_event.h"
#include "ngx_geostream_history.h"
#include "ngx_geostream_reader.h"
#include "ngx_geostream_replay.h"
#include "ngx_http_geostream_stream_args.h"
#include "ngx_http_geostream_subscriber.h"


typedef struct ngx_http_geostream_topics_s  ngx_http_geostream_topics_t;


typedef struct {
    ngx_str_node_t                    sn;            /* by name */
    ngx_queue_t                       queue;         /* all topics */
    ngx_http_geostream_topics_t      *topics;        /* the registry */
    ngx_str_t                         name;
    ngx_queue_t                       subscribers;   /* live */
    ngx_queue_t                       waiting;       /* for "ready" */
    ngx_queue_t                       replaying;     /* from Kafka */
    ngx_uint_t                        nsubscribers;
    ngx_uint_t                        events;        /* dispatched */
    ngx_geostream_event_t            *last;          /* its cursor is now */
    ngx_geostream_history_t           history;
    unsigned                          ready:1;
} ngx_http_geostream_topic_t;


typedef struct ngx_http_geostream_member_s  ngx_http_geostream_member_t;

/* a stream's subscription to one of its topics */
struct ngx_http_geostream_member_s {
    ngx_queue_t                       queue;         /* topic's */
    ngx_http_geostream_sub_t         *sub;
    ngx_http_geostream_topic_t       *topic;
    ngx_http_geostream_start_t        start;
    ngx_geostream_replay_t           *replay;        /* from Kafka */

    /*
     * Streams of several topics: where this topic stands for the stream's
     * ids, the last event sent (a reference) or, before one, the cursor
     * the stream resumed from (start.resumed).
     */
    ngx_geostream_event_t            *position;

    unsigned                          placed:1;      /* position is known */
    unsigned                          joined:1;      /* in a topic's queue */
};


/* a stream that waited for a topic's partitions may go on */
typedef void (*ngx_http_geostream_pending_pt)(ngx_queue_t *q);


/* the worker's topics: in order (for the status page), and by name */
struct ngx_http_geostream_topics_s {
    ngx_queue_t                       queue;
    ngx_rbtree_t                      tree;
    ngx_rbtree_node_t                 sentinel;

    /* streams that wait for their topics' partitions before they start */
    ngx_queue_t                       pending;
    ngx_http_geostream_pending_pt     pending_handler;

    /* who reads the topics, and how much of each a topic's ring holds */
    ngx_geostream_reader_t           *reader;
    ngx_geostream_replayer_t         *replayer;
    ngx_uint_t                        history;       /* events */
    size_t                            history_bytes;
};


typedef struct {
    ngx_str_t                         name;
    ngx_uint_t                        ready;
    ngx_uint_t                        subscribers;
    ngx_uint_t                        events;
    ngx_uint_t                        history;
    ngx_uint_t                        history_bytes;
} ngx_http_geostream_topic_status_t;


/*
 * An empty registry whose topics "reader" reads (and "replayer" replays
 * from Kafka), each keeping its last "history" events of at most
 * "history_bytes" in all
 */
void ngx_http_geostream_topics_init(ngx_http_geostream_topics_t *topics,
    ngx_geostream_reader_t *reader, ngx_geostream_replayer_t *replayer,
    ngx_uint_t history, size_t history_bytes);

/* the topic of that name, followed from now on if it was not; NULL: no */
ngx_http_geostream_topic_t *ngx_http_geostream_topics_get(
    ngx_http_geostream_topics_t *topics, ngx_str_t *name, ngx_log_t *log);

/* the topic's partitions, or -1 before the reader thread reads it */
ngx_int_t ngx_http_geostream_topic_partitions(
    ngx_http_geostream_topic_t *topic);

/* a member of "sub" that follows "topic" from "start" (copied) */
void ngx_http_geostream_member_init(ngx_http_geostream_member_t *m,
    ngx_http_geostream_sub_t *sub, ngx_http_geostream_topic_t *topic,
    ngx_http_geostream_start_t *start);

/* the member takes its topic's events (waits for them until it is read) */
void ngx_http_geostream_member_join(ngx_http_geostream_member_t *m);

/*
 * The member gets what it asked for from before now (history, or Kafka),
 * once its topic is read; it is live after that.
 */
void ngx_http_geostream_member_catch_up(ngx_http_geostream_member_t *m);

/* a stream is over: its members leave their topics (its detach handler) */
void ngx_http_geostream_topics_leave(ngx_http_geostream_sub_t *sub);

/*
 * A stream waits for its topics' partitions: "handler" gets "q" whenever
 * a topic becomes ready, until ngx_http_geostream_topics_unwait(q).
 */
void ngx_http_geostream_topics_wait(ngx_http_geostream_topics_t *topics,
    ngx_queue_t *q, ngx_http_geostream_pending_pt handler);
void ngx_http_geostream_topics_unwait(ngx_queue_t *q);

/* on the event loop, with each batch the reader thread hands over */
void ngx_http_geostream_topics_dispatch(ngx_http_geostream_topics_t *topics,
    ngx_geostream_event_t *batch);

/* as the worker exits: streams whose client has not read all are reset */
void ngx_http_geostream_topics_exit(ngx_http_geostream_topics_t *topics);

/* ...and once its reader thread has stopped, its topics are freed */
void ngx_http_geostream_topics_free(ngx_http_geostream_topics_t *topics);

/* pushes an ngx_http_geostream_topic_status_t per topic onto "out" */
ngx_int_t ngx_http_geostream_topics_status(
    ngx_http_geostream_topics_t *topics, ngx_array_t *out);


#endif /* _NGX_HTTP_GEOSTREAM_TOPICS_H_INCLUDED_ */
