/*
 * libFuzzer target: cursors (Last-Event-ID), ngx_geostream_cursor.c.
 * What ngx_geostream_cursor_parse() takes is exactly the grammar:
 * "p:offset" pairs separated by commas, digits only, each partition below
 * the limit and named once, each offset within int64, the whole within
 * NGX_GEOSTREAM_CURSOR_LEN_MAX; written back by ngx_geostream_cursor_write()
 * (exactly ngx_geostream_cursor_len() bytes), it parses to the same
 * offsets.  The same bytes as a stream's id: every pair that
 * ngx_geostream_stream_id_next() reads is found again, and ids written
 * from them read back the same.
 */

#include "fuzz.h"
#include "ngx_geostream_cursor.h"


#define FUZZ_PARTITIONS  64
#define FUZZ_PARTS       16


static void
fuzz_cursor(const uint8_t *data, size_t size)
{
    int                      n, m;
    size_t                   i, commas, len;
    int64_t                  offsets[FUZZ_PARTITIONS], again[FUZZ_PARTITIONS];
    unsigned char           *text, *end;
    ngx_geostream_cursor_t   c;

    n = ngx_geostream_cursor_parse(data, size, offsets, FUZZ_PARTITIONS);

    fuzz_assert(n >= -1 && n <= FUZZ_PARTITIONS);

    if (n < 0) {
        return;
    }

    fuzz_assert(size > 0 && size <= NGX_GEOSTREAM_CURSOR_LEN_MAX);

    /* digits, one colon a pair, commas between pairs, nothing else */
    commas = 0;

    for (i = 0; i < size; i++) {
        fuzz_assert((data[i] >= '0' && data[i] <= '9') || data[i] == ':'
                    || data[i] == ',');
        commas += (data[i] == ',');
    }

    /* distinct partitions: as many as pairs at least */
    fuzz_assert(commas + 1 <= (size_t) n);

    /* written back, every partition: the same cursor */
    c.next = offsets;
    c.n = (size_t) n;
    len = ngx_geostream_cursor_len(&c);

    fuzz_assert(len <= NGX_GEOSTREAM_CURSOR_LEN_MAX);

    text = malloc(len + 1);
    fuzz_assert(text != NULL);

    for (i = 0; i < (size_t) n; i++) {
        fuzz_assert(offsets[i] >= 0);
    }

    end = ngx_geostream_cursor_write(text, &c);
    fuzz_assert((size_t) (end - text) == len);

    m = ngx_geostream_cursor_parse(text, len, again, FUZZ_PARTITIONS);
    fuzz_assert(m == n
                && memcmp(offsets, again, n * sizeof(int64_t)) == 0);

    free(text);
}


static void
fuzz_stream_id(const uint8_t *data, size_t size)
{
    int                           rc, found;
    size_t                        n, i, len, clen;
    unsigned char                *id, *end;
    const unsigned char          *p, *cursor;
    ngx_geostream_stream_part_t   parts[FUZZ_PARTS], part;

    if (ngx_geostream_stream_id_single(data, size)) {
        fuzz_assert(size == 0 || memchr(data, '=', size) == NULL);
        return;
    }

    n = 0;
    p = data;

    while ((rc = ngx_geostream_stream_id_next(&p, data + size, &part)) == 1)
    {
        fuzz_assert(part.topic >= data && part.text >= part.topic
                    && part.text + part.text_len <= data + size
                    && part.text[-1] == '='
                    && memchr(part.topic, '=', part.topic_len) == NULL
                    && (part.text_len == 0
                        || memchr(part.text, ';', part.text_len) == NULL));

        /* found again (or the id is malformed further on) */
        found = ngx_geostream_stream_id_find(data, size, part.topic,
                                             part.topic_len, &cursor, &clen);
        fuzz_assert(found != 0);

        if (n < FUZZ_PARTS) {
            parts[n++] = part;
        }
    }

    fuzz_assert(rc == 0 || rc == -1);

    if (rc == -1) {
        fuzz_assert(ngx_geostream_stream_id_find(data, size,
                                                 (const unsigned char *) "",
                                                 0, &cursor, &clen)
                    == -1);
        return;
    }

    /* written from its parts: the same pairs, one ';' apart */
    len = ngx_geostream_stream_id_len(parts, n);
    id = malloc(len + 1);
    fuzz_assert(id != NULL);

    end = ngx_geostream_stream_id_write(id, parts, n);
    fuzz_assert((size_t) (end - id) == len);

    p = id;

    for (i = 0; i < n; i++) {
        fuzz_assert(ngx_geostream_stream_id_next(&p, id + len, &part) == 1
                    && part.topic_len == parts[i].topic_len
                    && part.text_len == parts[i].text_len
                    && memcmp(part.topic, parts[i].topic, part.topic_len)
                       == 0
                    && memcmp(part.text, parts[i].text, part.text_len) == 0);
    }

    fuzz_assert(ngx_geostream_stream_id_next(&p, id + len, &part) == 0);

    free(id);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_cursor(data, size);
    fuzz_stream_id(data, size);

    return 0;
}
