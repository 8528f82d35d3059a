/*
 * A stream's arguments: which topics it follows (the location's value),
 * where it starts in each (Last-Event-ID, last_event_id, since) and what
 * it keeps (bbox, name).  Everything is read, and a bad argument refused,
 * before the stream starts or any topic is followed.
 */

#include "ngx_geostream_cursor.h"
#include "ngx_geostream_history.h"
#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_request.h"
#include "ngx_http_geostream_stream_args.h"


static ngx_int_t ngx_http_geostream_stream_topics(ngx_http_request_t *r,
    ngx_pool_t *pool, ngx_http_geostream_stream_args_t *args);
static ngx_int_t ngx_http_geostream_last_event_id(ngx_http_request_t *r,
    ngx_str_t *arg, ngx_str_t **id);
static ngx_int_t ngx_http_geostream_since(ngx_http_request_t *r,
    ngx_pool_t *pool, ngx_http_geostream_stream_args_t *args);
static ngx_int_t ngx_http_geostream_resume(ngx_http_request_t *r,
    ngx_pool_t *pool, ngx_http_geostream_stream_args_t *args, ngx_str_t *id);
static ngx_int_t ngx_http_geostream_start_cursor(ngx_http_request_t *r,
    ngx_pool_t *pool, ngx_http_geostream_start_t *start, u_char *data,
    size_t len);
static ngx_int_t ngx_http_geostream_cursor_error(ngx_http_request_t *r);
static ngx_int_t ngx_http_geostream_stream_filter(ngx_http_request_t *r,
    ngx_pool_t *pool, ngx_http_geostream_stream_args_t *args);


/*
 * The stream's topics, then its start, then its filters: NGX_OK when
 * they are good, or, as for every check here, the status of the error
 * recorded (ngx_http_geostream_error()) or NGX_HTTP_INTERNAL_SERVER_ERROR;
 * the location answers it.
 *   Last-Event-ID (header) or last_event_id (argument, since EventSource
 *   cannot set headers on its first request): a cursor to resume after
 *   (ngx_http_geostream_resume());
 *   since=latest (the default), beginning, a time in ms since the epoch,
 *   or a duration back from now (30s, 5m, 2h): where the topics that the
 *   cursor does not place start;
 *   bbox=west,south,east,north and name=a,b: what to keep.
 */
ngx_int_t
ngx_http_geostream_stream_args(ngx_http_request_t *r, ngx_pool_t *pool,
    ngx_http_geostream_stream_args_t *args)
{
    ngx_int_t   rc;
    ngx_str_t   id_arg, *id;

    rc = ngx_http_geostream_stream_topics(r, pool, args);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_geostream_last_event_id(r, &id_arg, &id);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_geostream_since(r, pool, args);
    if (rc != NGX_OK) {
        return rc;
    }

    if (id != NULL && id->len) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "geostream stream resumes from \"%V\"", id);

        rc = ngx_http_geostream_resume(r, pool, args, id);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_geostream_stream_filter(r, pool, args);
}


/*
 * The stream's topics: the location's value, one topic or several
 * separated by commas (commas are not in Kafka's topic names), each
 * checked like a producer's.  The topics are looked up (and so followed)
 * only once the whole request is known to be good.
 */
static ngx_int_t
ngx_http_geostream_stream_topics(ngx_http_request_t *r, ngx_pool_t *pool,
    ngx_http_geostream_stream_args_t *args)
{
    u_char                          *p, *last, *comma;
    ngx_int_t                        rc;
    ngx_str_t                        name, *names;
    ngx_uint_t                       i, j, n;
    ngx_http_geostream_loc_conf_t   *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);

    if (ngx_http_complex_value(r, glcf->consume, &name) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args->topics.len = name.len;
    args->topics.data = ngx_pstrdup(pool, &name);
    if (args->topics.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 1;

    for (i = 0; i < args->topics.len; i++) {
        n += (args->topics.data[i] == ',');
    }

    if (n > NGX_HTTP_GEOSTREAM_STREAM_TOPICS) {
        return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST,
                                   "too_many_topics",
                                   "a stream follows at most %d topics",
                                   NGX_HTTP_GEOSTREAM_STREAM_TOPICS);
    }

    args->ntopics = n;
    names = args->names;

    p = args->topics.data;
    last = p + args->topics.len;

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
            return rc;
        }

        for (j = 0; j < i; j++) {
            if (names[j].len == name.len
                && ngx_strncmp(names[j].data, name.data, name.len) == 0)
            {
                return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_topic",
                                   "topic \"%.*s\" is named twice",
                                   (int) name.len, name.data);
            }
        }

        names[i] = name;
    }

    return NGX_OK;
}


