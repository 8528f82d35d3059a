/*
 * The streaming consumer location: GET /consumer/{topic} holds a
 * Server-Sent-Events connection.  The worker's consumer thread hands over
 * ready-made events in batches; this file matches them to subscribers and
 * writes each subscriber once per batch.  Subscribers share the events'
 * bytes: a subscriber only holds references, released once sent.
 *
 * A stream may follow several topics (GET /consumer/a,b).  Each event's
 * id is then the cursor of every topic of the stream, "a=0:12,1:7;b=0:3",
 * written for the subscriber in front of the event's shared bytes.
 */

#include "ngx_http_geostream_module.h"


#define NGX_HTTP_GEOSTREAM_RETRY  "retry: 2000\n\n"
#define NGX_HTTP_GEOSTREAM_BEAT   ":\n\n"

/* said before a replay that cannot start where the client asked */
#define NGX_HTTP_GEOSTREAM_GAP                                               \
    "event: gap\ndata: {\"reason\":\"not_in_history\",\"detail\":"           \
    "\"this server no longer has every event since the requested position;"  \
    " the stream resumes with the oldest it has\"}\n\n"


/* topics one stream may follow */
#define NGX_HTTP_GEOSTREAM_STREAM_TOPICS  16


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

    ngx_http_geostream_sub_t         *next_dirty;
    unsigned                          dirty:1;
    unsigned                          overflow:1;
    unsigned                          detached:1;
    unsigned                          replaying:1;
    unsigned                          may_leave:1;
    unsigned                          chunked:1;
    unsigned                          closing:1;     /* ends once sent */
    unsigned                          ended:1;       /* last chunk queued */
};


static ngx_int_t ngx_http_geostream_sub_topics(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_str_t *names);
static ngx_int_t ngx_http_geostream_sub_parse(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_str_t *names);
static ngx_int_t ngx_http_geostream_sub_resume(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_str_t *names, ngx_str_t *id);
static ngx_int_t ngx_http_geostream_member_cursor(ngx_http_request_t *r,
    ngx_http_geostream_member_t *m, u_char *data, size_t len);
static ngx_http_geostream_topic_t *ngx_http_geostream_topic_get(
    ngx_str_t *name, ngx_log_t *log);
static ngx_http_geostream_topic_t *ngx_http_geostream_topic_find(
    ngx_str_t *name);
static void ngx_http_geostream_topic_ready(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev);
static void ngx_http_geostream_topic_keep(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev);
static void ngx_http_geostream_event_hold(ngx_geostream_event_t **ref,
    ngx_geostream_event_t *ev);
static void ngx_http_geostream_event_cursor(ngx_geostream_event_t *ev,
    ngx_str_t *cursor);
static void ngx_http_geostream_sub_replay(ngx_http_geostream_member_t *m);
static ngx_int_t ngx_http_geostream_sub_kafka(ngx_http_geostream_member_t *m);
static void ngx_http_geostream_sub_replayed(ngx_geostream_replay_t *rp);
static ngx_int_t ngx_http_geostream_member_append(
    ngx_http_geostream_member_t *m, ngx_geostream_event_t *ev);
static void ngx_http_geostream_member_where(ngx_http_geostream_member_t *m,
    ngx_str_t *cursor);
static ngx_int_t ngx_http_geostream_sub_append(ngx_http_geostream_sub_t *sub,
    ngx_geostream_event_t *ev, u_char *data, size_t len);
static void ngx_http_geostream_out_release(ngx_http_geostream_out_t *o);
static void ngx_http_geostream_sub_flush(ngx_http_geostream_sub_t *sub);
static void ngx_http_geostream_sub_write(ngx_http_request_t *r);
static void ngx_http_geostream_sub_leave(ngx_event_t *ev);
static void ngx_http_geostream_sub_send(ngx_http_geostream_sub_t *sub);
static void ngx_http_geostream_stream_read(ngx_event_t *rev);
static void ngx_http_geostream_stream_write(ngx_event_t *wev);
static void ngx_http_geostream_sub_heartbeat(ngx_event_t *ev);
static void ngx_http_geostream_sub_expire(ngx_event_t *ev);
static void ngx_http_geostream_sub_detach(ngx_http_geostream_sub_t *sub);
static void ngx_http_geostream_sub_close(ngx_http_geostream_sub_t *sub,
    ngx_int_t rc);
static void ngx_http_geostream_sub_cleanup(void *data);


static ngx_queue_t  ngx_http_geostream_topics;
static ngx_uint_t   ngx_http_geostream_subscribers;
static ngx_uint_t   ngx_http_geostream_too_slow;     /* streams closed */


