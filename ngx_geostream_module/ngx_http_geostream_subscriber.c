/*
 * The subscriber transport: a stream's output and connection.  Events and
 * texts are queued as references, written once per hand-over (through
 * nginx's output filters while the stream has its request, as its own
 * chunks once it left it), bounded by geostream_backlog; heartbeats, the
 * stream's lifetime, and its end, whoever ends it.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_request.h"
#include "ngx_http_geostream_subscriber.h"

#if (NGX_LINUX)
#include <linux/sockios.h>      /* SIOCOUTQ */
#endif


#define NGX_HTTP_GEOSTREAM_BEAT   ":\n\n"


static ngx_http_geostream_out_t *ngx_http_geostream_out_get(
    ngx_http_geostream_sub_t *sub, ngx_geostream_event_t *ev, u_char *data,
    size_t len, ngx_uint_t replayed);
static void ngx_http_geostream_out_release(ngx_http_geostream_out_t *o);
static ngx_chain_t *ngx_http_geostream_sub_chain(ngx_http_geostream_sub_t *sub,
    ngx_uint_t flush, off_t *size);
static void ngx_http_geostream_sub_sent(ngx_http_geostream_sub_t *sub);
static ngx_uint_t ngx_http_geostream_sub_too_slow(
    ngx_http_geostream_sub_t *sub);
static void ngx_http_geostream_sub_write(ngx_http_request_t *r);
static void ngx_http_geostream_sub_leave(ngx_event_t *ev);
static void ngx_http_geostream_sub_release_request(
    ngx_http_geostream_sub_t *sub);
static void ngx_http_geostream_sub_send(ngx_http_geostream_sub_t *sub);
static ngx_int_t ngx_http_geostream_sub_frame(ngx_http_geostream_sub_t *sub);
static ngx_int_t ngx_http_geostream_sub_frame_end(
    ngx_http_geostream_sub_t *sub);
static void ngx_http_geostream_stream_read(ngx_event_t *rev);
static void ngx_http_geostream_stream_write(ngx_event_t *wev);
static void ngx_http_geostream_sub_heartbeat(ngx_event_t *ev);
static void ngx_http_geostream_sub_expire(ngx_event_t *ev);
static void ngx_http_geostream_sub_close(ngx_http_geostream_sub_t *sub,
    ngx_int_t rc, const char *reason);
static void ngx_http_geostream_sub_detach(ngx_http_geostream_sub_t *sub);
static void ngx_http_geostream_sub_cleanup(void *data);
static void ngx_http_geostream_sub_reset(ngx_http_geostream_sub_t *sub);
static ngx_uint_t ngx_http_geostream_sub_unread(
    ngx_http_geostream_sub_t *sub);


static u_char  ngx_http_geostream_crlf[] = CRLF;
static u_char  ngx_http_geostream_last_chunk[] = "0" CRLF CRLF;


ngx_http_geostream_sub_t *
ngx_http_geostream_sub_create(ngx_http_request_t *r, ngx_pool_t *pool,
    ngx_geostream_stats_t *stats)
{
    ngx_http_geostream_sub_t  *sub;

    sub = ngx_pcalloc(pool, sizeof(ngx_http_geostream_sub_t));
    if (sub == NULL) {
        return NULL;
    }

    sub->pool = pool;
    sub->stats = stats;
    sub->connection = r->connection;
    sub->may_leave = (pool != r->pool);

    return sub;
}


/*
 * Until it starts the stream is in no topic's queues: nothing but its
 * waiting list and this timer (the heartbeat's event, unused before the
 * stream starts) refer to it.
 */
ngx_int_t
ngx_http_geostream_sub_wait(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_msec_t timeout,
    ngx_event_handler_pt handler, ngx_pool_cleanup_pt gone)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = gone;
    cln->data = sub;
    sub->cleanup = cln;
    sub->request = r;

    sub->heartbeat.handler = handler;
    sub->heartbeat.data = sub;
    sub->heartbeat.log = r->connection->log;
    sub->heartbeat.cancelable = 1;
    ngx_add_timer(&sub->heartbeat, timeout);

    /* a client that goes away meanwhile finalizes the request */
    r->read_event_handler = ngx_http_test_reading;
    r->main->count++;

    return NGX_DONE;
}


