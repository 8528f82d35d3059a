/*
 * The streaming consumer's state, shared by the two files of the consumer
 * location: ngx_http_geostream_consumer.c (requests, topics, matching
 * events to subscribers) and ngx_http_geostream_subscriber.c (a
 * subscriber's output, its connection, its end).
 */

#ifndef _NGX_HTTP_GEOSTREAM_CONSUMER_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_CONSUMER_H_INCLUDED_


#include "ngx_http_geostream_module.h"


/* where a subscriber's stream starts */
typedef enum {
    NGX_HTTP_GEOSTREAM_LATEST = 0,
    NGX_HTTP_GEOSTREAM_CURSOR,
    NGX_HTTP_GEOSTREAM_TIME
} ngx_http_geostream_start_e;


typedef struct ngx_http_geostream_out_s  ngx_http_geostream_out_t;

/* a piece of a subscriber's output: a shared event, or a static text */
struct ngx_http_geostream_out_s {
    ngx_http_geostream_out_t         *next;
    ngx_buf_t                         buf;
    ngx_chain_t                       chain;
    ngx_geostream_event_t            *event;
    size_t                            size;
    unsigned                          replayed:1;
    unsigned                          owned:1;      /* buf.start is ours */
};


typedef struct {
    ngx_str_node_t                    sn;            /* by name */
    ngx_queue_t                       queue;         /* all topics */
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


typedef struct ngx_http_geostream_sub_s  ngx_http_geostream_sub_t;

/* a stream's subscription to one of its topics */
typedef struct {
    ngx_queue_t                       queue;         /* topic's */
    ngx_http_geostream_sub_t         *sub;
    ngx_http_geostream_topic_t       *topic;

    ngx_http_geostream_start_e        start;
    int64_t                          *cursor;
    size_t                            ncursor;
    int64_t                           since;         /* ms */
    ngx_geostream_replay_t           *replay;        /* from Kafka */

    /*
     * Streams of several topics: where this topic stands for the stream's
     * ids, the last event sent (a reference) or, before one, the cursor
     * the stream resumed from.
     */
    ngx_geostream_event_t            *position;
    ngx_str_t                         resumed;

    unsigned                          beginning:1;
    unsigned                          placed:1;      /* position is known */
} ngx_http_geostream_member_t;


struct ngx_http_geostream_sub_s {
    ngx_http_request_t               *request;       /* NULL: left it */
    ngx_connection_t                 *connection;
    ngx_pool_t                       *pool;          /* of what is here */
    ngx_http_geostream_member_t      *members;
    ngx_uint_t                        nmembers;
    ngx_str_t                         topics;        /* as requested */
    ngx_event_t                       heartbeat;
    ngx_msec_t                        heartbeat_interval;
    ngx_event_t                       lifetime;

    /* output in order: sent ones are released from the head */
    ngx_http_geostream_out_t         *out;
    ngx_http_geostream_out_t        **out_tail;
    ngx_http_geostream_out_t         *unsent;        /* not yet passed on */
    ngx_http_geostream_out_t         *free;

    size_t                            backlog;       /* see sub_append() */
    size_t                            backlog_max;
    size_t                            replayed;      /* of which replays */

    ngx_geostream_filter_t            filter;

    /*
     * A stream that left its request (ngx_http_geostream_sub_leave())
     * writes its own chunks: the pieces from "out" up to "unsent" are the
     * chunk in flight, "sending" what of it the socket has yet to take.
     */
    ngx_event_t                       leave;
    ngx_pool_cleanup_t               *cleanup;       /* in the request */
    ngx_chain_t                      *sending;
    ngx_buf_t                         chunk_head;
    ngx_chain_t                       chunk_head_link;
    ngx_buf_t                         chunk_tail;
    ngx_chain_t                       chunk_tail_link;
    u_char                            chunk_size[NGX_OFF_T_LEN + 2];
    ngx_msec_t                        send_timeout;

    ngx_queue_t                       pending;       /* see sub_defer() */

    ngx_http_geostream_sub_t         *next_dirty;
    unsigned                          dirty:1;
    unsigned                          overflow:1;
    unsigned                          detached:1;
    unsigned                          replaying:1;
    unsigned                          may_leave:1;
    unsigned                          chunked:1;
    unsigned                          closing:1;     /* ends once sent */
    unsigned                          ended:1;       /* last chunk queued */
    unsigned                          reset:1;       /* SO_LINGER 0 set */
};


/* queues bytes, a shared event's (a reference is taken) or static ones */
ngx_int_t ngx_http_geostream_sub_append(ngx_http_geostream_sub_t *sub,
    ngx_geostream_event_t *ev, u_char *data, size_t len);

/* writes what is queued; may close (and so free) the subscriber */
void ngx_http_geostream_sub_flush(ngx_http_geostream_sub_t *sub);

/* the handlers that the consumer location installs */
void ngx_http_geostream_sub_write(ngx_http_request_t *r);
void ngx_http_geostream_sub_leave(ngx_event_t *ev);
void ngx_http_geostream_sub_heartbeat(ngx_event_t *ev);
void ngx_http_geostream_sub_expire(ngx_event_t *ev);
void ngx_http_geostream_sub_cleanup(void *data);

/* the connection is reset, not closed, when it goes (a stalled client) */
void ngx_http_geostream_sub_reset(ngx_http_geostream_sub_t *sub);

/* reset when its client has not taken everything, as the worker exits */
void ngx_http_geostream_sub_shutdown(ngx_http_geostream_sub_t *sub);


#endif /* _NGX_HTTP_GEOSTREAM_CONSUMER_H_INCLUDED_ */