ngx_int_t
ngx_http_geostream_consumer_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        names[NGX_HTTP_GEOSTREAM_STREAM_TOPICS];
    ngx_uint_t                       i;
    ngx_pool_t                      *pool;
    ngx_pool_cleanup_t              *cln;
    ngx_http_geostream_ctx_t        *ctx;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_geostream_sub_t        *sub;
    ngx_http_geostream_topic_t      *topic;
    ngx_http_geostream_member_t     *m;
    ngx_http_geostream_loc_conf_t   *glcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_geostream_add_header(r, "Allow", "GET, HEAD")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_geostream_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                             "method_not_allowed",
                                             "use GET to subscribe");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);

    /*
     * An HTTP/1.x stream leaves its request once the header is out, so
     * what it keeps is in the connection's pool; an HTTP/2 stream shares
     * its connection and keeps its request.
     */
    pool = r->pool;

    if (glcf->detach && r == r->main
#if (NGX_HTTP_V2)
        && r->stream == NULL
#endif
       )
    {
        pool = r->connection->pool;
    }

    sub = ngx_pcalloc(pool, sizeof(ngx_http_geostream_sub_t));
    if (sub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sub->pool = pool;
    sub->connection = r->connection;
    sub->may_leave = (pool != r->pool);

    /* bad topics, cursors, times or filters are refused before streaming */
    rc = ngx_http_geostream_sub_topics(r, sub, names);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_geostream_sub_parse(r, sub, names);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    for (i = 0; i < sub->nmembers; i++) {
        m = &sub->members[i];

        m->topic = ngx_http_geostream_topic_get(&names[i],
                                                r->connection->log);
        if (m->topic == NULL) {
            return ngx_http_geostream_send_error(r,
                                   NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "kafka_unavailable",
                                   "the kafka consumer is not running");
        }
    }

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
     * connection goes keepalive, that is, never for a stream.
     */
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->tcp_nodelay
#if (NGX_HTTP_V2)
        && r->stream == NULL
#endif
        && ngx_tcp_nodelay(r->connection) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    sub->request = r;
    sub->out_tail = &sub->out;
    sub->backlog_max = glcf->backlog;
    sub->heartbeat_interval = glcf->heartbeat;

    for (i = 0; i < sub->nmembers; i++) {
        m = &sub->members[i];
        topic = m->topic;

        /* until its topic is ready, a member waits: nothing can be missed */
        ngx_queue_insert_tail(topic->ready ? &topic->subscribers
                                           : &topic->waiting,
                              &m->queue);
        topic->nsubscribers++;
    }

    ngx_http_geostream_subscribers++;

    cln->handler = ngx_http_geostream_sub_cleanup;
    cln->data = sub;
    sub->cleanup = cln;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_geostream_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->subscriber = sub;
    ngx_http_set_ctx(r, ctx, ngx_http_geostream_module);

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

    if (ngx_http_geostream_sub_append(sub, NULL,
                                   (u_char *) NGX_HTTP_GEOSTREAM_RETRY,
                                   sizeof(NGX_HTTP_GEOSTREAM_RETRY) - 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < sub->nmembers; i++) {
        if (sub->members[i].topic->ready) {
            ngx_http_geostream_sub_replay(&sub->members[i]);
        }
    }

    sub->leave.handler = ngx_http_geostream_sub_leave;
    sub->leave.data = sub;
    sub->leave.log = r->connection->log;

    ngx_http_geostream_sub_flush(sub);

    return NGX_DONE;
}


/*
 * The stream's topics: the location's value, one topic or several
 * separated by commas (commas are not in Kafka's topic names), each
 * checked like a producer's.  Their names go to "names"; the topics are
 * looked up (and so followed) only once the whole request is known to be
 * good.
 */
static ngx_int_t
ngx_http_geostream_sub_topics(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_str_t *names)
{
    u_char                          *p, *last, *comma;
    ngx_int_t                        rc;
    ngx_str_t                        name;
    ngx_uint_t                       i, j, n;
    ngx_http_geostream_member_t     *m;
    ngx_http_geostream_loc_conf_t   *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);

    if (ngx_http_complex_value(r, glcf->consume, &name) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sub->topics.len = name.len;
    sub->topics.data = ngx_pstrdup(sub->pool, &name);
    if (sub->topics.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 1;

    for (i = 0; i < sub->topics.len; i++) {
        n += (sub->topics.data[i] == ',');
    }

    if (n > NGX_HTTP_GEOSTREAM_STREAM_TOPICS) {
        return ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST,
                                   "too_many_topics",
                                   "a stream follows at most %d topics",
                                   NGX_HTTP_GEOSTREAM_STREAM_TOPICS);
    }

    sub->members = ngx_pcalloc(sub->pool,
                               n * sizeof(ngx_http_geostream_member_t));
    if (sub->members == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sub->nmembers = n;

    p = sub->topics.data;
    last = p + sub->topics.len;

    for (i = 0; i < n; i++) {
        comma = ngx_strlchr(p, last, ',');

        name.data = p;
        name.len = (comma ? comma : last) - p;
        p = comma ? comma + 1 : last;

        rc = ngx_http_geostream_topic_check(r, &name);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc != NGX_OK) {
            return ngx_http_geostream_topic_error(r, rc, &name);
        }

        for (j = 0; j < i; j++) {
            if (names[j].len == name.len
                && ngx_strncmp(names[j].data, name.data, name.len) == 0)
            {
                return ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_topic",
                                   "topic \"%.*s\" is named twice",
                                   (int) name.len, name.data);
            }
        }

        m = &sub->members[i];
        m->sub = sub;
        names[i] = name;
    }

    return NGX_DECLINED;
}


/*
 * The stream's start and filters, from the request (NGX_DECLINED to go
 * on, or how the request was answered, as for every check before the
 * stream starts):
 *   Last-Event-ID (header) or last_event_id (argument, since EventSource
 *   cannot set headers on its first request): a cursor to resume after
 *   (sub_resume());
 *   since=latest (the default), beginning, a time in ms since the epoch,
 *   or a duration back from now (30s, 5m, 2h): where the topics that the
 *   cursor does not place start;
 *   bbox=west,south,east,north and name=a,b: what to keep.
 */
