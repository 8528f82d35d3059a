/*
 * What a geostream location reads from a request, and the request's
 * state in the module, the error a check recorded among it.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_request.h"


ngx_http_geostream_ctx_t *
ngx_http_geostream_get_ctx(ngx_http_request_t *r)
{
    ngx_http_geostream_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_geostream_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_geostream_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_geostream_module);
    }

    return ctx;
}


ngx_int_t
ngx_http_geostream_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    va_list    args;
    ngx_int_t  rc;

    va_start(args, fmt);
    rc = ngx_http_geostream_verror(r, status, code, fmt, args);
    va_end(args);

    return rc;
}


ngx_int_t
ngx_http_geostream_verror(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, va_list args)
{
    ngx_http_geostream_ctx_t  *ctx;

    ctx = ngx_http_geostream_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->error_status = status;
    ctx->error.code = code;

    /* the detail is C text, as ngx_geostream_fail() writes it */
    vsnprintf(ctx->error.detail, sizeof(ctx->error.detail), fmt, args);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream error %ui \"%s\": %s",
                   status, code, ctx->error.detail);

    return status;
}


ngx_int_t
ngx_http_geostream_topic(ngx_http_request_t *r, ngx_http_complex_value_t *cv,
    ngx_str_t *topic)
{
    if (ngx_http_complex_value(r, cv, topic) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_geostream_topic_check(r, topic);
}


ngx_int_t
ngx_http_geostream_topic_check(ngx_http_request_t *r, ngx_str_t *topic)
{
#if (NGX_PCRE)
    ngx_int_t                       rc;
#endif
    ngx_http_geostream_loc_conf_t  *glcf;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream topic \"%V\"", topic);

    if (!ngx_geostream_topic_valid(topic->data, topic->len)) {
        return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_topic",
                                   "a topic is 1 to 249 of a-z, A-Z, 0-9, "
                                   "'.', '_' and '-'");
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);

#if (NGX_PCRE)
    if (glcf->topics) {
        rc = ngx_regex_exec(glcf->topics, topic, NULL, 0);

        if (rc == NGX_REGEX_NO_MATCHED) {
            /* a valid topic name needs no escaping in JSON */
            return ngx_http_geostream_error(r, NGX_HTTP_FORBIDDEN,
                                   "topic_not_allowed",
                                   "topic \"%.*s\" is not allowed here",
                                   (int) topic->len, topic->data);
        }

        if (rc < 0) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          ngx_regex_exec_n " failed: %i on \"%V\"",
                          rc, topic);
            return NGX_ERROR;
        }
    }
#else
    (void) glcf;
#endif

    return NGX_OK;
}


ngx_int_t
ngx_http_geostream_unescape(ngx_http_request_t *r, ngx_str_t *value)
{
    u_char  *dst, *src;

    dst = ngx_pnalloc(r->pool, value->len);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    src = value->data;
    value->data = dst;

    ngx_unescape_uri(&dst, &src, value->len, NGX_UNESCAPE_URI);
    value->len = dst - value->data;

    return NGX_OK;
}


ngx_uint_t
ngx_http_geostream_is_type(ngx_str_t *type, const char *mime)
{
    size_t  len;

    len = ngx_strlen(mime);

    if (type->len < len
        || ngx_strncasecmp(type->data, (u_char *) mime, len) != 0)
    {
        return 0;
    }

    return type->len == len || type->data[len] == ';'
           || type->data[len] == ' ';
}


ngx_uint_t
ngx_http_geostream_is_ndjson(ngx_http_request_t *r)
{
    ngx_str_t  *type;

    if (r->headers_in.content_type == NULL) {
        return 0;
    }

    type = &r->headers_in.content_type->value;

    return ngx_http_geostream_is_type(type, "application/x-ndjson")
           || ngx_http_geostream_is_type(type, "application/jsonl");
}
