/*
 * How a geostream location answers a request: whole bodies, JSON, its
 * own headers, and the errors that checks recorded.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_answer.h"
#include "ngx_geostream_json_writer.h"


static void ngx_http_geostream_error_write(ngx_geostream_json_writer_t *w,
    ngx_geostream_error_t *err);


ngx_int_t
ngx_http_geostream_answer_error(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_buf_t                 *b;
    ngx_str_t                  body;
    ngx_str_t                  type = ngx_string("application/json");
    ngx_http_geostream_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_geostream_module);

    if (rc < NGX_HTTP_SPECIAL_RESPONSE
        || ctx == NULL
        || ctx->error_status != (ngx_uint_t) rc)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "geostream leaves %i to nginx", rc);
        return rc;
    }

    ctx->error_status = 0;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream answers error %i \"%s\"",
                   rc, ctx->error.code);

    if (ngx_http_geostream_error_body(r, &ctx->error, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body.data;
    b->last = body.data + body.len;
    b->memory = 1;

    return ngx_http_geostream_send(r, (ngx_uint_t) rc, &type, b);
}


ngx_int_t
ngx_http_geostream_error_body(ngx_http_request_t *r,
    ngx_geostream_error_t *err, ngx_str_t *body)
{
    ngx_geostream_json_writer_t  w;

    ngx_geostream_jw_init(&w, NULL, 0);
    ngx_http_geostream_error_write(&w, err);

    /* answers end with a line break, for people reading them in a shell */
    body->data = ngx_pnalloc(r->pool, w.size + 1);
    if (body->data == NULL) {
        return NGX_ERROR;
    }

    ngx_geostream_jw_init(&w, body->data, w.size);
    ngx_http_geostream_error_write(&w, err);

    if (ngx_geostream_jw_done(&w) != 0) {
        return NGX_ERROR;
    }

    body->data[w.size] = LF;
    body->len = w.size + 1;

    return NGX_OK;
}


/* {"error":"<code>","detail":"<detail>"} */
static void
ngx_http_geostream_error_write(ngx_geostream_json_writer_t *w,
    ngx_geostream_error_t *err)
{
    ngx_geostream_jw_object(w);
    ngx_geostream_jw_key(w, "error");
    ngx_geostream_jw_string(w, err->code, ngx_strlen(err->code));
    ngx_geostream_jw_key(w, "detail");
    ngx_geostream_jw_string(w, err->detail, ngx_strlen(err->detail));
    ngx_geostream_jw_object_end(w);
}


ngx_int_t
ngx_http_geostream_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    va_list    args;
    ngx_int_t  rc;

    va_start(args, fmt);
    rc = ngx_http_geostream_verror(r, status, code, fmt, args);
    va_end(args);

    return ngx_http_geostream_answer_error(r, rc);
}


ngx_int_t
ngx_http_geostream_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *json, size_t len)
{
    ngx_buf_t  *b;
    ngx_str_t   type = ngx_string("application/json");

    /* answers end with a line break, for people reading them in a shell */
    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, json, len);
    *b->last++ = LF;

    return ngx_http_geostream_send(r, status, &type, b);
}


ngx_int_t
ngx_http_geostream_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b)
{
    ngx_int_t     rc;
    ngx_chain_t   out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;

    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_geostream_add_header(ngx_http_request_t *r, char *key, char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    h->key.len = ngx_strlen(key);
    h->key.data = (u_char *) key;
    h->value.len = ngx_strlen(value);
    h->value.data = (u_char *) value;

    return NGX_OK;
}
