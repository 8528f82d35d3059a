/*
 * libFuzzer target: cursors (Last-Event-ID), ngx_geostream_cursor_parse().
 * What it takes is exactly the grammar: "p:offset" pairs separated by
 * commas, digits only, each partition below the limit and named once,
 * each offset within int64, the whole within NGX_GEOSTREAM_CURSOR_LEN_MAX;
 * printed back, it parses to the same offsets.
 */

#include "fuzz.h"
#include "ngx_geostream_history.h"


#define FUZZ_PARTITIONS  64


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int       n, m;
    char     *text, *p;
    size_t    i, commas;
    int64_t   offsets[FUZZ_PARTITIONS], again[FUZZ_PARTITIONS];

    n = ngx_geostream_cursor_parse(data, size, offsets, FUZZ_PARTITIONS);

    fuzz_assert(n >= -1 && n <= FUZZ_PARTITIONS);

    if (n < 0) {
        return 0;
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

    /* printed back, every partition: the same cursor */
    text = malloc((size_t) n * 48 + 1);
    fuzz_assert(text != NULL);

    for (p = text, i = 0; i < (size_t) n; i++) {
        fuzz_assert(offsets[i] >= 0);
        p += sprintf(p, "%s%zu:%lld", i ? "," : "", i,
                     (long long) offsets[i]);
    }

    m = ngx_geostream_cursor_parse((const unsigned char *) text, p - text,
                                   again, FUZZ_PARTITIONS);
    fuzz_assert(m == n
                && memcmp(offsets, again, n * sizeof(int64_t)) == 0);

    free(text);

    return 0;
}
