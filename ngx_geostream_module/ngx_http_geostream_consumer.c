/*
 * The streaming consumer location: GET /consumer/{topic} holds a
 * Server-Sent-Events connection.  The worker's consumer thread hands over
 * ready-made events in batches; this file reads what a stream asks for,
 * keeps the worker's topics, and matches events to subscribers, which are
 * written once per batch (ngx_http_geostream_subscriber.c).  Subscribers
 * share the events' bytes: a subscriber only holds references, released
 * once sent.
 *
 * A stream may follow several topics (GET /consumer/a,b).  Each event's
 * id is then the cursor of every topic of the stream, "a=0:12,1:7;b=0:3",
 * written for the subscriber in front of the event's shared bytes.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_consumer.h"


#define NGX_HTTP_GEOSTREAM_RETRY  "retry: 2000\n\n"

/* said before a replay that cannot start where the client asked */
#define NGX_HTTP_GEOSTREAM_GAP                                               \
    "event: gap\ndata: {\"reason\":\"not_in_history\",\"detail\":"           \
    "\"this server no longer has every event since the requested position;"  \
    " the stream resumes with the oldest it has\"}\n\n"


/* topics one stream may follow */
#define NGX_HTTP_GEOSTREAM_STREAM_TOPICS  16

/*
 * How long a stream with a cursor waits, before its header, for its topics'
 * partitions to be known (so that a cursor naming one the topic does not
 * have is refused); after that it starts without the check, as it would
 * wait for the topic anyway.
 */
#define NGX_HTTP_GEOSTREAM_CHECK_WAIT  5000


static ngx_int_t ngx_http_geostream_sub_topics(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_str_t *names);
static ngx_int_t ngx_http_geostream_sub_parse(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_str_t *names);
static ngx_int_t ngx_http_geostream_sub_resume(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_str_t *names, ngx_str_t *id);
static ngx_int_t ngx_http_geostream_member_cursor(ngx_http_request_t *r,
    ngx_http_geostream_member_t *m, u_char *data, size_t len);
static ngx_int_t ngx_http_geostream_sub_check(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_uint_t wait);
static ngx_int_t ngx_http_geostream_sub_defer(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub);
static void ngx_http_geostream_sub_undefer(void *data);
static void ngx_http_geostream_sub_check_wait(ngx_event_t *ev);
static void ngx_http_geostream_sub_checked(ngx_http_geostream_sub_t *sub,
    ngx_uint_t wait);
static void ngx_http_geostream_pending_ready(void);
static ngx_int_t ngx_http_geostream_sub_start(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub);
static ngx_http_geostream_topic_t *ngx_http_geostream_topic_get(
    ngx_str_t *name, ngx_log_t *log);
static ngx_http_geostream_topic_t *ngx_http_geostream_topic_find(
    ngx_str_t *name);
static void ngx_http_geostream_topic_ready(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev);
static void ngx_http_geostream_topic_reset(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev);
static void ngx_http_geostream_topic_begin(ngx_http_geostream_topic_t *topic,
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


/* the worker's topics: in order (for the status page), and by name */
static ngx_queue_t        ngx_http_geostream_topics;
static ngx_rbtree_t       ngx_http_geostream_topic_tree;
static ngx_rbtree_node_t  ngx_http_geostream_topic_sentinel;

/* streams that wait for their topics' partitions before they start */
static ngx_queue_t        ngx_http_geostream_pending;


ngx_int_t
ngx_http_geostream_consumer_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        names[NGX_HTTP_GEOSTREAM_STREAM_TOPICS];
    ngx_uint_t                       i;
    ngx_pool_t                      *pool;
    ngx_http_geostream_sub_t        *sub;
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

    /* a cursor names only partitions its topic has: known once it is read */
    rc = ngx_http_geostream_sub_check(r, sub, 1);

    if (rc == NGX_AGAIN) {
        return ngx_http_geostream_sub_defer(r, sub);
    }

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_geostream_sub_start(r, sub);
}