static ngx_int_t
ngx_http_geostream_sub_parse(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_str_t *names)
{
    int64_t                       since;
    ngx_int_t                     rc;
    ngx_str_t                     value, id_arg, *id;
    ngx_uint_t                    i, beginning;
    ngx_list_part_t              *part;
    ngx_table_elt_t              *h;
    ngx_geostream_name_t         *filter_names;
    ngx_http_geostream_start_e    start;
    ngx_http_geostream_member_t  *m;

    id = NULL;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Last-Event-ID") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Last-Event-ID",
                               sizeof("Last-Event-ID") - 1) == 0)
        {
            id = &h[i].value;
        }
    }

    if (id == NULL
        && ngx_http_arg(r, (u_char *) "last_event_id",
                        sizeof("last_event_id") - 1, &id_arg) == NGX_OK)
    {
        if (ngx_http_geostream_unescape(r, &id_arg) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        id = &id_arg;
    }

    start = NGX_HTTP_GEOSTREAM_LATEST;
    since = 0;
    beginning = 0;

    if (ngx_http_arg(r, (u_char *) "since", sizeof("since") - 1, &value)
        == NGX_OK
        && !(value.len == 6 && ngx_strncmp(value.data, "latest", 6) == 0))
    {
        if (value.len == 9 && ngx_strncmp(value.data, "beginning", 9) == 0) {
            start = NGX_HTTP_GEOSTREAM_CURSOR;
            beginning = 1;

        } else if (value.len > 0 && value.len < 20
                   && ngx_atoof(value.data, value.len) != NGX_ERROR)
        {
            start = NGX_HTTP_GEOSTREAM_TIME;
            since = ngx_atoof(value.data, value.len);

        } else {
            since = ngx_parse_time(&value, 0);

            if (since == NGX_ERROR) {
                return ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_since",
                                   "since is latest, beginning, a time in ms "
                                   "since the epoch, or a duration such as "
                                   "5m");
            }

            start = NGX_HTTP_GEOSTREAM_TIME;
            since = (int64_t) ngx_time() * 1000 - since;
        }
    }

    for (i = 0; i < sub->nmembers; i++) {
        m = &sub->members[i];
        m->start = start;
        m->since = since;

        if (beginning) {
            /* a cursor at no partition: every partition from offset 0 */
            rc = ngx_http_geostream_member_cursor(r, m, (u_char *) "", 0);
            if (rc != NGX_DECLINED) {
                return rc;
            }

            m->beginning = 1;
        }
    }

    if (id != NULL && id->len) {
        rc = ngx_http_geostream_sub_resume(r, sub, names, id);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    if (ngx_http_arg(r, (u_char *) "bbox", sizeof("bbox") - 1, &value)
        == NGX_OK)
    {
        if (ngx_http_geostream_unescape(r, &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_geostream_filter_bbox(&sub->filter, value.data, value.len)
            != 0)
        {
            return ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_bbox",
                                   "bbox is west,south,east,north in "
                                   "degrees");
        }
    }

    if (ngx_http_arg(r, (u_char *) "name", sizeof("name") - 1, &value)
        == NGX_OK)
    {
        /* the filter points into the names: both stay with the stream */
        filter_names = ngx_palloc(sub->pool, NGX_GEOSTREAM_FILTER_NAMES_MAX
                                             * sizeof(ngx_geostream_name_t));

        if (filter_names == NULL
            || ngx_http_geostream_unescape(r, &value) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        value.data = ngx_pstrdup(sub->pool, &value);
        if (value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_geostream_filter_names(&sub->filter, value.data, value.len,
                                       filter_names,
                                       NGX_GEOSTREAM_FILTER_NAMES_MAX)
            != 0)
        {
            return ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_name",
                                   "name is up to %d non-empty names "
                                   "separated by commas",
                                   NGX_GEOSTREAM_FILTER_NAMES_MAX);
        }
    }

    return NGX_DECLINED;
}


/*
 * A cursor to resume after: a topic's cursor ("0:12,1:7"), or, for
 * streams of several topics, topic=cursor pairs separated by semicolons
 * ("a=0:12,1:7;b=0:3"), as the stream's own ids are.  A pair of a topic
 * that the stream does not follow is ignored, so that a client may follow
 * fewer topics than before; a topic without a pair starts by since.
 */
static ngx_int_t
ngx_http_geostream_sub_resume(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_str_t *names, ngx_str_t *id)
{
    u_char      *p, *last, *end, *eq;
    ngx_int_t    rc;
    ngx_uint_t   i;

    p = id->data;
    last = p + id->len;

    if (ngx_strlchr(p, last, '=') == NULL) {
        if (sub->nmembers > 1) {
            return ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_cursor",
                                   "a stream of several topics resumes from "
                                   "topic=cursor pairs separated by "
                                   "semicolons, as its ids are");
        }

        return ngx_http_geostream_member_cursor(r, &sub->members[0],
                                                p, id->len);
    }

    while (p < last) {
        end = ngx_strlchr(p, last, ';');
        if (end == NULL) {
            end = last;
        }

        eq = ngx_strlchr(p, end, '=');
        if (eq == NULL) {
            return ngx_http_geostream_member_cursor(r, NULL, NULL, 0);
        }

        for (i = 0; i < sub->nmembers; i++) {
            if (names[i].len == (size_t) (eq - p)
                && ngx_strncmp(names[i].data, p, eq - p) == 0)
            {
                rc = ngx_http_geostream_member_cursor(r, &sub->members[i],
                                                      eq + 1, end - eq - 1);
                if (rc != NGX_DECLINED) {
                    return rc;
                }
            }
        }

        p = (end < last) ? end + 1 : last;
    }

    return NGX_DECLINED;
}


/*
 * Starts a member after a cursor; an empty one is at no partition, so
 * every partition starts at offset 0.  A NULL member answers the error of
 * a malformed cursor.
 */