void
ngx_http_geostream_sub_waited(ngx_http_geostream_sub_t *sub, ngx_uint_t gone)
{
    if (sub->heartbeat.timer_set) {
        ngx_del_timer(&sub->heartbeat);
    }

    if (!gone) {
        sub->cleanup->handler = NULL;
        sub->cleanup = NULL;
    }

    sub->request = NULL;
}


ngx_int_t
ngx_http_geostream_sub_open(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_http_geostream_sub_detach_pt detach)
{
    ngx_pool_cleanup_t              *cln;
    ngx_http_geostream_ctx_t        *ctx;
    ngx_http_geostream_loc_conf_t   *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    sub->request = r;
    sub->out_tail = &sub->out;
    sub->backlog_max = glcf->backlog;
    sub->heartbeat_interval = glcf->heartbeat;
    sub->detach_handler = detach;

    ngx_geostream_stats_add(sub->stats, subscribers, 1);

    cln->handler = ngx_http_geostream_sub_cleanup;
    cln->data = sub;
    sub->cleanup = cln;

    ctx = ngx_http_geostream_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->subscriber = sub;

    sub->heartbeat.handler = ngx_http_geostream_sub_heartbeat;
    sub->heartbeat.data = sub;
    sub->heartbeat.log = r->connection->log;
    sub->heartbeat.cancelable = 1;

    if (sub->heartbeat_interval) {
        ngx_add_timer(&sub->heartbeat, sub->heartbeat_interval);
    }

    sub->lifetime.handler = ngx_http_geostream_sub_expire;
    sub->lifetime.data = sub;
    sub->lifetime.log = r->connection->log;
    sub->lifetime.cancelable = 1;

    if (glcf->lifetime) {
        ngx_add_timer(&sub->lifetime, glcf->lifetime);
    }

    r->main->count++;

    /* notice a client that goes away; write when the socket lets us */
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_geostream_sub_write;

    /*
     * An idle connection is closed at once when the worker shuts down
     * gracefully (reload), so old workers do not wait for streams that
     * never end; clients reconnect to the new workers.
     */
    r->connection->idle = 1;

    sub->leave.handler = ngx_http_geostream_sub_leave;
    sub->leave.data = sub;
    sub->leave.log = r->connection->log;

    return NGX_OK;
}


/*
 * Queues bytes for a subscriber.  Only references to shared events are
 * queued, and at most one hand-over of events at a time before the
 * subscriber is written to: the backlog limit is checked there, on what
 * the socket did not take (ngx_http_geostream_sub_flush()).
 */
ngx_int_t
ngx_http_geostream_sub_append(ngx_http_geostream_sub_t *sub,
    ngx_geostream_event_t *ev, u_char *data, size_t len, ngx_uint_t replayed)
{
    if (sub->overflow || sub->detached) {
        return NGX_ERROR;
    }

    if (len == 0) {
        /* nothing to send; an empty chunk would end the stream */
        return NGX_OK;
    }

    return ngx_http_geostream_out_get(sub, ev, data, len, replayed) ? NGX_OK
                                                                    : NGX_ERROR;
}


ngx_int_t
ngx_http_geostream_sub_append_owned(ngx_http_geostream_sub_t *sub,
    u_char *data, size_t len, ngx_uint_t replayed)
{
    ngx_http_geostream_out_t  *o;

    if (sub->overflow || sub->detached || len == 0) {
        return NGX_ERROR;
    }

    o = ngx_http_geostream_out_get(sub, NULL, data, len, replayed);
    if (o == NULL) {
        return NGX_ERROR;
    }

    /* its memory goes with its piece of output */
    o->owned = 1;

    return NGX_OK;
}


void
ngx_http_geostream_sub_lost(ngx_http_geostream_sub_t *sub)
{
    sub->overflow = 1;
}


