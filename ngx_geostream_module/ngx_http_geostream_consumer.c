/*
 * The streaming consumer location: GET /consumer/{topic} holds a
 * Server-Sent-Events connection.  The handler reads what the stream asks
 * for (ngx_http_geostream_stream_args.c), follows its topics
 * (ngx_http_geostream_topics.c), and starts the subscriber: its header,
 * its transport (ngx_http_geostream_subscriber.c), then what it asked for
 * from before now, then live events.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_answer.h"
#include "ngx_http_geostream_consumer.h"
#include "ngx_http_geostream_request.h"
#include "ngx_http_geostream_stream_args.h"
#include "ngx_http_geostream_subscriber.h"
#include "ngx_http_geostream_topics.h"
#include "ngx_http_geostream_worker.h"


#define NGX_HTTP_GEOSTREAM_RETRY  "retry: 2000\n\n"

/*
 * How long a stream with a cursor waits, before its header, for its topics'
 * partitions to be known (so that a cursor naming one the topic does not
 * have is refused); after that it starts without the check, as it would
 * wait for the topic anyway.
 */
#define NGX_HTTP_GEOSTREAM_CHECK_WAIT  5000


static ngx_int_t ngx_http_geostream_sub_prepare(ngx_http_request_t *r,
    ngx_http_geostream_sub_t **subp);
static ngx_int_t ngx_http_geostream_sub_members(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_http_geostream_stream_args_t *args);
static ngx_int_t ngx_http_geostream_sub_check(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_uint_t wait);
static ngx_int_t ngx_http_geostream_sub_defer(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub);
static void ngx_http_geostream_sub_undefer(void *data);
static void ngx_http_geostream_sub_check_wait(ngx_event_t *ev);
static void ngx_http_geostream_sub_pending_ready(ngx_queue_t *q);
static void ngx_http_geostream_sub_checked(ngx_http_geostream_sub_t *sub,
    ngx_uint_t wait);
static ngx_int_t ngx_http_geostream_sub_start(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub);
static ngx_int_t ngx_http_geostream_sub_header(ngx_http_request_t *r);
#if (NGX_DEBUG)
static void ngx_http_geostream_sub_log_start(ngx_http_geostream_sub_t *sub);
#endif


/*
 * A request that is refused is answered here, once; a stream whose cursor
 * waits for its topics' partitions is deferred; any other starts.
 */
ngx_int_t
ngx_http_geostream_consumer_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_geostream_sub_t  *sub;

    rc = ngx_http_geostream_sub_prepare(r, &sub);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream consumer \"%V\": %i",
                   sub ? &sub->topics : &r->uri, rc);

    if (rc == NGX_AGAIN) {
        return ngx_http_geostream_sub_defer(r, sub);
    }

    if (rc != NGX_OK) {
        return ngx_http_geostream_answer_error(r, rc);
    }

    return ngx_http_geostream_sub_start(r, sub);
}


/*
 * The request's checks, in order, before anything is streamed or any
 * topic followed: its method, its arguments, its topics, the cursors
 * against their partitions.  NGX_OK, NGX_AGAIN (the partitions are not
 * known yet), or what the handler answers: a recorded status, or another
 * for nginx.
 */
static ngx_int_t
ngx_http_geostream_sub_prepare(ngx_http_request_t *r,
    ngx_http_geostream_sub_t **subp)
{
    ngx_int_t                          rc;
    ngx_pool_t                        *pool;
    ngx_http_geostream_sub_t          *sub;
    ngx_http_geostream_loc_conf_t     *glcf;
    ngx_http_geostream_stream_args_t   args;

    *subp = NULL;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_geostream_add_header(r, "Allow", "GET, HEAD")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_geostream_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "use GET to subscribe");
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);

    /*
     * An HTTP/1.x stream leaves its request once the header is out, so
     * what it keeps is in the connection's pool; an HTTP/2 (or later)
     * stream shares its connection and keeps its request.  (NGX_HTTP_V2
     * is not defined in a --with-compat build of a module: the version
     * tells.)
     */
    pool = r->pool;

    if (glcf->detach && r == r->main
        && r->http_version < NGX_HTTP_VERSION_20)
    {
        pool = r->connection->pool;
    }

    sub = ngx_http_geostream_sub_create(r, pool,
                                        ngx_http_geostream_worker.stats);
    if (sub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_geostream_stream_args(r, pool, &args);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_geostream_sub_members(r, sub, &args);
    if (rc != NGX_OK) {
        return rc;
    }

    *subp = sub;

    /* a cursor names only partitions its topic has: known once it is read */
    return ngx_http_geostream_sub_check(r, sub, 1);
}