static ngx_int_t
ngx_http_geostream_member_cursor(ngx_http_request_t *r,
    ngx_http_geostream_member_t *m, u_char *data, size_t len)
{
    int64_t    offsets[NGX_GEOSTREAM_PARTITIONS_MAX];
    ngx_int_t  n;

    n = (m && len) ? ngx_geostream_cursor_parse(data, len, offsets,
                                             NGX_GEOSTREAM_PARTITIONS_MAX)
                   : 0;

    if (m == NULL || n < 0) {
        return ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_cursor",
                                   "a Last-Event-ID is \"partition:offset\" "
                                   "pairs separated by commas, or, for "
                                   "several topics, topic=cursor pairs "
                                   "separated by semicolons");
    }

    m->start = NGX_HTTP_GEOSTREAM_CURSOR;
    m->beginning = 0;
    m->ncursor = n;
    m->cursor = ngx_palloc(m->sub->pool, (n ? n : 1) * sizeof(int64_t));

    m->resumed.len = len;
    m->resumed.data = ngx_pnalloc(m->sub->pool, len ? len : 1);

    if (m->cursor == NULL || m->resumed.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(m->cursor, offsets, n * sizeof(int64_t));
    ngx_memcpy(m->resumed.data, data, len);
    m->placed = 1;

    return NGX_DECLINED;
}


/* the worker's topic of that name, followed from now on if it was not */
static ngx_http_geostream_topic_t *
ngx_http_geostream_topic_get(ngx_str_t *name, ngx_log_t *log)
{
    ngx_http_geostream_topic_t  *topic;

    topic = ngx_http_geostream_topic_find(name);
    if (topic != NULL) {
        return topic;
    }

    /* a worker's topics live as long as the worker */
    topic = ngx_calloc(sizeof(ngx_http_geostream_topic_t) + name->len, log);
    if (topic == NULL) {
        return NULL;
    }

    topic->name.len = name->len;
    topic->name.data = (u_char *) (topic + 1);
    ngx_memcpy(topic->name.data, name->data, name->len);
    ngx_queue_init(&topic->subscribers);
    ngx_queue_init(&topic->waiting);
    ngx_queue_init(&topic->replaying);

    if (ngx_geostream_history_init(&topic->history,
                                   ngx_http_geostream_history_size)
        != 0)
    {
        ngx_free(topic);
        return NULL;
    }

    if (ngx_geostream_kafka_follow(&topic->name) != NGX_OK) {
        ngx_free(topic);
        return NULL;
    }

    ngx_queue_insert_tail(&ngx_http_geostream_topics, &topic->queue);

    return topic;
}


static ngx_http_geostream_topic_t *
ngx_http_geostream_topic_find(ngx_str_t *name)
{
    ngx_queue_t                 *q;
    ngx_http_geostream_topic_t  *topic;

    if (ngx_http_geostream_topics.next == NULL) {
        ngx_queue_init(&ngx_http_geostream_topics);
    }

    for (q = ngx_queue_head(&ngx_http_geostream_topics);
         q != ngx_queue_sentinel(&ngx_http_geostream_topics);
         q = ngx_queue_next(q))
    {
        topic = ngx_queue_data(q, ngx_http_geostream_topic_t, queue);

        if (topic->name.len == name->len
            && ngx_strncmp(topic->name.data, name->data, name->len) == 0)
        {
            return topic;
        }
    }

    return NULL;
}


/*
 * The consumer thread reads the topic now: the history begins where it
 * began, and the subscribers that waited for this start.
 */
static void
ngx_http_geostream_topic_ready(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev)
{
    int64_t                       offsets[NGX_GEOSTREAM_PARTITIONS_MAX];
    ngx_int_t                     n;
    ngx_queue_t                  *q;
    ngx_http_geostream_member_t  *m;

    if (topic->ready) {
        return;
    }

    n = ev->data.len ? ngx_geostream_cursor_parse(ev->data.data, ev->data.len,
                                            offsets,
                                            NGX_GEOSTREAM_PARTITIONS_MAX)
                     : 0;

    if (n < 0
        || ngx_geostream_history_begin(&topic->history, offsets, n,
                                       ev->timestamp)
           != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "geostream: bad start of topic \"%V\": \"%V\"",
                      &topic->name, &ev->data);
    }

    topic->ready = 1;

    /* until a message comes, the topic stands where reading began */
    ngx_http_geostream_event_hold(&topic->last, ev);

    while (!ngx_queue_empty(&topic->waiting)) {
        q = ngx_queue_head(&topic->waiting);
        ngx_queue_remove(q);
        ngx_queue_insert_tail(&topic->subscribers, q);

        m = ngx_queue_data(q, ngx_http_geostream_member_t, queue);
        ngx_http_geostream_sub_replay(m);
        ngx_http_geostream_sub_flush(m->sub);
    }
}


/* the history ring keeps a reference; what it lets go is released */
static void
ngx_http_geostream_topic_keep(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev)
{
    int                     failed;
    ngx_geostream_event_t  *evicted;

    evicted = ngx_geostream_history_push(&topic->history, ev, ev->partition,
                                         ev->offset, ev->timestamp,
                                         &failed);
    if (!failed) {
        ev->refs++;
    }

    if (evicted) {
        ngx_geostream_event_release(evicted);
    }
}


/* "*ref" holds a reference to "ev" instead of what it held */
static void
ngx_http_geostream_event_hold(ngx_geostream_event_t **ref,
    ngx_geostream_event_t *ev)
{
    if (*ref == ev) {
        return;
    }

    ev->refs++;

    if (*ref) {
        ngx_geostream_event_release(*ref);
    }

    *ref = ev;
}


/* the topic's cursor as of an event: its "id:", or where reading began */
static void
ngx_http_geostream_event_cursor(ngx_geostream_event_t *ev, ngx_str_t *cursor)
{
    u_char  *p, *last;

    if (ev->type == NGX_GEOSTREAM_EVENT_TOPIC_READY) {
        *cursor = ev->data;
        return;
    }

    p = ev->data.data;
    last = p + ev->data.len;

    if (ev->data.len < sizeof("id: ") - 1
        || ngx_strncmp(p, "id: ", sizeof("id: ") - 1) != 0)
    {
        ngx_str_null(cursor);
        return;
    }

    p += sizeof("id: ") - 1;

    cursor->data = p;
    last = ngx_strlchr(p, last, '\n');
    cursor->len = last ? (size_t) (last - p) : 0;
}