/* the subscriber is written to once the whole hand-over is queued */
void
ngx_http_geostream_sub_mark(ngx_http_geostream_sub_t *sub,
    ngx_http_geostream_sub_t **dirty)
{
    if (!sub->dirty) {
        sub->dirty = 1;
        sub->next_dirty = *dirty;
        *dirty = sub;
    }
}


/* one write per subscriber for the whole hand-over: how many were written */
ngx_uint_t
ngx_http_geostream_sub_flush_marked(ngx_http_geostream_sub_t *dirty)
{
    ngx_uint_t                 n;
    ngx_http_geostream_sub_t  *sub, *next;

    n = 0;

    for (sub = dirty; sub; sub = next) {
        next = sub->next_dirty;
        sub->dirty = 0;
        ngx_http_geostream_sub_flush(sub);
        n++;
    }

    return n;
}


/* a piece of output at the queue's tail */
static ngx_http_geostream_out_t *
ngx_http_geostream_out_get(ngx_http_geostream_sub_t *sub,
    ngx_geostream_event_t *ev, u_char *data, size_t len, ngx_uint_t replayed)
{
    ngx_http_geostream_out_t  *o;

    o = sub->free;

    if (o) {
        sub->free = o->next;

    } else {
        o = ngx_palloc(sub->pool, sizeof(ngx_http_geostream_out_t));
        if (o == NULL) {
            return NULL;
        }
    }

    ngx_memzero(&o->buf, sizeof(ngx_buf_t));
    o->buf.pos = data;
    o->buf.last = data + len;
    o->buf.start = data;
    o->buf.end = data + len;
    o->buf.memory = 1;
    o->buf.tag = (ngx_buf_tag_t) &ngx_http_geostream_module;

    o->next = NULL;
    o->event = ev;
    o->owned = 0;

    /*
     * What a queued event costs this subscriber: its share of the
     * backlog is the bytes still to send plus the piece that holds them,
     * so that geostream_backlog bounds the memory a lagging subscriber
     * takes, not only the bytes it owes.
     */
    o->size = len + sizeof(ngx_http_geostream_out_t);

    /* a replay may run ahead of the backlog limit: the ring bounds it */
    o->replayed = replayed ? 1 : 0;

    if (replayed) {
        sub->replayed += o->size;
    }

    if (ev) {
        ev->refs++;
    }

    *sub->out_tail = o;
    sub->out_tail = &o->next;

    if (sub->unsent == NULL) {
        sub->unsent = o;
    }

    sub->backlog += o->size;

    return o;
}


/* what a piece of output holds: an event's reference, or its own bytes */
static void
ngx_http_geostream_out_release(ngx_http_geostream_out_t *o)
{
    if (o->event) {
        ngx_geostream_event_release(o->event);
        o->event = NULL;
    }

    if (o->owned) {
        ngx_free(o->buf.start);
        o->owned = 0;
    }
}


/*
 * Links the pieces not yet passed on into one chain, whose last buffer
 * says "flush" when "flush" is set; "size" (if not NULL) gets their bytes.
 */
static ngx_chain_t *
ngx_http_geostream_sub_chain(ngx_http_geostream_sub_t *sub, ngx_uint_t flush,
    off_t *size)
{
    off_t                      n;
    ngx_chain_t               *first;
    ngx_http_geostream_out_t  *o;

    n = 0;

    for (o = sub->unsent; o; o = o->next) {
        o->chain.buf = &o->buf;
        o->chain.next = o->next ? &o->next->chain : NULL;
        o->buf.flush = (o->next == NULL && flush);
        n += ngx_buf_size(&o->buf);
    }

    first = &sub->unsent->chain;
    sub->unsent = NULL;

    if (size) {
        *size = n;
    }

    return first;
}