/* the stream's header, then what it asked for from before now, then live */
static ngx_int_t
ngx_http_geostream_sub_start(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    ngx_pool_cleanup_t              *cln;
    ngx_http_geostream_ctx_t        *ctx;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_geostream_topic_t      *topic;
    ngx_http_geostream_member_t     *m;
    ngx_http_geostream_loc_conf_t   *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);

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

    ngx_geostream_stats_add(subscribers, 1);

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
        == NGX_OK)
    {
        switch (ngx_geostream_since_parse(value.data, value.len,
                                          (int64_t) ngx_time() * 1000,
                                          &since))
        {
        case NGX_GEOSTREAM_SINCE_LATEST:
            break;

        case NGX_GEOSTREAM_SINCE_BEGINNING:
            start = NGX_HTTP_GEOSTREAM_CURSOR;
            beginning = 1;
            break;

        case NGX_GEOSTREAM_SINCE_TIME:
            start = NGX_HTTP_GEOSTREAM_TIME;
            break;

        default:
            return ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_since",
                                   "since is latest, beginning, a time in ms "
                                   "since the epoch, or a duration such as "
                                   "5m");
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
                                   "name is up to %d names separated by "
                                   "commas, each 1 to %d bytes of UTF-8 "
                                   "without control characters",
                                   NGX_GEOSTREAM_FILTER_NAMES_MAX,
                                   NGX_GEOSTREAM_NAME_MAX);
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


/*
 * A cursor may name only partitions its topic has.  NGX_DECLINED when
 * every cursor does (or how the request was answered); NGX_AGAIN, with
 * "wait", while a topic with a cursor is not read yet, so that its
 * partitions are not known; without "wait" such a topic is not checked.
 */
static ngx_int_t
ngx_http_geostream_sub_check(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub, ngx_uint_t wait)
{
    size_t                        n;
    ngx_uint_t                    i;
    ngx_http_geostream_member_t  *m;

    for (i = 0; i < sub->nmembers; i++) {
        m = &sub->members[i];

        if (m->start != NGX_HTTP_GEOSTREAM_CURSOR || m->beginning
            || m->ncursor == 0)
        {
            continue;
        }

        if (!m->topic->ready) {
            if (wait) {
                return NGX_AGAIN;
            }

            continue;
        }

        n = m->topic->history.npartitions;

        if (m->ncursor > n) {
            return ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_cursor",
                                   "the cursor names partition %zu, but "
                                   "topic \"%.*s\" has %zu partitions",
                                   m->ncursor - 1, (int) m->topic->name.len,
                                   m->topic->name.data, n);
        }
    }

    return NGX_DECLINED;
}


/*
 * The stream waits, without its header, until its topics' partitions are
 * known (ngx_http_geostream_pending_ready()), at most
 * NGX_HTTP_GEOSTREAM_CHECK_WAIT.  Until it starts it is in no topic's
 * queues: nothing but this list and its timer refer to it.
 */
static ngx_int_t
ngx_http_geostream_sub_defer(ngx_http_request_t *r,
    ngx_http_geostream_sub_t *sub)
{
    ngx_pool_cleanup_t  *cln;

    if (ngx_http_geostream_pending.next == NULL) {
        ngx_queue_init(&ngx_http_geostream_pending);
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_geostream_sub_undefer;
    cln->data = sub;
    sub->cleanup = cln;
    sub->request = r;

    ngx_queue_insert_tail(&ngx_http_geostream_pending, &sub->pending);

    /* the heartbeat's event, unused before the stream starts */
    sub->heartbeat.handler = ngx_http_geostream_sub_check_wait;
    sub->heartbeat.data = sub;
    sub->heartbeat.log = r->connection->log;
    sub->heartbeat.cancelable = 1;
    ngx_add_timer(&sub->heartbeat, NGX_HTTP_GEOSTREAM_CHECK_WAIT);

    /* a client that goes away meanwhile finalizes the request */
    r->read_event_handler = ngx_http_test_reading;
    r->main->count++;

    return NGX_DONE;
}


/* the request of a waiting stream is gone */
static void
ngx_http_geostream_sub_undefer(void *data)
{
    ngx_http_geostream_sub_t  *sub = data;

    ngx_queue_remove(&sub->pending);

    if (sub->heartbeat.timer_set) {
        ngx_del_timer(&sub->heartbeat);
    }

    sub->request = NULL;
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

    ngx_http_geostream_sub_undefer(sub);
    sub->cleanup->handler = NULL;
    sub->cleanup = NULL;

    if (rc == NGX_DECLINED) {
        rc = ngx_http_geostream_sub_start(r, sub);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* a topic is read now: the streams that waited for it may go on */
static void
ngx_http_geostream_pending_ready(void)
{
    ngx_queue_t               *q, *next;
    ngx_http_geostream_sub_t  *sub;

    if (ngx_http_geostream_pending.next == NULL) {
        return;
    }

    for (q = ngx_queue_head(&ngx_http_geostream_pending);
         q != ngx_queue_sentinel(&ngx_http_geostream_pending);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_http_geostream_sub_t, pending);

        /* it leaves the list if it goes on; no other stream does */
        ngx_http_geostream_sub_checked(sub, 1);
    }
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

    /* a worker's topics live until it exits */
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
                                   ngx_http_geostream_history_size,
                                   ngx_http_geostream_history_bytes)
        != 0)
    {
        ngx_free(topic);
        return NULL;
    }

    if (ngx_geostream_kafka_follow(&topic->name) != NGX_OK) {
        ngx_geostream_history_free(&topic->history);
        ngx_free(topic);
        return NULL;
    }

    ngx_queue_insert_tail(&ngx_http_geostream_topics, &topic->queue);

    topic->sn.node.key = ngx_crc32_long(name->data, name->len);
    topic->sn.str = topic->name;
    ngx_rbtree_insert(&ngx_http_geostream_topic_tree, &topic->sn.node);

    return topic;
}


