/*
 * The one JSON writer.  Plain C: see the header.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_json_writer.h"


static void ngx_geostream_jw_put(ngx_geostream_json_writer_t *w,
    const void *data, size_t len);
static void ngx_geostream_jw_value(ngx_geostream_json_writer_t *w);
static void ngx_geostream_jw_open(ngx_geostream_json_writer_t *w,
    const char *bracket);
static void ngx_geostream_jw_close(ngx_geostream_json_writer_t *w,
    const char *bracket);
static size_t ngx_geostream_jw_string_size(const char *s, size_t len);
static void ngx_geostream_jw_quoted(ngx_geostream_json_writer_t *w,
    const char *s, size_t len);


void
ngx_geostream_jw_init(ngx_geostream_json_writer_t *w, unsigned char *buf,
    size_t size)
{
    memset(w, 0, sizeof(ngx_geostream_json_writer_t));

    w->pos = buf;
    w->end = buf ? buf + size : NULL;
}


/* counts "len" bytes and, when writing and they fit, writes them */
static void
ngx_geostream_jw_put(ngx_geostream_json_writer_t *w, const void *data,
    size_t len)
{
    w->size += len;

    if (w->pos == NULL || w->failed || len == 0) {
        return;
    }

    if ((size_t) (w->end - w->pos) < len) {
        w->failed = 1;
        return;
    }

    memcpy(w->pos, data, len);
    w->pos += len;
}


/*
 * A value begins: after another at its depth, a comma first.  A key
 * clears its depth's bit, so that its value has no comma before it.
 */
static void
ngx_geostream_jw_value(ngx_geostream_json_writer_t *w)
{
    uint32_t  bit;

    bit = (uint32_t) 1 << w->depth;

    if (w->nonempty & bit) {
        ngx_geostream_jw_put(w, ",", 1);
    }

    w->nonempty |= bit;
}


static void
ngx_geostream_jw_open(ngx_geostream_json_writer_t *w, const char *bracket)
{
    ngx_geostream_jw_value(w);
    ngx_geostream_jw_put(w, bracket, 1);

    if (w->depth + 1 >= NGX_GEOSTREAM_JW_DEPTH_MAX) {
        w->failed = 1;
        return;
    }

    w->depth++;
    w->nonempty &= ~((uint32_t) 1 << w->depth);
}


static void
ngx_geostream_jw_close(ngx_geostream_json_writer_t *w, const char *bracket)
{
    if (w->depth == 0) {
        w->failed = 1;
        return;
    }

    ngx_geostream_jw_put(w, bracket, 1);
    w->depth--;
}


void
ngx_geostream_jw_object(ngx_geostream_json_writer_t *w)
{
    ngx_geostream_jw_open(w, "{");
}


void
ngx_geostream_jw_object_end(ngx_geostream_json_writer_t *w)
{
    ngx_geostream_jw_close(w, "}");
}


void
ngx_geostream_jw_array(ngx_geostream_json_writer_t *w)
{
    ngx_geostream_jw_open(w, "[");
}


void
ngx_geostream_jw_array_end(ngx_geostream_json_writer_t *w)
{
    ngx_geostream_jw_close(w, "]");
}


void
ngx_geostream_jw_key(ngx_geostream_json_writer_t *w, const char *key)
{
    ngx_geostream_jw_value(w);
    ngx_geostream_jw_quoted(w, key, strlen(key));
    ngx_geostream_jw_put(w, ":", 1);

    w->nonempty &= ~((uint32_t) 1 << w->depth);
}


/* bytes of "s" as a JSON string, quotes included; escapes as cJSON's */
static size_t
ngx_geostream_jw_string_size(const char *s, size_t len)
{
    size_t          size;
    unsigned char   c;

    size = 2;

    while (len--) {
        c = (unsigned char) *s++;

        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n'
            || c == '\r' || c == '\t')
        {
            size += 2;

        } else if (c < 0x20) {
            size += 6;                      /* \u00XX */

        } else {
            size++;
        }
    }

    return size;
}