/* the cursor the client resumes after: "*id", NULL when there is none */
static ngx_int_t
ngx_http_geostream_last_event_id(ngx_http_request_t *r, ngx_str_t *arg,
    ngx_str_t **id)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    *id = NULL;
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
            *id = &h[i].value;
        }
    }

    if (*id == NULL
        && ngx_http_arg(r, (u_char *) "last_event_id",
                        sizeof("last_event_id") - 1, arg) == NGX_OK)
    {
        if (ngx_http_geostream_unescape(r, arg) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *id = arg;
    }

    return NGX_OK;
}


/* since=: where every topic starts, unless a cursor places it */
static ngx_int_t
ngx_http_geostream_since(ngx_http_request_t *r, ngx_pool_t *pool,
    ngx_http_geostream_stream_args_t *args)
{
    int64_t                      since;
    ngx_int_t                    rc;
    ngx_str_t                    value;
    ngx_uint_t                   i, beginning;
    ngx_http_geostream_start_e   mode;
    ngx_http_geostream_start_t  *start;

    mode = NGX_HTTP_GEOSTREAM_LATEST;
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
            mode = NGX_HTTP_GEOSTREAM_CURSOR;
            beginning = 1;
            break;

        case NGX_GEOSTREAM_SINCE_TIME:
            mode = NGX_HTTP_GEOSTREAM_TIME;
            break;

        default:
            return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_since",
                                   "since is latest, beginning, a time in ms "
                                   "since the epoch, or a duration such as "
                                   "5m");
        }
    }

    for (i = 0; i < args->ntopics; i++) {
        start = &args->starts[i];
        ngx_memzero(start, sizeof(ngx_http_geostream_start_t));
        start->mode = mode;
        start->since = since;

        if (beginning) {
            /* a cursor at no partition: every partition from offset 0 */
            rc = ngx_http_geostream_start_cursor(r, pool, start,
                                                 (u_char *) "", 0);
            if (rc != NGX_OK) {
                return rc;
            }

            start->beginning = 1;
        }
    }

    return NGX_OK;
}


/*
 * A cursor to resume after: a topic's cursor ("0:12,1:7"), or, for
 * streams of several topics, topic=cursor pairs separated by semicolons
 * ("a=0:12,1:7;b=0:3"), as the stream's own ids are.  A pair of a topic
 * that the stream does not follow is ignored, so that a client may follow
 * fewer topics than before; a topic without a pair starts by since.
 */
static ngx_int_t
ngx_http_geostream_resume(ngx_http_request_t *r, ngx_pool_t *pool,
    ngx_http_geostream_stream_args_t *args, ngx_str_t *id)
{
    int                           pair;
    ngx_int_t                     rc;
    ngx_uint_t                    i;
    const u_char                 *p;
    ngx_geostream_stream_part_t   part;

    if (ngx_geostream_stream_id_single(id->data, id->len)) {
        if (args->ntopics > 1) {
            return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_cursor",
                                   "a stream of several topics resumes from "
                                   "topic=cursor pairs separated by "
                                   "semicolons, as its ids are");
        }

        return ngx_http_geostream_start_cursor(r, pool, &args->starts[0],
                                               id->data, id->len);
    }

    p = id->data;

    /* pairs in order, as the client gave them: a later one wins */
    while ((pair = ngx_geostream_stream_id_next(&p, id->data + id->len,
                                                &part))
           != 0)
    {
        if (pair < 0) {
            return ngx_http_geostream_cursor_error(r);
        }

        for (i = 0; i < args->ntopics; i++) {
            if (args->names[i].len == part.topic_len
                && ngx_strncmp(args->names[i].data, part.topic,
                               part.topic_len) == 0)
            {
                rc = ngx_http_geostream_start_cursor(r, pool,
                                                     &args->starts[i],
                                                     (u_char *) part.text,
                                                     part.text_len);
                if (rc != NGX_OK) {
                    return rc;
                }
            }
        }
    }

    return NGX_OK;
}