/* releases the pieces at the head that the socket has taken */
static void
ngx_http_geostream_sub_sent(ngx_http_geostream_sub_t *sub)
{
    ngx_http_geostream_out_t  *o;

    while (sub->out && sub->out != sub->unsent
           && ngx_buf_size(&sub->out->buf) == 0)
    {
        o = sub->out;
        sub->out = o->next;
        sub->backlog -= o->size;

        if (o->replayed) {
            sub->replayed -= o->size;
        }

        ngx_http_geostream_out_release(o);

        o->next = sub->free;
        sub->free = o;
    }

    if (sub->out == NULL) {
        sub->out_tail = &sub->out;
    }
}


/*
 * A live subscriber that cannot keep up goes (it resumes by cursor): 1
 * when it was closed, and so freed.
 */
static ngx_uint_t
ngx_http_geostream_sub_too_slow(ngx_http_geostream_sub_t *sub)
{
    if (sub->backlog - sub->replayed <= sub->backlog_max) {
        return 0;
    }

    ngx_log_error(NGX_LOG_WARN, sub->connection->log, 0,
                  "geostream: subscriber of \"%V\" fell %uz bytes "
                  "behind (geostream_backlog), closing its stream",
                  &sub->topics, sub->backlog);
    ngx_geostream_stats_add(sub->stats, closed_too_slow, 1);
    ngx_http_geostream_sub_reset(sub);
    ngx_http_geostream_sub_close(sub, NGX_ERROR, "too slow");

    return 1;
}


/*
 * Passes everything new to the output filters in one chain, then releases
 * what the socket has taken.  May finalize (and so free) the subscriber.
 */
void
ngx_http_geostream_sub_flush(ngx_http_geostream_sub_t *sub)
{
    ngx_int_t                  rc;
    ngx_chain_t               *in;
    ngx_event_t               *wev;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;

    if (sub->request == NULL) {
        ngx_http_geostream_sub_send(sub);
        return;
    }

    r = sub->request;
    c = r->connection;

    if (sub->overflow) {
        ngx_http_geostream_sub_close(sub, NGX_ERROR, "lost events");
        return;
    }

    in = NULL;

    if (sub->unsent) {
        in = ngx_http_geostream_sub_chain(sub, 1, NULL);
    }

    rc = ngx_http_output_filter(r, in);

    if (rc == NGX_ERROR) {
        ngx_http_geostream_sub_close(sub, NGX_ERROR, "write failed");
        return;
    }

    /* the write filter moves "pos" to "last" of what the socket took */
    ngx_http_geostream_sub_sent(sub);

    if (ngx_http_geostream_sub_too_slow(sub)) {
        return;
    }

    wev = c->write;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (c->buffered) {
        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_geostream_sub_close(sub, NGX_ERROR, "write failed");
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    /* all written: the stream can leave its request (after this turn) */
    if (sub->may_leave && r->out == NULL && !sub->detached) {
        ngx_post_event(&sub->leave, &ngx_posted_events);
    }
}


static void
ngx_http_geostream_sub_write(ngx_http_request_t *r)
{
    ngx_event_t                *wev;
    ngx_http_geostream_ctx_t   *ctx;
    ngx_http_geostream_sub_t   *sub;

    wev = r->connection->write;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                      "geostream: client timed out");
        r->connection->timedout = 1;

        ctx = ngx_http_get_module_ctx(r, ngx_http_geostream_module);

        if (ctx && ctx->subscriber) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "geostream subscriber of \"%V\" closes: "
                           "client timed out",
                           &((ngx_http_geostream_sub_t *) ctx->subscriber)
                           ->topics);
            ngx_http_geostream_sub_reset(ctx->subscriber);
        }

        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_geostream_module);

    if (ctx == NULL || ctx->subscriber == NULL) {
        return;
    }

    sub = ctx->subscriber;

    ngx_http_geostream_sub_flush(sub);
}


/*
 * Once an HTTP/1.x stream's header and first bytes are written, the
 * stream leaves its request: nginx's request (its pool, its header
 * buffer: most of a subscriber's memory) is freed and logged as it is for
 * a keepalive connection, and the stream goes on with the connection
 * alone, writing its own chunks (ngx_http_geostream_sub_send()).  A posted
 * event, so that nginx is done with the request when it happens.
 */