/* "s" quoted and escaped: measured first, then written in place */
static void
ngx_geostream_jw_quoted(ngx_geostream_json_writer_t *w, const char *s,
    size_t len)
{
    size_t              size;
    unsigned char       c, *dst;
    static const char   hex[] = "0123456789abcdef";

    size = ngx_geostream_jw_string_size(s, len);
    w->size += size;

    if (w->pos == NULL || w->failed) {
        return;
    }

    if ((size_t) (w->end - w->pos) < size) {
        w->failed = 1;
        return;
    }

    dst = w->pos;
    *dst++ = '"';

    while (len--) {
        c = (unsigned char) *s++;

        switch (c) {
        case '"':  *dst++ = '\\'; *dst++ = '"'; break;
        case '\\': *dst++ = '\\'; *dst++ = '\\'; break;
        case '\b': *dst++ = '\\'; *dst++ = 'b'; break;
        case '\f': *dst++ = '\\'; *dst++ = 'f'; break;
        case '\n': *dst++ = '\\'; *dst++ = 'n'; break;
        case '\r': *dst++ = '\\'; *dst++ = 'r'; break;
        case '\t': *dst++ = '\\'; *dst++ = 't'; break;

        default:
            if (c < 0x20) {
                memcpy(dst, "\\u00", 4);
                dst[4] = hex[c >> 4];
                dst[5] = hex[c & 0xf];
                dst += 6;

            } else {
                *dst++ = c;
            }
        }
    }

    *dst++ = '"';
    w->pos = dst;
}


void
ngx_geostream_jw_string(ngx_geostream_json_writer_t *w, const char *s,
    size_t len)
{
    ngx_geostream_jw_value(w);
    ngx_geostream_jw_quoted(w, s, len);
}


void
ngx_geostream_jw_int(ngx_geostream_json_writer_t *w, int64_t v)
{
    int   n;
    char  buf[sizeof("-9223372036854775808")];

    n = snprintf(buf, sizeof(buf), "%lld", (long long) v);

    ngx_geostream_jw_value(w);
    ngx_geostream_jw_put(w, buf, n);
}


void
ngx_geostream_jw_uint(ngx_geostream_json_writer_t *w, uint64_t v)
{
    int   n;
    char  buf[sizeof("18446744073709551615")];

    n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);

    ngx_geostream_jw_value(w);
    ngx_geostream_jw_put(w, buf, n);
}


size_t
ngx_geostream_jw_number_text(char *dst, double v)
{
    int   n;
    char  buf[NGX_GEOSTREAM_JW_NUMBER_MAX + 8];

    if (!isfinite(v)) {
        memcpy(dst, "null", 4);
        return 4;
    }

    if (v == floor(v) && fabs(v) < 1e15) {
        n = snprintf(buf, sizeof(buf), "%lld", (long long) v);

    } else {
        n = snprintf(buf, sizeof(buf), "%1.15g", v);

        if (strtod(buf, NULL) != v) {
            n = snprintf(buf, sizeof(buf), "%1.17g", v);
        }
    }

    memcpy(dst, buf, n);

    return n;
}


void
ngx_geostream_jw_double(ngx_geostream_json_writer_t *w, double v)
{
    size_t  n;
    char    buf[NGX_GEOSTREAM_JW_NUMBER_MAX];

    n = ngx_geostream_jw_number_text(buf, v);

    ngx_geostream_jw_value(w);
    ngx_geostream_jw_put(w, buf, n);
}


void
ngx_geostream_jw_bool(ngx_geostream_json_writer_t *w, int v)
{
    ngx_geostream_jw_value(w);

    if (v) {
        ngx_geostream_jw_put(w, "true", 4);

    } else {
        ngx_geostream_jw_put(w, "false", 5);
    }
}


void
ngx_geostream_jw_null(ngx_geostream_json_writer_t *w)
{
    ngx_geostream_jw_value(w);
    ngx_geostream_jw_put(w, "null", 4);
}


void
ngx_geostream_jw_raw(ngx_geostream_json_writer_t *w,
    const unsigned char *json, size_t len)
{
    ngx_geostream_jw_value(w);
    ngx_geostream_jw_put(w, json, len);
}


int
ngx_geostream_jw_done(ngx_geostream_json_writer_t *w)
{
    return (w->failed || w->depth != 0 || w->size == 0) ? -1 : 0;
}
