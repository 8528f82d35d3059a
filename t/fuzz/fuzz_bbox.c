/*
 * libFuzzer target: bbox=, ngx_geostream_filter_bbox().  What it takes is
 * four plain decimals (-?[0-9]+(.[0-9]+)?) within the world, south not
 * north of north; matching any point afterwards is well defined.
 */

#include "fuzz.h"
#include "ngx_geostream_filter.h"


static int
plain_decimal(const unsigned char *p, size_t len)
{
    size_t  i, digits;

    i = (len > 0 && p[0] == '-');

    for (digits = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
        digits++;
    }

    if (digits == 0) {
        return 0;
    }

    if (i < len && p[i] == '.') {
        for (i++, digits = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            digits++;
        }

        if (digits == 0) {
            return 0;
        }
    }

    return i == len && len <= NGX_GEOSTREAM_FILTER_NUMBER_MAX;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                      k;
    size_t                   start, i;
    ngx_geostream_filter_t   f;

    memset(&f, 0, sizeof(f));

    if (ngx_geostream_filter_bbox(&f, data, size) != 0) {
        fuzz_assert(!f.has_bbox);
        return 0;
    }

    fuzz_assert(f.has_bbox
                && f.west >= -180 && f.west <= 180
                && f.east >= -180 && f.east <= 180
                && f.south >= -90 && f.north <= 90 && f.south <= f.north);

    /* exactly four plain decimals */
    for (k = 0, start = 0, i = 0; i <= size; i++) {
        if (i == size || data[i] == ',') {
            fuzz_assert(plain_decimal(data + start, i - start));
            k++;
            start = i + 1;
        }
    }

    fuzz_assert(k == 4);

    (void) ngx_geostream_filter_match(&f, (const unsigned char *) "x", 1,
                                      (f.south + f.north) / 2, f.west);

    return 0;
}