static void
ngx_http_geostream_sub_leave(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_geostream_sub_t   *sub;

    sub = ev->data;
    r = sub->request;

    if (r == NULL || sub->detached || !sub->may_leave) {
        return;
    }

    /*
     * An encoded stream (gzip) needs its filter for every byte, and
     * limit_conn counts a stream until its request goes: those stay.
     */
    if ((r->headers_out.content_encoding
         && r->headers_out.content_encoding->value.len)
        || r->main->limit_conn_status)
    {
        sub->may_leave = 0;
        return;
    }

    c = r->connection;

    if (c->buffered || r->out || r->main->count != 1 || r->blocked
        || r->postponed || r->posted_requests)
    {
        /* sub_flush() asks again once the socket took everything */
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    sub->send_timeout = clcf->send_timeout;
    sub->chunked = r->chunked;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "geostream subscriber of \"%V\" leaves its request%s",
                   &sub->topics, sub->chunked ? ", chunked" : "");

    ngx_http_geostream_sub_release_request(sub);

    c->data = sub;
    c->read->handler = ngx_http_geostream_stream_read;
    c->write->handler = ngx_http_geostream_stream_write;

    sub->chunk_head.memory = 1;
    sub->chunk_head_link.buf = &sub->chunk_head;
    sub->chunk_tail.memory = 1;
    sub->chunk_tail_link.buf = &sub->chunk_tail;

    /* what came meanwhile, and the client's close if it came already */
    ngx_http_geostream_sub_send(sub);
}


/*
 * The request goes (its pool, logged as for a keepalive connection), and
 * the connection frees the request's header buffers as a keepalive
 * connection does; the stream is in neither.
 */
static void
ngx_http_geostream_sub_release_request(ngx_http_geostream_sub_t *sub)
{
    ngx_chain_t                *cl;
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_connection_t      *hc;

    r = sub->request;
    c = r->connection;
    hc = r->http_connection;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    sub->cleanup->handler = NULL;
    sub->cleanup = NULL;
    sub->request = NULL;

    ngx_http_free_request(r, 0);

    c->destroyed = 0;
    c->log->action = "streaming events";

    if (c->buffer && c->buffer->start
        && ngx_pfree(c->pool, c->buffer->start) == NGX_OK)
    {
        c->buffer->start = NULL;
        c->buffer->pos = NULL;
        c->buffer->last = NULL;
    }

    for (cl = hc->busy; cl; cl = cl->next) {
        (void) ngx_pfree(c->pool, cl->buf->start);
    }

    hc->busy = NULL;
    hc->nbusy = 0;

    for (cl = hc->free; cl; cl = cl->next) {
        (void) ngx_pfree(c->pool, cl->buf->start);
    }

    hc->free = NULL;
}


/*
 * A stream that left its request writes every hand-over as one HTTP/1.1
 * chunk (or as it is, for HTTP/1.0, whose stream ends with the
 * connection).  A chunk is framed only when the previous one is written.
 * May close (and so free) the stream.
 */
static void
ngx_http_geostream_sub_send(ngx_http_geostream_sub_t *sub)
{
    ngx_int_t          rc;
    ngx_chain_t       *cl;
    ngx_connection_t  *c;

    c = sub->connection;

    if (sub->overflow) {
        ngx_http_geostream_sub_close(sub, NGX_ERROR, "lost events");
        return;
    }

    for ( ;; ) {

        if (sub->sending == NULL) {
            rc = ngx_http_geostream_sub_frame(sub);

            if (rc == NGX_DONE) {
                return;
            }

            if (rc == NGX_AGAIN) {
                break;
            }
        }

        cl = c->send_chain(c, sub->sending, 0);

        if (cl == NGX_CHAIN_ERROR) {
            c->error = 1;
            ngx_http_geostream_sub_close(sub, NGX_ERROR, "write failed");
            return;
        }

        ngx_http_geostream_sub_sent(sub);

        sub->sending = cl;

        if (cl != NULL) {
            break;
        }
    }

    if (ngx_http_geostream_sub_too_slow(sub)) {
        return;
    }

    if (sub->sending || c->buffered) {
        if (!c->write->timer_set) {
            ngx_add_timer(c->write, sub->send_timeout);
        }

        if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
            ngx_http_geostream_sub_close(sub, NGX_ERROR, "write failed");
        }

        return;
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }
}


