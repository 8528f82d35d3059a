/*
 * The one JSON writer.  Plain C: see the header.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_json_writer.h"


static inline void ngx_geostream_jw_put(ngx_geostream_json_writer_t *w,
    const void *data, size_t len);
static inline void ngx_geostream_jw_value(ngx_geostream_json_writer_t *w);
static void ngx_geostream_jw_open(ngx_geostream_json_writer_t *w,
    const char *bracket);
static void ngx_geostream_jw_close(ngx_geostream_json_writer_t *w,
    const char *bracket);
static size_t ngx_geostream_jw_string_size(const char *s, size_t len);
static void ngx_geostream_jw_quoted(ngx_geostream_json_writer_t *w,
    const char *s, size_t len);
static void ngx_geostream_jw_digits(ngx_geostream_json_writer_t *w,
    uint64_t u, int neg);


void
ngx_geostream_jw_init(ngx_geostream_json_writer_t *w, unsigned char *buf,
    size_t size)
{
    memset(w, 0, sizeof(ngx_geostream_json_writer_t));

    w->pos = buf;
    w->end = buf ? buf + size : NULL;
}


void
ngx_geostream_jw_init_measured(ngx_geostream_json_writer_t *w,
    unsigned char *buf)
{
    memset(w, 0, sizeof(ngx_geostream_json_writer_t));

    w->pos = buf;
}


/* counts "len" bytes and, when writing and they fit, writes them */
static inline void
ngx_geostream_jw_put(ngx_geostream_json_writer_t *w, const void *data,
    size_t len)
{
    w->size += len;

    if (w->pos == NULL || w->failed || len == 0) {
        return;
    }

    if (w->end && (size_t) (w->end - w->pos) < len) {
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
static inline void
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


/*
 * The bytes each byte takes in a JSON string beyond itself, as cJSON
 * escapes: 1 for \" \\ \b \f \n \r \t, 5 for other control characters
 * (\u00XX), 0 for the rest, which are written as they are.
 */
static const unsigned char  ngx_geostream_jw_escape[256] = {
    5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 1, 1, 5, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
};


/* bytes of "s" as a JSON string, quotes included */
static size_t
ngx_geostream_jw_string_size(const char *s, size_t len)
{
    size_t                size;
    const unsigned char  *p, *last;

    size = len + 2;
    last = (const unsigned char *) s + len;

    for (p = (const unsigned char *) s; p < last; p++) {
        size += ngx_geostream_jw_escape[*p];
    }

    return size;
}


/*
 * "s" quoted and escaped.  With room for the worst (every byte \u00XX)
 * it is written in one pass; else it is measured first, to fail rather
 * than overrun.
 */
static void
ngx_geostream_jw_quoted(ngx_geostream_json_writer_t *w, const char *s,
    size_t len)
{
    unsigned char         c, *dst;
    const unsigned char  *p, *last;
    static const char     hex[] = "0123456789abcdef";

    if (w->pos == NULL || w->failed) {
        w->size += ngx_geostream_jw_string_size(s, len);
        return;
    }

    if (w->end && (size_t) (w->end - w->pos) / 6 < len + 1
        && (size_t) (w->end - w->pos) < ngx_geostream_jw_string_size(s, len))
    {
        w->size += ngx_geostream_jw_string_size(s, len);
        w->failed = 1;
        return;
    }

    dst = w->pos;
    *dst++ = '"';

    last = (const unsigned char *) s + len;

    for (p = (const unsigned char *) s; p < last; p++) {
        c = *p;

        if (ngx_geostream_jw_escape[c] == 0) {
            *dst++ = c;
            continue;
        }

        *dst++ = '\\';

        switch (c) {
        case '"':  *dst++ = '"'; break;
        case '\\': *dst++ = '\\'; break;
        case '\b': *dst++ = 'b'; break;
        case '\f': *dst++ = 'f'; break;
        case '\n': *dst++ = 'n'; break;
        case '\r': *dst++ = 'r'; break;
        case '\t': *dst++ = 't'; break;

        default:
            memcpy(dst, "u00", 3);
            dst[3] = hex[c >> 4];
            dst[4] = hex[c & 0xf];
            dst += 5;
        }
    }

    *dst++ = '"';

    w->size += dst - w->pos;
    w->pos = dst;
}


void
ngx_geostream_jw_string(ngx_geostream_json_writer_t *w, const char *s,
    size_t len)
{
    ngx_geostream_jw_value(w);
    ngx_geostream_jw_quoted(w, s, len);
}


/* the digits of "u", "neg" with a minus: snprintf() is slow for this */
static void
ngx_geostream_jw_digits(ngx_geostream_json_writer_t *w, uint64_t u, int neg)
{
    size_t          n;
    uint64_t        t;
    unsigned char   buf[sizeof("-18446744073709551615")], *p;

    ngx_geostream_jw_value(w);

    if (w->pos == NULL) {
        /* only measuring: the count of digits is enough */
        for (n = 1, t = 10; n < 20 && u >= t; t *= 10) {
            n++;
        }

        w->size += n + (neg ? 1 : 0);
        return;
    }

    p = buf + sizeof(buf);

    do {
        *--p = (unsigned char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (neg) {
        *--p = '-';
    }

    ngx_geostream_jw_put(w, p, buf + sizeof(buf) - p);
}


void
ngx_geostream_jw_int(ngx_geostream_json_writer_t *w, int64_t v)
{
    ngx_geostream_jw_digits(w, (v < 0) ? 0 - (uint64_t) v : (uint64_t) v,
                            v < 0);
}


void
ngx_geostream_jw_uint(ngx_geostream_json_writer_t *w, uint64_t v)
{
    ngx_geostream_jw_digits(w, v, 0);
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