/*
 * Starts a topic after a cursor; an empty one is at no partition, so
 * every partition starts at offset 0.
 */
static ngx_int_t
ngx_http_geostream_start_cursor(ngx_http_request_t *r, ngx_pool_t *pool,
    ngx_http_geostream_start_t *start, u_char *data, size_t len)
{
    int64_t    offsets[NGX_GEOSTREAM_PARTITIONS_MAX];
    ngx_int_t  n;

    n = len ? ngx_geostream_cursor_parse(data, len, offsets,
                                         NGX_GEOSTREAM_PARTITIONS_MAX)
            : 0;

    if (n < 0) {
        return ngx_http_geostream_cursor_error(r);
    }

    if (ngx_http_geostream_start_after(start, pool, offsets, n) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    start->resumed.len = len;
    start->resumed.data = ngx_pnalloc(pool, len ? len : 1);

    if (start->resumed.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(start->resumed.data, data, len);
    start->placed = 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_geostream_start_after(ngx_http_geostream_start_t *start,
    ngx_pool_t *pool, const int64_t *offsets, size_t n)
{
    int64_t  *cursor;

    cursor = ngx_palloc(pool, (n ? n : 1) * sizeof(int64_t));
    if (cursor == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(cursor, offsets, n * sizeof(int64_t));

    start->mode = NGX_HTTP_GEOSTREAM_CURSOR;
    start->beginning = 0;
    start->cursor = cursor;
    start->ncursor = n;

    return NGX_OK;
}


/* answers a malformed cursor */
static ngx_int_t
ngx_http_geostream_cursor_error(ngx_http_request_t *r)
{
    return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_cursor",
                                   "a Last-Event-ID is \"partition:offset\" "
                                   "pairs separated by commas, or, for "
                                   "several topics, topic=cursor pairs "
                                   "separated by semicolons");
}


ngx_int_t
ngx_http_geostream_start_check(ngx_http_request_t *r,
    ngx_http_geostream_start_t *start, ngx_str_t *topic,
    ngx_int_t npartitions)
{
    if (start->mode != NGX_HTTP_GEOSTREAM_CURSOR || start->beginning
        || start->ncursor == 0)
    {
        return NGX_OK;
    }

    if (npartitions < 0) {
        return NGX_AGAIN;
    }

    if (start->ncursor <= (size_t) npartitions) {
        return NGX_OK;
    }

    return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_cursor",
                                   "the cursor names partition %zu, but "
                                   "topic \"%.*s\" has %zu partitions",
                                   start->ncursor - 1, (int) topic->len,
                                   topic->data, (size_t) npartitions);
}


/* bbox= and name=: what the stream keeps; the filter lives in "pool" */
static ngx_int_t
ngx_http_geostream_stream_filter(ngx_http_request_t *r, ngx_pool_t *pool,
    ngx_http_geostream_stream_args_t *args)
{
    ngx_str_t              value;
    ngx_geostream_name_t  *names;

    ngx_memzero(&args->filter, sizeof(ngx_geostream_filter_t));

    if (ngx_http_arg(r, (u_char *) "bbox", sizeof("bbox") - 1, &value)
        == NGX_OK)
    {
        if (ngx_http_geostream_unescape(r, &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_geostream_filter_bbox(&args->filter, value.data, value.len)
            != 0)
        {
            return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_bbox",
                                   "bbox is west,south,east,north in "
                                   "degrees");
        }
    }

    if (ngx_http_arg(r, (u_char *) "name", sizeof("name") - 1, &value)
        != NGX_OK)
    {
        return NGX_OK;
    }

    /* the filter points into the names: both stay with the stream */
    names = ngx_palloc(pool, NGX_GEOSTREAM_FILTER_NAMES_MAX
                             * sizeof(ngx_geostream_name_t));

    if (names == NULL || ngx_http_geostream_unescape(r, &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.data = ngx_pstrdup(pool, &value);
    if (value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_geostream_filter_names(&args->filter, value.data, value.len,
                                   names, NGX_GEOSTREAM_FILTER_NAMES_MAX)
        != 0)
    {
        return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_name",
                                   "name is up to %d names separated by "
                                   "commas, each 1 to %d bytes of UTF-8 "
                                   "without control characters",
                                   NGX_GEOSTREAM_FILTER_NAMES_MAX,
                                   NGX_GEOSTREAM_NAME_MAX);
    }

    return NGX_OK;
}