/*
 * Frames what the stream sends next into "sending": NGX_OK when there is
 * something, NGX_AGAIN when there is nothing to send now, NGX_DONE when
 * the stream was closed (and so freed).
 */
static ngx_int_t
ngx_http_geostream_sub_frame(ngx_http_geostream_sub_t *sub)
{
    off_t         size;
    ngx_chain_t  *cl, *first;

    if (sub->unsent == NULL) {
        return ngx_http_geostream_sub_frame_end(sub);
    }

    /*
     * The chunk's last buffer says "flush": TLS otherwise keeps small
     * writes in its buffer until it fills.
     */
    first = ngx_http_geostream_sub_chain(sub, !sub->chunked, &size);

    if (sub->chunked) {
        sub->chunk_head.pos = sub->chunk_size;
        sub->chunk_head.last = ngx_sprintf(sub->chunk_size, "%xO" CRLF, size);
        sub->chunk_head.flush = 0;
        sub->chunk_head_link.next = first;

        sub->chunk_tail.pos = ngx_http_geostream_crlf;
        sub->chunk_tail.last = ngx_http_geostream_crlf
                               + sizeof(ngx_http_geostream_crlf) - 1;
        sub->chunk_tail.flush = 1;
        sub->chunk_tail_link.next = NULL;

        for (cl = first; cl->next; cl = cl->next) { /* void */ }
        cl->next = &sub->chunk_tail_link;

        first = &sub->chunk_head_link;
    }

    sub->sending = first;

    return NGX_OK;
}


/*
 * Nothing new to send: what TLS kept is flushed, and a stream that is
 * closing ends once all is written, with the last chunk if chunked.
 */
static ngx_int_t
ngx_http_geostream_sub_frame_end(ngx_http_geostream_sub_t *sub)
{
    ngx_connection_t  *c;

    c = sub->connection;

    if (c->buffered) {
        if (c->send_chain(c, NULL, 0) == NGX_CHAIN_ERROR) {
            c->error = 1;
            ngx_http_geostream_sub_close(sub, NGX_ERROR, "write failed");
            return NGX_DONE;
        }

        if (c->buffered) {
            return NGX_AGAIN;
        }
    }

    if (!sub->closing || sub->out) {
        return NGX_AGAIN;
    }

    if (!sub->chunked || sub->ended) {
        /* the last chunk is written: the stream is over */
        ngx_http_geostream_sub_close(sub, NGX_OK, "its end is written");
        return NGX_DONE;
    }

    sub->ended = 1;
    sub->chunk_head.pos = ngx_http_geostream_last_chunk;
    sub->chunk_head.last = ngx_http_geostream_last_chunk
                           + sizeof(ngx_http_geostream_last_chunk) - 1;
    sub->chunk_head.flush = 1;
    sub->chunk_head_link.next = NULL;
    sub->sending = &sub->chunk_head_link;

    return NGX_OK;
}


/* a stream that left its request: the client goes, or the worker does */
static void
ngx_http_geostream_stream_read(ngx_event_t *rev)
{
    u_char                     buf;
    ssize_t                    n;
    ngx_err_t                  err;
    ngx_connection_t          *c;
    ngx_http_geostream_sub_t  *sub;

    c = rev->data;
    sub = c->data;

    if (c->close) {
        /* a worker that shuts down closes its idle connections */
        ngx_http_geostream_sub_shutdown(sub);
        ngx_http_geostream_sub_close(sub, NGX_OK, "worker shuts down");
        return;
    }

    n = recv(c->fd, &buf, 1, MSG_PEEK);
    err = ngx_socket_errno;

    if (n == 0 || (n == -1 && err != NGX_EAGAIN)) {
        rev->eof = 1;
        c->error = 1;

        if (n == -1) {
            ngx_log_error(NGX_LOG_INFO, c->log, err,
                          "geostream: client closed the stream");
        }

        ngx_http_geostream_sub_close(sub, NGX_ERROR, "client gone");
        return;
    }

    /* a client that sends anything more is not listened to */
    if (n > 0 && (ngx_event_flags & NGX_USE_LEVEL_EVENT) && rev->active) {
        if (ngx_del_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
            ngx_http_geostream_sub_close(sub, NGX_ERROR, "event failed");
        }

        return;
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_geostream_sub_close(sub, NGX_ERROR, "event failed");
    }
}