/*
 * Sends a new subscriber what it asked for from before now: the history
 * ring's events after its cursor, or since its time, that pass its
 * filters.  It then joins the live feed in the same turn of the event
 * loop, so nothing falls between the two and nothing comes twice.  When
 * the ring no longer reaches back that far, the part before the ring is
 * read from Kafka first (ngx_http_geostream_sub_kafka()); only if that
 * cannot be done does the stream say so with a "gap" event and go on with
 * what the ring has.
 */
static void
ngx_http_geostream_sub_replay(ngx_http_geostream_member_t *m)
{
    size_t                                i;
    int64_t                               next;
    ngx_uint_t                            covered;
    ngx_geostream_event_t                *ev;
    ngx_geostream_history_t              *h;
    ngx_http_geostream_sub_t             *sub;
    const ngx_geostream_history_entry_t  *e;

    sub = m->sub;

    if (m->start == NGX_HTTP_GEOSTREAM_LATEST) {
        /* the stream joins the topic where it stands now */
        if (sub->nmembers > 1 && m->topic->last) {
            ngx_http_geostream_event_hold(&m->position, m->topic->last);
            m->placed = 1;
        }

        return;
    }

    h = &m->topic->history;

    covered = (m->start == NGX_HTTP_GEOSTREAM_CURSOR)
              ? ngx_geostream_history_covers(h, m->cursor, m->ncursor)
              : ngx_geostream_history_covers_time(h, m->since);

    if (!covered) {
        if (ngx_http_geostream_sub_kafka(m) == NGX_OK) {
            return;
        }

        (void) ngx_http_geostream_sub_append(sub, NULL,
                                       (u_char *) NGX_HTTP_GEOSTREAM_GAP,
                                       sizeof(NGX_HTTP_GEOSTREAM_GAP) - 1);
    }

    sub->replaying = 1;

    for (i = 0; (e = ngx_geostream_history_at(h, i)) != NULL; i++) {
        ev = e->data;

        if (m->start == NGX_HTTP_GEOSTREAM_CURSOR) {
            next = ((size_t) e->partition < m->ncursor)
                   ? m->cursor[e->partition] : 0;

            if (e->offset < next) {
                continue;
            }

        } else if (e->timestamp < m->since) {
            continue;
        }

        if (!ngx_geostream_filter_match(&sub->filter, ev->name.data,
                                        ev->name.len, ev->lat, ev->lon))
        {
            continue;
        }

        (void) ngx_http_geostream_member_append(m, ev);
    }

    sub->replaying = 0;
}


/*
 * Asks the worker's replay thread for the topic's past from the member's
 * position up to where the history ring begins.  Until that is done the
 * member is off the live feed; the ring keeps what comes meanwhile.
 */
