/*
 * libFuzzer target: name=, ngx_geostream_filter_names().  What it takes
 * is 1 to NGX_GEOSTREAM_FILTER_NAMES_MAX names, each 1 to
 * NGX_GEOSTREAM_NAME_MAX bytes of UTF-8 without control characters, that
 * cover the input exactly; each name matches itself.
 */

#include "fuzz.h"
#include "ngx_geostream_filter.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                   i, total;
    ngx_geostream_name_t     names[NGX_GEOSTREAM_FILTER_NAMES_MAX];
    ngx_geostream_filter_t   f;

    memset(&f, 0, sizeof(f));

    if (ngx_geostream_filter_names(&f, data, size, names,
                                   NGX_GEOSTREAM_FILTER_NAMES_MAX)
        != 0)
    {
        fuzz_assert(f.nnames == 0);
        return 0;
    }

    fuzz_assert(f.nnames >= 1 && f.nnames <= NGX_GEOSTREAM_FILTER_NAMES_MAX);

    total = 0;

    for (i = 0; i < f.nnames; i++) {
        fuzz_assert(f.names[i].len >= 1
                    && f.names[i].len <= NGX_GEOSTREAM_NAME_MAX
                    && f.names[i].data >= data
                    && f.names[i].data + f.names[i].len <= data + size
                    && memchr(f.names[i].data, ',', f.names[i].len) == NULL
                    && ngx_geostream_utf8_valid(f.names[i].data,
                                                f.names[i].len)
                    && !ngx_geostream_utf8_has_control(f.names[i].data,
                                                       f.names[i].len));

        fuzz_assert(ngx_geostream_filter_match(&f, f.names[i].data,
                                               f.names[i].len, 0, 0));
        total += f.names[i].len;
    }

    /* the names and their commas are the whole input */
    fuzz_assert(total + f.nnames - 1 == size);

    return 0;
}