static void
ngx_http_geostream_stream_write(ngx_event_t *wev)
{
    ngx_connection_t          *c;
    ngx_http_geostream_sub_t  *sub;

    c = wev->data;
    sub = c->data;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "geostream: client timed out");
        c->timedout = 1;
        ngx_http_geostream_sub_reset(sub);
        ngx_http_geostream_sub_close(sub, NGX_ERROR, "client timed out");
        return;
    }

    ngx_http_geostream_sub_send(sub);
}


static void
ngx_http_geostream_sub_heartbeat(ngx_event_t *ev)
{
    ngx_http_geostream_sub_t  *sub;

    sub = ev->data;

    /* a stalled client gets no comment to queue: the backlog rules */
    if (sub->out == NULL) {
        if (ngx_http_geostream_sub_append(sub, NULL,
                                          (u_char *) NGX_HTTP_GEOSTREAM_BEAT,
                                          sizeof(NGX_HTTP_GEOSTREAM_BEAT) - 1,
                                          0)
            == NGX_OK)
        {
            ngx_add_timer(ev, sub->heartbeat_interval);
            ngx_http_geostream_sub_flush(sub);
            return;
        }
    }

    ngx_add_timer(ev, sub->heartbeat_interval);
}


/*
 * geostream_sse_lifetime is over: the stream ends cleanly, and the client
 * reconnects with its cursor (to this nginx or, behind a balancer, another).
 */
static void
ngx_http_geostream_sub_expire(ngx_event_t *ev)
{
    ngx_http_request_t        *r;
    ngx_http_geostream_sub_t  *sub;

    sub = ev->data;
    r = sub->request;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "geostream subscriber of \"%V\" closes: lifetime is over",
                   &sub->topics);

    ngx_http_geostream_sub_detach(sub);
    sub->connection->idle = 0;

    if (r == NULL) {
        /* what is queued is written, then the last chunk */
        sub->closing = 1;
        ngx_http_geostream_sub_send(sub);
        return;
    }

    ngx_http_geostream_sub_close(sub, ngx_http_send_special(r, NGX_HTTP_LAST),
                                 "lifetime");
}


/*
 * Ends a subscriber's request from outside its connection's handlers
 * (a hand-over of events, a timer): nginx defers the end of a request that
 * has a write handler to its posted requests, which run here, at once.
 * The subscriber is freed.
 */
