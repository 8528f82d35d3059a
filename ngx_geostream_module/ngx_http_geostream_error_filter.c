/*
 * JSON for the errors nginx itself answers in geostream locations.
 *
 * nginx refuses some requests before a content handler runs (an oversize
 * body in its find-config phase, a malformed chunked body, a timeout) and
 * answers them with an HTML page.  Clients of an API expect its error
 * shape, so in geostream locations this filter replaces such a page with
 * {"error":"<code>","detail":"<what is wrong>"}, keeping the status.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_answer.h"
#include "ngx_http_geostream_error_filter.h"
#include "ngx_http_geostream_request.h"


typedef struct {
    ngx_uint_t   status;
    const char  *code;
    const char  *detail;
} ngx_http_geostream_status_error_t;


static ngx_int_t ngx_http_geostream_error_header_filter(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_geostream_error_page(ngx_http_request_t *r,
    ngx_str_t *page);
static ngx_int_t ngx_http_geostream_error_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_http_geostream_status_error_t  ngx_http_geostream_errors[] = {
    { NGX_HTTP_BAD_REQUEST, "bad_request",
      "the request is malformed" },
    { NGX_HTTP_UNAUTHORIZED, "unauthorized",
      "authentication is required" },
    { NGX_HTTP_FORBIDDEN, "forbidden", "access is denied" },
    { NGX_HTTP_NOT_FOUND, "not_found", "there is nothing here" },
    { NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
      "the method is not allowed here" },
    { NGX_HTTP_REQUEST_TIME_OUT, "request_timeout",
      "the request was not received in time" },
    { NGX_HTTP_LENGTH_REQUIRED, "length_required",
      "send the body with Content-Length or chunked" },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
      NULL /* says the limit */ },
    { NGX_HTTP_REQUEST_URI_TOO_LARGE, "uri_too_long", "the URI is too long" },
    { 429, "too_many_requests", "slow down" },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
      "the server failed; see its error log" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "service_unavailable",
      "try again later" },
    { 0, "http_error", "the request failed" }
};


ngx_int_t
ngx_http_geostream_error_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_geostream_error_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_geostream_error_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_geostream_error_header_filter(ngx_http_request_t *r)
{
    ngx_http_geostream_ctx_t       *ctx;
    ngx_http_geostream_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);

    /* nginx's own error pages are text/html; the module's answers are not */
    if (r != r->main
        || r->headers_out.status < NGX_HTTP_BAD_REQUEST
        || (glcf->produce == NULL && glcf->consume == NULL && !glcf->status)
        || r->headers_out.content_type.len < sizeof("text/html") - 1
        || ngx_strncmp(r->headers_out.content_type.data, "text/html",
                       sizeof("text/html") - 1) != 0)
    {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_geostream_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_geostream_error_page(r, &ctx->error_page) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    r->headers_out.content_length_n = ctx->error_page.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return ngx_http_next_header_filter(r);
}


/* the JSON that replaces nginx's page of the answer's status */
static ngx_int_t
ngx_http_geostream_error_page(ngx_http_request_t *r, ngx_str_t *page)
{
    u_char                             *p, *last;
    ngx_geostream_error_t               err;
    ngx_http_core_loc_conf_t           *clcf;
    ngx_http_geostream_status_error_t  *e;

    for (e = ngx_http_geostream_errors; e->status; e++) {
        if (e->status == r->headers_out.status) {
            break;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream error filter replaces the %ui page: \"%s\"",
                   r->headers_out.status, e->code);

    err.code = e->code;
    p = (u_char *) err.detail;
    last = p + sizeof(err.detail) - 1;

    if (e->detail == NULL) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
        p = ngx_slprintf(p, last, "the body is larger than %O bytes "
                         "(client_max_body_size)",
                         clcf->client_max_body_size);

    } else {
        p = ngx_slprintf(p, last, "%s", e->detail);
    }

    *p = '\0';

    return ngx_http_geostream_error_body(r, &err, page);
}


/* the HTML page is swallowed; the JSON goes out in its place, once */
static ngx_int_t
ngx_http_geostream_error_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                 *b;
    ngx_chain_t               *cl, out;
    ngx_http_geostream_ctx_t  *ctx;

    /* streams and other good answers pass at once: this runs on every write */
    if (r->headers_out.status < NGX_HTTP_BAD_REQUEST) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_geostream_module);

    if (ctx == NULL || ctx->error_page.len == 0) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->error_page.data == NULL) {
        return NGX_OK;                      /* already sent */
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->error_page.data;
    b->last = ctx->error_page.data + ctx->error_page.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    ctx->error_page.data = NULL;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}