/* the stream follows its topics, from the starts it asked for */
static ngx_int_t
ngx_http_geostream_sub_members(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_http_geostream_stream_args_t *args)
{
    ngx_uint_t                    i;
    ngx_http_geostream_topic_t   *topic;
    ngx_http_geostream_topics_t  *topics;

    sub->members = ngx_pcalloc(sub->pool,
                         args->ntopics * sizeof(ngx_http_geostream_member_t));
    if (sub->members == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sub->nmembers = args->ntopics;
    sub->topics = args->topics;
    sub->filter = args->filter;

    topics = &ngx_http_geostream_worker.topics;

    for (i = 0; i < args->ntopics; i++) {
        topic = ngx_http_geostream_topics_get(topics, &args->names[i],
                                              r->connection->log);
        if (topic == NULL) {
            return ngx_http_geostream_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "kafka_unavailable",
                                   "the kafka consumer is not running");
        }

        ngx_http_geostream_member_init(&sub->members[i], sub, topic,
                                       &args->starts[i]);
    }

    return NGX_OK;
}


/*
 * NGX_OK when every cursor of the stream names only partitions its topic
 * has (or the status of the error recorded); NGX_AGAIN, with "wait",
 * while a topic with a cursor is not read yet, so that its partitions are
 * not known; without "wait" such a topic is not checked.
 */