/*
 * At worker exit, once the consumer thread has stopped: the worker's
 * topics, with the events their histories hold.  A stream still open
 * (nginx without a master process exits without closing its connections)
 * keeps the references it holds to the events it was sending.
 */
void
ngx_http_geostream_consumer_free(void)
{
    size_t                                i;
    ngx_queue_t                          *q;
    ngx_http_geostream_topic_t           *topic;
    const ngx_geostream_history_entry_t  *e;

    if (ngx_http_geostream_topics.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_geostream_topics)) {
        q = ngx_queue_head(&ngx_http_geostream_topics);
        ngx_queue_remove(q);

        topic = ngx_queue_data(q, ngx_http_geostream_topic_t, queue);

        for (i = 0; i < topic->history.count; i++) {
            e = ngx_geostream_history_at(&topic->history, i);
            ngx_geostream_event_release(e->data);
        }

        ngx_geostream_history_free(&topic->history);

        if (topic->last) {
            ngx_geostream_event_release(topic->last);
        }

        ngx_rbtree_delete(&ngx_http_geostream_topic_tree, &topic->sn.node);
        ngx_free(topic);
    }

    /* a topic looked up from now on starts a new list */
    ngx_http_geostream_topics.next = NULL;
}


static ngx_http_geostream_topic_t *
ngx_http_geostream_topic_find(ngx_str_t *name)
{
    if (ngx_http_geostream_topics.next == NULL) {
        ngx_queue_init(&ngx_http_geostream_topics);
        ngx_rbtree_init(&ngx_http_geostream_topic_tree,
                        &ngx_http_geostream_topic_sentinel,
                        ngx_str_rbtree_insert_value);
    }

    /* the node is the topic's first member */
    return (ngx_http_geostream_topic_t *)
           ngx_str_rbtree_lookup(&ngx_http_geostream_topic_tree, name,
                                 ngx_crc32_long(name->data, name->len));
}


/*
 * The consumer thread reads the topic now: the history begins where it
 * began, and the subscribers that waited for this start.
 */
static void
ngx_http_geostream_topic_ready(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev)
{
    ngx_queue_t                  *q;
    ngx_http_geostream_member_t  *m;

    if (topic->ready) {
        return;
    }

    ngx_http_geostream_topic_begin(topic, ev);

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

    ngx_http_geostream_pending_ready();
}


/*
 * A partition's log was reset: the ring's events no longer come before
 * what is read next, so the ring starts again from the reset's cursor.
 */
static void
ngx_http_geostream_topic_reset(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev)
{
    ngx_geostream_event_t  *old;

    while ((old = ngx_geostream_history_shift(&topic->history)) != NULL) {
        ngx_geostream_event_release(old);
    }

    ngx_http_geostream_topic_begin(topic, ev);
}


