/*
 * How a geostream location answers a request: a whole body of a type,
 * JSON, a header of its own, and the one error path.
 *
 * The error path.  A check that refuses a request records why with
 * ngx_http_geostream_error() (ngx_http_geostream_request.h) and returns
 * the status, as nginx's access handlers return theirs; the location's
 * handler answers it once, in one place:
 *
 *     rc = ngx_http_geostream_topic(r, glcf->produce, &ctx->topic);
 *
 *     if (rc != NGX_OK) {
 *         return ngx_http_geostream_answer_error(r, rc);
 *     }
 *
 * The handler answers the error itself rather than returning the status
 * to nginx, whose special response would answer it its own way: an
 * error_page would apply, and a 400 or 500 would close a keepalive
 * connection (ngx_http_special_response_handler()).
 */

#ifndef _NGX_HTTP_GEOSTREAM_ANSWER_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_ANSWER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_geostream_message.h"
#include "ngx_http_geostream_request.h"


/*
 * Answers what a check returned when it was not NGX_OK:
 *   a status whose error the request recorded (ngx_http_geostream_error()):
 *       the error as JSON, {"error":"<code>","detail":"<detail>"} and a
 *       line break, with that status and the headers already set (Allow,
 *       Retry-After); returns what sending returns;
 *   any other status, NGX_ERROR, NGX_DONE...: returned as it is, for
 *       nginx to answer (its own error page, which the error filter turns
 *       into JSON in geostream locations).
 * A recorded error is answered once; the handler returns the result to
 * nginx (or gives it to ngx_http_finalize_request()).
 */
ngx_int_t ngx_http_geostream_answer_error(ngx_http_request_t *r,
    ngx_int_t rc);

/* an error's JSON, as ngx_http_geostream_answer_error() answers it */
ngx_int_t ngx_http_geostream_error_body(ngx_http_request_t *r,
    ngx_geostream_error_t *err, ngx_str_t *body);

/*
 * ngx_http_geostream_error() and ngx_http_geostream_answer_error() at
 * once, for a location that refuses a request where it stands.
 */
ngx_int_t ngx_http_geostream_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *fmt, ...);

/* the JSON "json" and a line break (copied) as the whole answer */
ngx_int_t ngx_http_geostream_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *json, size_t len);

/* the buffer's bytes as the whole answer, of that type */
ngx_int_t ngx_http_geostream_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b);

/* a header of the answer; "key" and "value" are static strings */
ngx_int_t ngx_http_geostream_add_header(ngx_http_request_t *r, char *key,
    char *value);


#endif /* _NGX_HTTP_GEOSTREAM_ANSWER_H_INCLUDED_ */