static ngx_int_t
ngx_http_geostream_sub_check(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_uint_t wait)
{
    ngx_int_t                     rc;
    ngx_uint_t                    i;
    ngx_http_geostream_member_t  *m;

    for (i = 0; i < sub->nmembers; i++) {
        m = &sub->members[i];

        rc = ngx_http_geostream_start_check(r, &m->start, &m->topic->name,
                              ngx_http_geostream_topic_partitions(m->topic));

        if (rc == NGX_AGAIN) {
            if (wait) {
                return NGX_AGAIN;
            }

            continue;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * The stream waits, without its header, until its topics' partitions are
 * known (ngx_http_geostream_sub_pending_ready()), at most
 * NGX_HTTP_GEOSTREAM_CHECK_WAIT.
 */
static ngx_int_t
ngx_http_geostream_sub_defer(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub)
{
    ngx_int_t  rc;

    rc = ngx_http_geostream_sub_wait(r, sub, NGX_HTTP_GEOSTREAM_CHECK_WAIT,
                                     ngx_http_geostream_sub_check_wait,
                                     ngx_http_geostream_sub_undefer);
    if (rc != NGX_DONE) {
        return rc;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream subscriber of \"%V\" waits for its topics' "
                   "partitions", &sub->topics);

    ngx_http_geostream_topics_wait(&ngx_http_geostream_worker.topics,
                                   &sub->pending,
                                   ngx_http_geostream_sub_pending_ready);

    return NGX_DONE;
}


/* the request of a waiting stream is gone */
static void
ngx_http_geostream_sub_undefer(void *data)
{
    ngx_http_geostream_sub_t  *sub = data;

    ngx_http_geostream_topics_unwait(&sub->pending);
    ngx_http_geostream_sub_waited(sub, 1);
}


static void
ngx_http_geostream_sub_check_wait(ngx_event_t *ev)
{
    ngx_http_geostream_sub_t  *sub = ev->data;

    ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                  "geostream: the partitions of \"%V\" are not known "
                  "after %d ms; the stream starts without checking its "
                  "cursor", &sub->topics, NGX_HTTP_GEOSTREAM_CHECK_WAIT);

    ngx_http_geostream_sub_checked(sub, 0);
}


/* a topic is read now: a stream that waited for it may go on */
static void
ngx_http_geostream_sub_pending_ready(ngx_queue_t *q)
{
    ngx_http_geostream_sub_t  *sub;

    sub = ngx_queue_data(q, ngx_http_geostream_sub_t, pending);

    ngx_http_geostream_sub_checked(sub, 1);
}


/* a waiting stream's topics are read (or the wait is over): on it goes */
static void
ngx_http_geostream_sub_checked(ngx_http_geostream_sub_t *sub,
    ngx_uint_t wait)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = sub->request;
    c = r->connection;

    rc = ngx_http_geostream_sub_check(r, sub, wait);

    if (rc == NGX_AGAIN) {
        return;
    }

    ngx_http_geostream_topics_unwait(&sub->pending);
    ngx_http_geostream_sub_waited(sub, 0);

    rc = (rc == NGX_OK) ? ngx_http_geostream_sub_start(r, sub)
                        : ngx_http_geostream_answer_error(r, rc);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* the stream's header, then what it asked for from before now, then live */
static ngx_int_t
ngx_http_geostream_sub_start(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub)
{
    ngx_int_t   rc;
    ngx_uint_t  i;

    rc = ngx_http_geostream_sub_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (ngx_http_geostream_sub_open(r, sub, ngx_http_geostream_topics_leave)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < sub->nmembers; i++) {
        ngx_http_geostream_member_join(&sub->members[i]);
    }

#if (NGX_DEBUG)
    ngx_http_geostream_sub_log_start(sub);
#endif

    if (ngx_http_geostream_sub_append(sub, NULL,
                                   (u_char *) NGX_HTTP_GEOSTREAM_RETRY,
                                   sizeof(NGX_HTTP_GEOSTREAM_RETRY) - 1, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < sub->nmembers; i++) {
        ngx_http_geostream_member_catch_up(&sub->members[i]);
    }

    ngx_http_geostream_sub_flush(sub);

    return NGX_DONE;
}


/* sends the stream's header: what ngx_http_send_header() returns */
static ngx_int_t
ngx_http_geostream_sub_header(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_core_loc_conf_t  *clcf;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = -1;

    ngx_str_set(&r->headers_out.content_type, "text/event-stream");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    /* events are live: no cache and no proxy may hold them back */
    if (ngx_http_geostream_add_header(r, "Cache-Control", "no-cache")
        != NGX_OK
        || ngx_http_geostream_add_header(r, "X-Accel-Buffering", "no")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    /*
     * An event is a small write, which Nagle's algorithm would hold until
     * the client acknowledges the previous one (and a client may delay
     * that ACK by up to 40 ms).  nginx itself sets TCP_NODELAY only once a
     * connection goes keepalive, that is, never for a stream; HTTP/2 sets
     * it on its own connection.
     */
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->tcp_nodelay
        && r->http_version < NGX_HTTP_VERSION_20
        && ngx_tcp_nodelay(r->connection) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return rc;
}


#if (NGX_DEBUG)

/* where each topic of a new stream starts, and what it keeps */
static void
ngx_http_geostream_sub_log_start(ngx_http_geostream_sub_t *sub)
{
    ngx_uint_t                    i;
    ngx_log_t                    *log;
    ngx_http_geostream_start_t   *st;
    ngx_http_geostream_member_t  *m;

    log = sub->connection->log;

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, log, 0,
                   "geostream subscriber of \"%V\" starts: %ui topics, "
                   "bbox %s, %uz names, %s", &sub->topics, sub->nmembers,
                   sub->filter.has_bbox ? "yes" : "no", sub->filter.nnames,
                   sub->may_leave ? "may leave its request"
                                  : "keeps its request");

    for (i = 0; i < sub->nmembers; i++) {
        m = &sub->members[i];
        st = &m->start;

        switch (st->mode) {

        case NGX_HTTP_GEOSTREAM_CURSOR:
            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                           "geostream subscriber: \"%V\" %s \"%V\"",
                           &m->topic->name,
                           st->beginning ? "from the beginning, cursor"
                                         : "after cursor",
                           &st->resumed);
            break;

        case NGX_HTTP_GEOSTREAM_TIME:
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                           "geostream subscriber: \"%V\" since %L ms",
                           &m->topic->name, st->since);
            break;

        default:
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                           "geostream subscriber: \"%V\" from now",
                           &m->topic->name);
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                       "geostream subscriber: \"%V\" %s", &m->topic->name,
                       m->topic->ready ? "is read" : "waits to be read");
    }
}

#endif
