/*
 * What a geostream location reads from a request, and what the module
 * keeps with it: the request's state (its ctx), the error a check
 * recorded, the location's topic, query arguments, content types.
 *
 * Checks follow nginx's conventions, as its access handlers do: NGX_OK
 * when the request passes; when not, an HTTP status (>=
 * NGX_HTTP_SPECIAL_RESPONSE) whose error is recorded with
 * ngx_http_geostream_error(), or NGX_ERROR.  Nothing is answered here:
 * the location answers once, with ngx_http_geostream_answer_error()
 * (ngx_http_geostream_answer.h).
 */

#ifndef _NGX_HTTP_GEOSTREAM_REQUEST_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_REQUEST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_geostream_message.h"


/* a request's state in the module */
typedef struct {
    ngx_str_t                   topic;          /* producer locations */
    void                       *subscriber;     /* consumer locations */

    /* the error recorded by ngx_http_geostream_error(), until answered */
    ngx_uint_t                  error_status;   /* 0: none */
    ngx_geostream_error_t       error;

    ngx_str_t                   error_page;     /* the error filter's body */
} ngx_http_geostream_ctx_t;


/* the request's ctx, created (zeroed) on first use; NULL: out of memory */
ngx_http_geostream_ctx_t *ngx_http_geostream_get_ctx(ngx_http_request_t *r);

/*
 * Records why the request is refused: "status", a stable "code" (a static
 * string) and a printf-style detail, for the location to answer with
 * ngx_http_geostream_answer_error().  Returns "status" (or
 * NGX_HTTP_INTERNAL_SERVER_ERROR, with nothing recorded, when out of
 * memory), so that a check ends with
 *
 *     return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST,
 *                                     "invalid_since", "...");
 *
 * A later error replaces an earlier one.
 */
ngx_int_t ngx_http_geostream_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...);
ngx_int_t ngx_http_geostream_verror(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *fmt, va_list args);

/*
 * The location's topic: "cv" evaluated, then checked as by
 * ngx_http_geostream_topic_check().
 */
ngx_int_t ngx_http_geostream_topic(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *topic);

/*
 * A topic's name against Kafka's naming rules (variables can produce
 * anything), then against the location's geostream_topics.  Returns
 *   NGX_OK                  the topic may be used;
 *   NGX_HTTP_BAD_REQUEST    "invalid_topic" recorded: not a Kafka name;
 *   NGX_HTTP_FORBIDDEN      "topic_not_allowed" recorded;
 *   NGX_ERROR               evaluating or matching failed (logged).
 */
ngx_int_t ngx_http_geostream_topic_check(ngx_http_request_t *r,
    ngx_str_t *topic);

/* a query argument's value, percent-decoded into a copy: NGX_OK, NGX_ERROR */
ngx_int_t ngx_http_geostream_unescape(ngx_http_request_t *r,
    ngx_str_t *value);

/* 1 when the media type of "type" (parameters aside) is "mime", else 0 */
ngx_uint_t ngx_http_geostream_is_type(ngx_str_t *type, const char *mime);

/* 1 when the request body is newline-delimited JSON, else 0 */
ngx_uint_t ngx_http_geostream_is_ndjson(ngx_http_request_t *r);


#endif /* _NGX_HTTP_GEOSTREAM_REQUEST_H_INCLUDED_ */