static void
ngx_http_geostream_sub_close(ngx_http_geostream_sub_t *sub, ngx_int_t rc,
    const char *reason)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = sub->request;
    c = sub->connection;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "geostream subscriber of \"%V\" closes: %s, "
                   "%uz bytes unsent", &sub->topics, reason, sub->backlog);

    ngx_http_geostream_sub_detach(sub);

    if (r == NULL) {
        /* a stream without its request: the connection and all go */
        ngx_http_geostream_sub_cleanup(sub);

        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        ngx_http_close_connection(c);
        return;
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* no more events for this subscriber; what was queued may still be sent */
static void
ngx_http_geostream_sub_detach(ngx_http_geostream_sub_t *sub)
{
    if (sub->detached) {
        return;
    }

    sub->detached = 1;

    if (sub->leave.posted) {
        ngx_delete_posted_event(&sub->leave);
    }

    if (sub->heartbeat.timer_set) {
        ngx_del_timer(&sub->heartbeat);
    }

    if (sub->lifetime.timer_set) {
        ngx_del_timer(&sub->lifetime);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sub->connection->log, 0,
                   "geostream subscriber of \"%V\" detached", &sub->topics);

    if (sub->detach_handler) {
        sub->detach_handler(sub);
    }

    ngx_geostream_stats_add(sub->stats, subscribers, -1);
}


/* the stream's request goes: nginx finalized it (its client went) */
static void
ngx_http_geostream_sub_cleanup(void *data)
{
    ngx_http_geostream_sub_t  *sub = data;

    ngx_http_geostream_out_t  *o;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sub->connection->log, 0,
                   "geostream subscriber of \"%V\" closes: %s", &sub->topics,
                   sub->request == NULL ? "connection closed"
                   : sub->connection->close ? "worker shuts down"
                                            : "request finalized");

    /*
     * A stream that keeps its request, closed by a worker that shuts
     * down (ngx_close_idle_connections() marks it "close"): the request's
     * pool goes before its connection, so the socket is still there.
     */
    if (sub->request && sub->connection->close) {
        ngx_http_geostream_sub_shutdown(sub);
    }

    ngx_http_geostream_sub_detach(sub);

    for (o = sub->out; o; o = o->next) {
        ngx_http_geostream_out_release(o);
    }

    sub->out = NULL;
}


/*
 * A stream closed while its client has not read everything leaves the
 * kernel what the socket's send buffer holds (it grows to tcp_wmem's
 * maximum, 4 MB by default), kept in FIN-WAIT-1 for as long as the client
 * keeps its end open and does not read: clients could pin the machine's
 * memory for the price of opening connections.  A reset (SO_LINGER 0, as
 * reset_timedout_connection does) frees it when the socket is closed; the
 * client resumes by cursor all the same.  An HTTP/2 stream shares its
 * connection with others: HTTP/2 resets the stream alone.
 */
static void
ngx_http_geostream_sub_reset(ngx_http_geostream_sub_t *sub)
{
    struct linger      linger;
    ngx_connection_t  *c;

    c = sub->connection;

    if (sub->request && sub->request->http_version >= NGX_HTTP_VERSION_20) {
        return;
    }

    if (c->fd == (ngx_socket_t) -1 || sub->reset) {
        return;
    }

    sub->reset = 1;

    linger.l_onoff = 1;
    linger.l_linger = 0;

    if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, (const void *) &linger,
                   sizeof(struct linger))
        == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, c->log, ngx_socket_errno,
                      "geostream: setsockopt(SO_LINGER) failed");
        return;
    }

    /* nor does TLS try to write its close_notify to the stalled socket */
    c->error = 1;
}


/*
 * The worker closes the stream as it shuts down (a reload, a stop): the
 * client reconnects to the new workers.
 */
void
ngx_http_geostream_sub_shutdown(ngx_http_geostream_sub_t *sub)
{
    if (ngx_http_geostream_sub_unread(sub)) {
        ngx_http_geostream_sub_reset(sub);
    }
}


/*
 * Whether the client has yet to take some of the stream: queued in nginx,
 * or in the kernel (sent but unacknowledged counts too).  A stream that a
 * reload closes is reset only then: a client that is up to date sees its
 * stream end cleanly.
 */
static ngx_uint_t
ngx_http_geostream_sub_unread(ngx_http_geostream_sub_t *sub)
{
    ngx_connection_t  *c;
#if (NGX_LINUX) && defined(SIOCOUTQ)
    int                n;
#endif

    c = sub->connection;

    if (sub->out || c->buffered
        || (sub->request && sub->request->out))
    {
        return 1;
    }

#if (NGX_LINUX) && defined(SIOCOUTQ)

    if (ioctl(c->fd, SIOCOUTQ, &n) == -1) {
        ngx_log_error(NGX_LOG_INFO, c->log, ngx_socket_errno,
                      "geostream: ioctl(SIOCOUTQ) failed");
        return 1;
    }

    return n > 0;

#else

    /* what the kernel holds is not known here: as if it held something */
    return 1;

#endif
}
