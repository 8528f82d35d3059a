/*
 * The subscriber transport: one stream's output and connection.  Events
 * and texts are queued as references and written once per hand-over,
 * through nginx's output filters while the stream has its request, as its
 * own chunks once it left it; bounded by geostream_backlog; heartbeats,
 * the stream's lifetime, and its end, whoever ends it.  It knows nothing
 * of topics: what a stream follows is told of its end by the handler
 * given to ngx_http_geostream_sub_open().
 */

#ifndef _NGX_HTTP_GEOSTREAM_SUBSCRIBER_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_SUBSCRIBER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_geostream_event.h"
#include "ngx_geostream_filter.h"
#include "ngx_geostream_stats.h"


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


typedef struct ngx_http_geostream_sub_s  ngx_http_geostream_sub_t;

/* the stream is over: no more events for it (ngx_http_geostream_topics.c) */
typedef void (*ngx_http_geostream_sub_detach_pt)(ngx_http_geostream_sub_t *sub);


struct ngx_http_geostream_sub_s {
    ngx_http_request_t               *request;       /* NULL: left it */
    ngx_connection_t                 *connection;
    ngx_pool_t                       *pool;          /* of what is here */
    ngx_geostream_stats_t            *stats;         /* the worker's */

    /*
     * What the stream follows and keeps, set by the consumer location
     * before the stream starts and read by the topics' dispatch; the
     * transport itself looks only at "topics", for its log lines.
     */
    struct ngx_http_geostream_member_s  *members;
    ngx_uint_t                        nmembers;
    ngx_str_t                         topics;        /* as requested */
    ngx_geostream_filter_t            filter;

    ngx_http_geostream_sub_detach_pt  detach_handler;

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

    /* a stream that waits before it starts (ngx_http_geostream_sub_wait) */
    ngx_queue_t                       pending;

    ngx_http_geostream_sub_t         *next_dirty;
    unsigned                          dirty:1;
    unsigned                          overflow:1;
    unsigned                          detached:1;
    unsigned                          may_leave:1;
    unsigned                          chunked:1;
    unsigned                          closing:1;     /* ends once sent */
    unsigned                          ended:1;       /* last chunk queued */
    unsigned                          reset:1;       /* SO_LINGER 0 set */
};


/*
 * A stream before its header: its memory comes from "pool" (the request's,
 * or the connection's for a stream that may leave its request).
 */
ngx_http_geostream_sub_t *ngx_http_geostream_sub_create(
    ngx_http_request_t *r, ngx_pool_t *pool, ngx_geostream_stats_t *stats);

/*
 * Before its header, the stream waits (at most "timeout", then "handler"
 * runs); "gone" runs if its request goes meanwhile.  Returns NGX_DONE, or
 * a status to answer.
 */
ngx_int_t ngx_http_geostream_sub_wait(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_msec_t timeout,
    ngx_event_handler_pt handler, ngx_pool_cleanup_pt gone);

/* the wait is over: "gone" when its request went */
void ngx_http_geostream_sub_waited(ngx_http_geostream_sub_t *sub,
    ngx_uint_t gone);

/*
 * Once its header is sent, the stream takes over the request: its end
 * calls "detach" (once), its timers run, and the connection is watched.
 * NGX_OK, or NGX_ERROR.
 */
ngx_int_t ngx_http_geostream_sub_open(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_http_geostream_sub_detach_pt detach);

/*
 * Queues bytes, a shared event's (a reference is taken) or static ones;
 * "replayed" ones (from before the stream started) are not held against
 * geostream_backlog.
 */
ngx_int_t ngx_http_geostream_sub_append(ngx_http_geostream_sub_t *sub,
    ngx_geostream_event_t *ev, u_char *data, size_t len, ngx_uint_t replayed);

/* queues bytes from ngx_alloc() that the subscriber frees once sent */
ngx_int_t ngx_http_geostream_sub_append_owned(ngx_http_geostream_sub_t *sub,
    u_char *data, size_t len, ngx_uint_t replayed);

/* the stream missed output it cannot do without: it ends at its next write */
void ngx_http_geostream_sub_lost(ngx_http_geostream_sub_t *sub);

/* writes what is queued; may close (and so free) the subscriber */
void ngx_http_geostream_sub_flush(ngx_http_geostream_sub_t *sub);

/*
 * A hand-over of events writes each subscriber it reached once: "mark"
 * lists it (once) in "*dirty", "flush_marked" writes the list.
 */
void ngx_http_geostream_sub_mark(ngx_http_geostream_sub_t *sub,
    ngx_http_geostream_sub_t **dirty);
ngx_uint_t ngx_http_geostream_sub_flush_marked(ngx_http_geostream_sub_t *dirty);

/* reset when its client has not taken everything, as the worker exits */
void ngx_http_geostream_sub_shutdown(ngx_http_geostream_sub_t *sub);


#endif /* _NGX_HTTP_GEOSTREAM_SUBSCRIBER_H_INCLUDED_ */
