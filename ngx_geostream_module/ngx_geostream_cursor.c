/*
 * Cursors and the ids of streams of several topics.  Plain C: see the
 * header.
 */

#include <string.h>

#include "ngx_geostream_cursor.h"


static size_t ngx_geostream_int_len(int64_t v);
static unsigned char *ngx_geostream_int_write(unsigned char *dst,
    int64_t v);


/* the digits of "v", its sign too */
static size_t
ngx_geostream_int_len(int64_t v)
{
    size_t    len;
    uint64_t  u;

    len = (v < 0);
    u = (v < 0) ? 0 - (uint64_t) v : (uint64_t) v;

    do {
        len++;
        u /= 10;
    } while (u);

    return len;
}


static unsigned char *
ngx_geostream_int_write(unsigned char *dst, int64_t v)
{
    size_t          len;
    uint64_t        u;
    unsigned char  *p;

    len = ngx_geostream_int_len(v);
    u = (v < 0) ? 0 - (uint64_t) v : (uint64_t) v;

    if (v < 0) {
        *dst = '-';
    }

    for (p = dst + len; p > dst + (v < 0); u /= 10) {
        *--p = (unsigned char) ('0' + u % 10);
    }

    return dst + len;
}


size_t
ngx_geostream_cursor_len(const ngx_geostream_cursor_t *c)
{
    size_t  i, len;

    len = 0;

    for (i = 0; i < c->n; i++) {
        len += (i ? 1 : 0) + ngx_geostream_int_len((int64_t) i) + 1
               + ngx_geostream_int_len(c->next[i]);
    }

    return len;
}


unsigned char *
ngx_geostream_cursor_write(unsigned char *dst,
    const ngx_geostream_cursor_t *c)
{
    size_t  i;

    for (i = 0; i < c->n; i++) {
        if (i) {
            *dst++ = ',';
        }

        dst = ngx_geostream_int_write(dst, (int64_t) i);
        *dst++ = ':';
        dst = ngx_geostream_int_write(dst, c->next[i]);
    }

    return dst;
}


int
ngx_geostream_cursor_parse(const unsigned char *data, size_t len,
    int64_t *offsets, size_t max)
{
    size_t                n, named_len;
    int64_t               partition, offset, *value;
    unsigned char         named[NGX_GEOSTREAM_PARTITIONS_MAX];
    const unsigned char  *p, *last;

    memset(offsets, 0, max * sizeof(int64_t));

    n = 0;
    p = data;
    last = data + len;

    if (len == 0 || len > NGX_GEOSTREAM_CURSOR_LEN_MAX) {
        return -1;
    }

    /* which partitions the cursor named: none twice */
    named_len = max < sizeof(named) ? max : sizeof(named);
    memset(named, 0, named_len);

    while (p < last) {
        partition = 0;
        offset = 0;

        for (value = &partition; value; /* void */) {
            if (p == last || *p < '0' || *p > '9') {
                return -1;
            }

            for ( /* void */ ; p < last && *p >= '0' && *p <= '9'; p++) {
                /* a Kafka offset is an int64: nothing past INT64_MAX */
                if (*value > (INT64_MAX - (*p - '0')) / 10) {
                    return -1;
                }

                *value = *value * 10 + (*p - '0');
            }

            if (value == &partition) {
                if (p == last || *p != ':') {
                    return -1;
                }

                p++;
                value = &offset;

            } else {
                value = NULL;
            }
        }

        if (partition >= (int64_t) named_len || named[partition]) {
            return -1;
        }

        named[partition] = 1;
        offsets[partition] = offset;

        if ((size_t) partition + 1 > n) {
            n = (size_t) partition + 1;
        }

        if (p < last) {
            if (*p != ',' || p + 1 == last) {
                return -1;
            }

            p++;
        }
    }

    return (int) n;
}


int
ngx_geostream_stream_id_single(const unsigned char *id, size_t len)
{
    return len == 0 || memchr(id, '=', len) == NULL;
}


int
ngx_geostream_stream_id_next(const unsigned char **p,
    const unsigned char *last, ngx_geostream_stream_part_t *part)
{
    const unsigned char  *start, *end, *eq;

    start = *p;

    if (start >= last) {
        return 0;
    }

    end = memchr(start, ';', last - start);
    if (end == NULL) {
        end = last;
    }

    *p = (end < last) ? end + 1 : last;

    eq = memchr(start, '=', end - start);
    if (eq == NULL) {
        return -1;
    }

    part->topic = start;
    part->topic_len = eq - start;
    part->cursor = NULL;
    part->text = eq + 1;
    part->text_len = end - eq - 1;

    return 1;
}


int
ngx_geostream_stream_id_find(const unsigned char *id, size_t len,
    const unsigned char *topic, size_t topic_len,
    const unsigned char **cursor, size_t *cursor_len)
{
    int                           rc, found;
    const unsigned char          *p;
    ngx_geostream_stream_part_t   part;

    found = 0;
    p = id;

    while ((rc = ngx_geostream_stream_id_next(&p, id + len, &part)) != 0) {
        if (rc < 0) {
            return -1;
        }

        if (part.topic_len == topic_len
            && (topic_len == 0 || memcmp(part.topic, topic, topic_len) == 0))
        {
            *cursor = part.text;
            *cursor_len = part.text_len;
            found = 1;
        }
    }

    return found;
}


size_t
ngx_geostream_stream_id_len(const ngx_geostream_stream_part_t *parts,
    size_t n)
{
    size_t  i, len;

    len = 0;

    for (i = 0; i < n; i++) {
        len += (i ? 1 : 0) + parts[i].topic_len + 1
               + (parts[i].cursor ? ngx_geostream_cursor_len(parts[i].cursor)
                                  : parts[i].text_len);
    }

    return len;
}


unsigned char *
ngx_geostream_stream_id_write(unsigned char *dst,
    const ngx_geostream_stream_part_t *parts, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (i) {
            *dst++ = ';';
        }

        if (parts[i].topic_len) {
            memcpy(dst, parts[i].topic, parts[i].topic_len);
            dst += parts[i].topic_len;
        }

        *dst++ = '=';

        if (parts[i].cursor) {
            dst = ngx_geostream_cursor_write(dst, parts[i].cursor);

        } else if (parts[i].text_len) {
            memcpy(dst, parts[i].text, parts[i].text_len);
            dst += parts[i].text_len;
        }
    }

    return dst;
}