/* the history ring holds the topic from the cursor of "ev" on */
static void
ngx_http_geostream_topic_begin(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev)
{
    int64_t    offsets[NGX_GEOSTREAM_PARTITIONS_MAX];
    ngx_int_t  n;
    ngx_str_t  cursor;

    ngx_http_geostream_event_cursor(ev, &cursor);

    n = cursor.len ? ngx_geostream_cursor_parse(cursor.data, cursor.len,
                                        offsets, NGX_GEOSTREAM_PARTITIONS_MAX)
                   : 0;

    if (n < 0
        || ngx_geostream_history_begin(&topic->history, offsets, n,
                                       ev->timestamp)
           != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "geostream: bad start of topic \"%V\": \"%V\"",
                      &topic->name, &cursor);
    }
}


/*
 * The history ring keeps a reference; what it lets go is released.  An
 * event counts for the memory it was allocated with.
 */
static void
ngx_http_geostream_topic_keep(ngx_http_geostream_topic_t *topic,
    ngx_geostream_event_t *ev)
{
    ngx_geostream_event_t  *evicted;

    while ((evicted = ngx_geostream_history_evict(&topic->history, ev->size))
           != NULL)
    {
        ngx_geostream_event_release(evicted);
    }

    if (ngx_geostream_history_push(&topic->history, ev, ev->size,
                                   ev->partition, ev->offset, ev->timestamp)
        == 0)
    {
        ev->refs++;
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

    m->replay = ngx_geostream_replay_start(ngx_geostream_kafka_replayer(),
                          &m->topic->name, from, h->start, n,
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

        if (ev->type == NGX_GEOSTREAM_EVENT_RESET) {
            ngx_http_geostream_topic_reset(topic, ev);
        }

        if (ev->type != NGX_GEOSTREAM_EVENT_MESSAGE
            && ev->type != NGX_GEOSTREAM_EVENT_RESET)
        {
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

        if (ev->type == NGX_GEOSTREAM_EVENT_MESSAGE) {
            topic->events++;
            ngx_http_geostream_topic_keep(topic, ev);
        }

        ngx_http_geostream_event_hold(&topic->last, ev);

        for (q = ngx_queue_head(&topic->subscribers);
             q != ngx_queue_sentinel(&topic->subscribers);
             q = ngx_queue_next(q))
        {
            m = ngx_queue_data(q, ngx_http_geostream_member_t, queue);
            sub = m->sub;

            /* a reset is news to every stream of the topic */
            if (ev->type == NGX_GEOSTREAM_EVENT_MESSAGE
                && !ngx_geostream_filter_match(&sub->filter, ev->name.data,
                                               ev->name.len, ev->lat,
                                               ev->lon))
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
 * A worker that stops fast (SIGTERM) exits with its streams open: the
 * kernel closes their sockets, and would keep what the stalled ones hold
 * as it does for any close; those are reset instead.
 */
void
ngx_http_geostream_consumer_exit(void)
{
    ngx_uint_t                    i;
    ngx_queue_t                  *q, *q2, *queue;
    ngx_http_geostream_topic_t   *topic;
    ngx_http_geostream_member_t  *m;

    if (ngx_http_geostream_topics.next == NULL) {
        return;
    }

    for (q = ngx_queue_head(&ngx_http_geostream_topics);
         q != ngx_queue_sentinel(&ngx_http_geostream_topics);
         q = ngx_queue_next(q))
    {
        topic = ngx_queue_data(q, ngx_http_geostream_topic_t, queue);

        for (i = 0; i < 3; i++) {
            queue = (i == 0) ? &topic->subscribers
                  : (i == 1) ? &topic->waiting : &topic->replaying;

            for (q2 = ngx_queue_head(queue);
                 q2 != ngx_queue_sentinel(queue);
                 q2 = ngx_queue_next(q2))
            {
                m = ngx_queue_data(q2, ngx_http_geostream_member_t, queue);
                ngx_http_geostream_sub_shutdown(m->sub);
            }
        }
    }
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
               == NULL
            || cJSON_AddNumberToObject(t, "history",
                                       (double) topic->history.count)
               == NULL
            || cJSON_AddNumberToObject(t, "history_bytes",
                                       (double) topic->history.bytes)
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
