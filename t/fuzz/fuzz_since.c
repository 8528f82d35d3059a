/*
 * libFuzzer target: since=, ngx_geostream_since_parse().  What it takes
 * is latest, beginning, digits, or number-unit pairs; a time is never
 * negative nor after "now" for a duration; nothing overflows (UBSan).
 */

#include "fuzz.h"
#include "ngx_geostream_history.h"


#define FUZZ_NOW  1700000000000LL


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int      rc, digits_only;
    size_t   i;
    int64_t  since;

    rc = ngx_geostream_since_parse(data, size, FUZZ_NOW, &since);

    fuzz_assert(rc == -1 || rc == NGX_GEOSTREAM_SINCE_LATEST
                || rc == NGX_GEOSTREAM_SINCE_BEGINNING
                || rc == NGX_GEOSTREAM_SINCE_TIME);

    if (rc != NGX_GEOSTREAM_SINCE_TIME) {
        return 0;
    }

    fuzz_assert(size > 0 && size <= NGX_GEOSTREAM_SINCE_LEN_MAX);
    fuzz_assert(since >= 0);

    digits_only = 1;

    for (i = 0; i < size; i++) {
        fuzz_assert(strchr("0123456789yMwdhms", data[i]) != NULL
                    && data[i] != '\0');
        digits_only &= (data[i] >= '0' && data[i] <= '9');
    }

    /* a duration goes back from now, never forward */
    fuzz_assert(digits_only || since <= FUZZ_NOW);

    return 0;
}