static ngx_int_t
ngx_http_geostream_sub_kafka(ngx_http_geostream_member_t *m)
{
    size_t                    n, p;
    int64_t                  *from;
    ngx_geostream_history_t  *h;

    h = &m->topic->history;
    n = h->npartitions;

    from = ngx_pcalloc(m->sub->pool,
                       (n ? n : 1) * sizeof(int64_t));
    if (from == NULL) {
        return NGX_ERROR;
    }

    for (p = 0; m->start == NGX_HTTP_GEOSTREAM_CURSOR && p < n; p++) {
        from[p] = (p < m->ncursor) ? m->cursor[p] : 0;
    }

    m->replay = ngx_geostream_replay_start(&m->topic->name, from,
                          h->start, n,
                          m->start == NGX_HTTP_GEOSTREAM_TIME ? m->since : -1,
                          m->start == NGX_HTTP_GEOSTREAM_CURSOR
                          && !m->beginning,
                          m);
    if (m->replay == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_remove(&m->queue);
    ngx_queue_insert_tail(&m->topic->replaying, &m->queue);

    return NGX_OK;
}


/* a replay from Kafka is over: the history ring and live feed go on */
static void
ngx_http_geostream_sub_replayed(ngx_geostream_replay_t *rp)
{
    ngx_http_geostream_member_t  *m;

    m = rp->owner;

    if (m == NULL) {
        ngx_geostream_replay_free(rp);
        return;
    }

    m->replay = NULL;

    /* the replay ended where the ring began: resume from there */
    m->start = NGX_HTTP_GEOSTREAM_CURSOR;
    m->beginning = 0;
    m->ncursor = rp->rd.partitions;
    m->cursor = ngx_palloc(m->sub->pool,
                           (m->ncursor ? m->ncursor : 1) * sizeof(int64_t));

    if (m->cursor == NULL) {
        ngx_geostream_replay_free(rp);
        m->sub->overflow = 1;
        return;
    }

    ngx_memcpy(m->cursor, rp->to, m->ncursor * sizeof(int64_t));
    ngx_geostream_replay_free(rp);

    ngx_queue_remove(&m->queue);
    ngx_queue_insert_tail(&m->topic->subscribers, &m->queue);

    /* if the ring moved on meanwhile, this asks Kafka for the difference */
    ngx_http_geostream_sub_replay(m);
}


/* the subscriber is written to once the whole hand-over is queued */
static ngx_inline void
ngx_http_geostream_sub_dirty(ngx_http_geostream_sub_t *sub,
    ngx_http_geostream_sub_t **dirty)
{
    if (!sub->dirty) {
        sub->dirty = 1;
        sub->next_dirty = *dirty;
        *dirty = sub;
    }
}


void
ngx_http_geostream_consumer_dispatch(ngx_geostream_event_t *batch)
{
    ngx_queue_t                  *q;
    ngx_geostream_event_t        *ev, *next;
    ngx_http_geostream_sub_t     *sub, *dirty, *next_dirty;
    ngx_http_geostream_topic_t   *topic;
    ngx_http_geostream_member_t  *m;

    dirty = NULL;
    topic = NULL;

    for (ev = batch; ev; ev = next) {
        next = ev->next;

        /* a batch mostly holds runs of one topic */
        if (topic == NULL
            || topic->name.len != ev->topic.len
            || ngx_strncmp(topic->name.data, ev->topic.data, ev->topic.len)
               != 0)
        {
            /* the thread reads only topics that the loop asked for */
            topic = ngx_http_geostream_topic_find(&ev->topic);
        }

        if (topic == NULL) {
            ngx_geostream_event_release(ev);
            continue;
        }

        if (ev->type == NGX_GEOSTREAM_EVENT_TOPIC_READY) {
            ngx_http_geostream_topic_ready(topic, ev);
            ngx_geostream_event_release(ev);
            continue;
        }

        if (ev->type != NGX_GEOSTREAM_EVENT_MESSAGE) {
            /* a replay's: for its owner alone */
            m = ev->replay->owner;
            sub = m ? m->sub : NULL;

            if (ev->type == NGX_GEOSTREAM_EVENT_REPLAY_DONE) {
                ngx_http_geostream_sub_replayed(ev->replay);

            } else if (ev->type == NGX_GEOSTREAM_EVENT_REPLAY_NOTICE) {
                /* a notice has no id: it goes as it is */
                if (sub) {
                    sub->replaying = 1;
                    (void) ngx_http_geostream_sub_append(sub, ev,
                                                         ev->data.data,
                                                         ev->data.len);
                    sub->replaying = 0;
                }

            } else if (sub
                       && ngx_geostream_filter_match(&sub->filter,
                                    ev->name.data, ev->name.len, ev->lat,
                                    ev->lon))
            {
                sub->replaying = 1;
                (void) ngx_http_geostream_member_append(m, ev);
                sub->replaying = 0;
            }

            if (sub) {
                ngx_http_geostream_sub_dirty(sub, &dirty);
            }

            ngx_geostream_event_release(ev);
            continue;
        }

        topic->events++;
        ngx_http_geostream_topic_keep(topic, ev);
        ngx_http_geostream_event_hold(&topic->last, ev);

        for (q = ngx_queue_head(&topic->subscribers);
             q != ngx_queue_sentinel(&topic->subscribers);
             q = ngx_queue_next(q))
        {
            m = ngx_queue_data(q, ngx_http_geostream_member_t, queue);
            sub = m->sub;

            if (!ngx_geostream_filter_match(&sub->filter, ev->name.data,
                                            ev->name.len, ev->lat, ev->lon))
            {
                continue;
            }

            if (ngx_http_geostream_member_append(m, ev) != NGX_OK) {
                sub->overflow = 1;
            }

            ngx_http_geostream_sub_dirty(sub, &dirty);
        }

        ngx_geostream_event_release(ev);
    }

    /* one write per subscriber for the whole batch */
    for (sub = dirty; sub; sub = next_dirty) {
        next_dirty = sub->next_dirty;
        sub->dirty = 0;
        ngx_http_geostream_sub_flush(sub);
    }
}


/*
 * Queues an event of a member's topic.  A stream of one topic sends the
 * event's bytes as they are; a stream of several sends its own id line,
 * every topic's cursor, in front of the event's bytes after their id.
 */
static ngx_int_t
ngx_http_geostream_member_append(ngx_http_geostream_member_t *m,
    ngx_geostream_event_t *ev)
{
    u_char                       *line, *p;
    size_t                        len, skip;
    ngx_str_t                     cursor;
    ngx_uint_t                    i;
    ngx_http_geostream_out_t     *o;
    ngx_http_geostream_sub_t     *sub;
    ngx_http_geostream_member_t  *mi;

    sub = m->sub;

    if (sub->nmembers == 1) {
        return ngx_http_geostream_sub_append(sub, ev, ev->data.data,
                                             ev->data.len);
    }

    ngx_http_geostream_event_cursor(ev, &cursor);

    /* the event's own "id: ...\n" */
    skip = cursor.len ? sizeof("id: ") - 1 + cursor.len + 1 : 0;

    ngx_http_geostream_event_hold(&m->position, ev);
    m->placed = 1;

    len = sizeof("id: ") - 1 + 1;

    for (i = 0; i < sub->nmembers; i++) {
        mi = &sub->members[i];

        if (mi->placed) {
            ngx_http_geostream_member_where(mi, &cursor);
            len += mi->topic->name.len + 1 + cursor.len + 1;
        }
    }

    line = ngx_alloc(len, ngx_cycle->log);
    if (line == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(line, "id: ", sizeof("id: ") - 1);

    for (i = 0; i < sub->nmembers; i++) {
        mi = &sub->members[i];

        if (!mi->placed) {
            continue;
        }

        if (p != line + sizeof("id: ") - 1) {
            *p++ = ';';
        }

        ngx_http_geostream_member_where(mi, &cursor);

        p = ngx_cpymem(p, mi->topic->name.data, mi->topic->name.len);
        *p++ = '=';
        p = ngx_cpymem(p, cursor.data, cursor.len);
    }

    *p++ = '\n';

    if (ngx_http_geostream_sub_append(sub, NULL, line, p - line) != NGX_OK) {
        ngx_free(line);
        return NGX_ERROR;
    }

    /* the id line's memory goes with its piece of output, the last one */
    o = (ngx_http_geostream_out_t *) ((u_char *) sub->out_tail
                                      - offsetof(ngx_http_geostream_out_t,
                                                 next));
    o->owned = 1;

    return ngx_http_geostream_sub_append(sub, ev, ev->data.data + skip,
                                         ev->data.len - skip);
}


/* a member's cursor for the stream's ids */
static void
ngx_http_geostream_member_where(ngx_http_geostream_member_t *m,
    ngx_str_t *cursor)
{
    if (m->position) {
        ngx_http_geostream_event_cursor(m->position, cursor);

    } else {
        *cursor = m->resumed;
    }
}


/*
 * Queues bytes for a subscriber.  Only references to shared events are
 * queued, and at most one hand-over of events at a time before the
 * subscriber is written to: the backlog limit is checked there, on what
 * the socket did not take (ngx_http_geostream_sub_flush()).
 */
static ngx_int_t
ngx_http_geostream_sub_append(ngx_http_geostream_sub_t *sub,
    ngx_geostream_event_t *ev, u_char *data, size_t len)
{
    ngx_http_geostream_out_t  *o;

    if (sub->overflow || sub->detached) {
        return NGX_ERROR;
    }

    if (len == 0) {
        /* nothing to send; an empty chunk would end the stream */
        return NGX_OK;
    }

    o = sub->free;

    if (o) {
        sub->free = o->next;

    } else {
        o = ngx_palloc(sub->pool, sizeof(ngx_http_geostream_out_t));
        if (o == NULL) {
            return NGX_ERROR;
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
    o->replayed = sub->replaying;

    if (sub->replaying) {
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

    return NGX_OK;
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
 * Passes everything new to the output filters in one chain, then releases
 * what the socket has taken.  May finalize (and so free) the subscriber.
 */
static void
ngx_http_geostream_sub_flush(ngx_http_geostream_sub_t *sub)
{
    ngx_int_t                  rc;
    ngx_chain_t               *in;
    ngx_event_t               *wev;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_geostream_out_t  *o;

    if (sub->request == NULL) {
        ngx_http_geostream_sub_send(sub);
        return;
    }

    r = sub->request;
    c = r->connection;

    if (sub->overflow) {
        ngx_http_geostream_sub_close(sub, NGX_ERROR);
        return;
    }

    in = NULL;

    if (sub->unsent) {
        in = &sub->unsent->chain;

        for (o = sub->unsent; o; o = o->next) {
            o->chain.buf = &o->buf;
            o->chain.next = o->next ? &o->next->chain : NULL;

            if (o->next == NULL) {
                o->buf.flush = 1;
            }
        }

        sub->unsent = NULL;
    }

    rc = ngx_http_output_filter(r, in);

    if (rc == NGX_ERROR) {
        ngx_http_geostream_sub_close(sub, NGX_ERROR);
        return;
    }

    /* the write filter moves "pos" to "last" of what the socket took */
    while (sub->out && ngx_buf_size(&sub->out->buf) == 0) {
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

    /* a live subscriber that cannot keep up goes; it resumes by cursor */
    if (sub->backlog - sub->replayed > sub->backlog_max) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "geostream: subscriber of \"%V\" fell %uz bytes "
                      "behind (geostream_backlog), closing its stream",
                      &sub->topics, sub->backlog);
        ngx_http_geostream_too_slow++;
        ngx_http_geostream_sub_close(sub, NGX_ERROR);
        return;
    }

    wev = c->write;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (c->buffered) {
        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_geostream_sub_close(sub, NGX_ERROR);
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
    ngx_chain_t                *cl;
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_connection_t      *hc;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_geostream_sub_t   *sub;

    sub = ev->data;
    r = sub->request;

    if (r == NULL || sub->detached || !sub->may_leave) {
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
    hc = r->http_connection;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    /* the request's pool goes; the stream is not in it */
    sub->cleanup->handler = NULL;
    sub->cleanup = NULL;
    sub->request = NULL;

    ngx_http_free_request(r, 0);

    c->destroyed = 0;
    c->log->action = "streaming events";

    /* the request's header buffers, as a keepalive connection frees them */
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
 * A stream that left its request writes every hand-over as one HTTP/1.1
 * chunk (or as it is, for HTTP/1.0, whose stream ends with the
 * connection).  A chunk is framed only when the previous one is written.
 * May close (and so free) the stream.
 */
static void
ngx_http_geostream_sub_send(ngx_http_geostream_sub_t *sub)
{
    off_t                      size;
    ngx_chain_t               *cl, *first;
    ngx_connection_t          *c;
    ngx_http_geostream_out_t  *o;

    static u_char              crlf[] = CRLF;
    static u_char              last_chunk[] = "0" CRLF CRLF;

    c = sub->connection;

    if (sub->overflow) {
        ngx_http_geostream_sub_close(sub, NGX_ERROR);
        return;
    }

    for ( ;; ) {

        if (sub->sending == NULL) {

            if (sub->unsent == NULL) {

                if (!sub->closing || sub->out) {
                    break;
                }

                if (!sub->chunked || sub->ended) {
                    /* the last chunk is written: the stream is over */
                    ngx_http_geostream_sub_close(sub, NGX_OK);
                    return;
                }

                sub->ended = 1;
                sub->chunk_head.pos = last_chunk;
                sub->chunk_head.last = last_chunk + sizeof(last_chunk) - 1;
                sub->chunk_head_link.next = NULL;
                sub->sending = &sub->chunk_head_link;
                continue;
            }

            size = 0;

            for (o = sub->unsent; o; o = o->next) {
                o->chain.buf = &o->buf;
                o->chain.next = o->next ? &o->next->chain : NULL;
                size += ngx_buf_size(&o->buf);
            }

            first = &sub->unsent->chain;
            sub->unsent = NULL;

            if (sub->chunked) {
                sub->chunk_head.pos = sub->chunk_size;
                sub->chunk_head.last = ngx_sprintf(sub->chunk_size,
                                                   "%xO" CRLF, size);
                sub->chunk_head_link.next = first;

                sub->chunk_tail.pos = crlf;
                sub->chunk_tail.last = crlf + sizeof(crlf) - 1;
                sub->chunk_tail_link.next = NULL;

                for (cl = first; cl->next; cl = cl->next) { /* void */ }
                cl->next = &sub->chunk_tail_link;

                first = &sub->chunk_head_link;
            }

            sub->sending = first;
        }

        cl = c->send_chain(c, sub->sending, 0);

        if (cl == NGX_CHAIN_ERROR) {
            c->error = 1;
            ngx_http_geostream_sub_close(sub, NGX_ERROR);
            return;
        }

        /* release what the socket has taken */
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

        sub->sending = cl;

        if (cl != NULL) {
            break;
        }
    }

    if (sub->backlog - sub->replayed > sub->backlog_max) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "geostream: subscriber of \"%V\" fell %uz bytes "
                      "behind (geostream_backlog), closing its stream",
                      &sub->topics, sub->backlog);
        ngx_http_geostream_too_slow++;
        ngx_http_geostream_sub_close(sub, NGX_ERROR);
        return;
    }

    if (sub->sending) {
        if (!c->write->timer_set) {
            ngx_add_timer(c->write, sub->send_timeout);
        }

        if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
            ngx_http_geostream_sub_close(sub, NGX_ERROR);
        }

        return;
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }
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
        ngx_http_geostream_sub_close(sub, NGX_OK);
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

        ngx_http_geostream_sub_close(sub, NGX_ERROR);
        return;
    }

    /* a client that sends anything more is not listened to */
    if (n > 0 && (ngx_event_flags & NGX_USE_LEVEL_EVENT) && rev->active) {
        if (ngx_del_event(rev, NGX_READ_EVENT, 0) != NGX_OK) {
            ngx_http_geostream_sub_close(sub, NGX_ERROR);
        }

        return;
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_geostream_sub_close(sub, NGX_ERROR);
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
        ngx_http_geostream_sub_close(sub, NGX_ERROR);
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
                                          sizeof(NGX_HTTP_GEOSTREAM_BEAT) - 1)
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

    ngx_http_geostream_sub_detach(sub);
    sub->connection->idle = 0;

    if (r == NULL) {
        /* what is queued is written, then the last chunk */
        sub->closing = 1;
        ngx_http_geostream_sub_send(sub);
        return;
    }

    ngx_http_geostream_sub_close(sub, ngx_http_send_special(r,
                                                            NGX_HTTP_LAST));
}


/*
 * Ends a subscriber's request from outside its connection's handlers
 * (a hand-over of events, a timer): nginx defers the end of a request that
 * has a write handler to its posted requests, which run here, at once.
 * The subscriber is freed.
 */
static void
ngx_http_geostream_sub_close(ngx_http_geostream_sub_t *sub, ngx_int_t rc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = sub->request;
    c = sub->connection;

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
    ngx_uint_t                    i;
    ngx_http_geostream_member_t  *m;

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

    for (i = 0; i < sub->nmembers; i++) {
        m = &sub->members[i];

        if (m->replay) {
            /* the replay runs on; its events find no owner */
            m->replay->owner = NULL;
            m->replay = NULL;
        }

        if (m->position) {
            ngx_geostream_event_release(m->position);
            m->position = NULL;
        }

        ngx_queue_remove(&m->queue);
        m->topic->nsubscribers--;
    }

    ngx_http_geostream_subscribers--;
}


static void
ngx_http_geostream_sub_cleanup(void *data)
{
    ngx_http_geostream_sub_t  *sub = data;

    ngx_http_geostream_out_t  *o;

    ngx_http_geostream_sub_detach(sub);

    for (o = sub->out; o; o = o->next) {
        ngx_http_geostream_out_release(o);
    }

    sub->out = NULL;
}


/* the worker's subscribers, and the streams closed for being too slow */
void
ngx_http_geostream_consumer_counts(ngx_uint_t *subscribers,
    ngx_uint_t *too_slow)
{
    *subscribers = ngx_http_geostream_subscribers;
    *too_slow = ngx_http_geostream_too_slow;
}


cJSON *
ngx_http_geostream_consumer_status(void)
{
    char                        *name;
    cJSON                       *topics, *t;
    ngx_queue_t                 *q;
    ngx_http_geostream_topic_t  *topic;

    topics = cJSON_CreateArray();
    if (topics == NULL || ngx_http_geostream_topics.next == NULL) {
        return topics;
    }

    for (q = ngx_queue_head(&ngx_http_geostream_topics);
         q != ngx_queue_sentinel(&ngx_http_geostream_topics);
         q = ngx_queue_next(q))
    {
        topic = ngx_queue_data(q, ngx_http_geostream_topic_t, queue);

        t = cJSON_CreateObject();

        if (t == NULL || !cJSON_AddItemToArray(topics, t)) {
            cJSON_Delete(t);
            cJSON_Delete(topics);
            return NULL;
        }

        name = strndup((char *) topic->name.data, topic->name.len);

        if (name == NULL
            || cJSON_AddStringToObject(t, "topic", name) == NULL
            || cJSON_AddBoolToObject(t, "ready", topic->ready) == NULL
            || cJSON_AddNumberToObject(t, "subscribers",
                                       (double) topic->nsubscribers)
               == NULL
            || cJSON_AddNumberToObject(t, "events", (double) topic->events)
               == NULL)
        {
            free(name);
            cJSON_Delete(topics);
            return NULL;
        }

        free(name);
    }

    return topics;
}
