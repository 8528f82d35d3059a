/*
 * A stream's arguments, as the consumer location reads them from its
 * request: its topics, where it starts in each (Last-Event-ID or
 * last_event_id, since) and what it keeps (bbox, name); and the check of
 * a cursor against the partitions its topic has.
 */

#ifndef _NGX_HTTP_GEOSTREAM_STREAM_ARGS_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_STREAM_ARGS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_geostream_filter.h"


/* topics one stream may follow */
#define NGX_HTTP_GEOSTREAM_STREAM_TOPICS  16


/* where a stream starts in one of its topics */
typedef enum {
    NGX_HTTP_GEOSTREAM_LATEST = 0,
    NGX_HTTP_GEOSTREAM_CURSOR,
    NGX_HTTP_GEOSTREAM_TIME
} ngx_http_geostream_start_e;


typedef struct {
    ngx_http_geostream_start_e        mode;
    int64_t                          *cursor;       /* CURSOR: after it */
    size_t                            ncursor;
    int64_t                           since;        /* TIME: ms */

    /* the cursor as the client gave it, for the ids of several topics */
    ngx_str_t                         resumed;

    unsigned                          beginning:1;  /* since=beginning */
    unsigned                          placed:1;     /* resumed is known */
} ngx_http_geostream_start_t;


typedef struct {
    ngx_str_t                         topics;       /* as requested */
    ngx_uint_t                        ntopics;
    ngx_str_t                         names[NGX_HTTP_GEOSTREAM_STREAM_TOPICS];
    ngx_http_geostream_start_t        starts[NGX_HTTP_GEOSTREAM_STREAM_TOPICS];
    ngx_geostream_filter_t            filter;
} ngx_http_geostream_stream_args_t;


/*
 * Reads the stream's arguments; what they point to is allocated from
 * "pool", the stream's.  As nginx's access handlers do: NGX_OK when they
 * are good; otherwise (a bad topic, cursor, time or filter) the status of
 * the error recorded with ngx_http_geostream_error(), or
 * NGX_HTTP_INTERNAL_SERVER_ERROR.  Nothing is answered here: the location
 * answers once (ngx_http_geostream_answer_error()).
 */
ngx_int_t ngx_http_geostream_stream_args(ngx_http_request_t *r,
    ngx_pool_t *pool, ngx_http_geostream_stream_args_t *args);

/*
 * A cursor may name only partitions its topic has: NGX_OK when "start"
 * does (or has no cursor to check), NGX_AGAIN when it has one but the
 * topic's partitions are not known yet ("npartitions" -1), or the status
 * of the error recorded.
 */
ngx_int_t ngx_http_geostream_start_check(ngx_http_request_t *r,
    ngx_http_geostream_start_t *start, ngx_str_t *topic,
    ngx_int_t npartitions);

/* "start" is after the cursor of n offsets (copied into "pool") */
ngx_int_t ngx_http_geostream_start_after(ngx_http_geostream_start_t *start,
    ngx_pool_t *pool, const int64_t *offsets, size_t n);


#endif /* _NGX_HTTP_GEOSTREAM_STREAM_ARGS_H_INCLUDED_ */
