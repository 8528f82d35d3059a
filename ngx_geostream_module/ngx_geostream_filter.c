/*
 * Per-subscriber filters.  Plain C: see the header.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_filter.h"
#include "ngx_geostream_message.h"


/*
 * One number of a comma-separated list, a plain decimal:
 * -?[0-9]+(\.[0-9]+)?, as a map prints it.  strtod() alone would also take
 * "0x10", "inf", "1e2" or " 1".  "*p" moves past it and its comma.
 */
static int
ngx_geostream_filter_number(const unsigned char **p,
    const unsigned char *last, int final, double *value)
{
    char                  buf[NGX_GEOSTREAM_FILTER_NUMBER_MAX + 1];
    size_t                n, i;
    const unsigned char  *comma;

    comma = memchr(*p, ',', last - *p);

    if ((comma == NULL) != final) {
        return -1;
    }

    n = (comma ? comma : last) - *p;

    if (n == 0 || n > NGX_GEOSTREAM_FILTER_NUMBER_MAX) {
        return -1;
    }

    memcpy(buf, *p, n);
    buf[n] = '\0';

    i = (buf[0] == '-');

    if (i == n || buf[i] < '0' || buf[i] > '9') {
        return -1;
    }

    while (i < n && buf[i] >= '0' && buf[i] <= '9') {
        i++;
    }

    if (i < n && buf[i] == '.') {
        if (++i == n) {
            return -1;
        }

        while (i < n && buf[i] >= '0' && buf[i] <= '9') {
            i++;
        }
    }

    if (i != n) {
        return -1;
    }

    /* nginx never calls setlocale(): the decimal point is '.' */
    *value = strtod(buf, NULL);

    *p += n + (comma ? 1 : 0);

    return 0;
}


int
ngx_geostream_filter_bbox(ngx_geostream_filter_t *f,
    const unsigned char *data, size_t len)
{
    double                w, s, e, n;
    const unsigned char  *p, *last;

    p = data;
    last = data + len;

    if (ngx_geostream_filter_number(&p, last, 0, &w) != 0
        || ngx_geostream_filter_number(&p, last, 0, &s) != 0
        || ngx_geostream_filter_number(&p, last, 0, &e) != 0
        || ngx_geostream_filter_number(&p, last, 1, &n) != 0)
    {
        return -1;
    }

    if (w < -180 || w > 180 || e < -180 || e > 180
        || s < -90 || s > 90 || n < -90 || n > 90 || s > n)
    {
        return -1;
    }

    f->has_bbox = 1;
    f->west = w;
    f->south = s;
    f->east = e;
    f->north = n;

    return 0;
}


int
ngx_geostream_filter_names(ngx_geostream_filter_t *f,
    const unsigned char *data, size_t len, ngx_geostream_name_t *names,
    size_t max)
{
    const unsigned char  *p, *last, *comma;

    f->nnames = 0;
    f->names = names;
    last = data + len;

    for (p = data; p <= last; p = comma + 1) {
        comma = memchr(p, ',', last - p);

        if (comma == NULL) {
            comma = last;
        }

        /* as a position's name could be: the filter could match it */
        if (comma == p || f->nnames == max
            || (size_t) (comma - p) > NGX_GEOSTREAM_NAME_MAX
            || !ngx_geostream_utf8_valid(p, comma - p)
            || ngx_geostream_utf8_has_control(p, comma - p))
        {
            f->nnames = 0;
            return -1;
        }

        f->names[f->nnames].data = p;
        f->names[f->nnames].len = comma - p;
        f->nnames++;
    }

    return 0;
}


int
ngx_geostream_filter_match(const ngx_geostream_filter_t *f,
    const unsigned char *name, size_t name_len, double lat, double lon)
{
    size_t  i;

    if (f->has_bbox) {
        if (lat < f->south || lat > f->north) {
            return 0;
        }

        if (f->west <= f->east) {
            if (lon < f->west || lon > f->east) {
                return 0;
            }

        } else if (lon < f->west && lon > f->east) {
            return 0;           /* outside a box across the antimeridian */
        }
    }

    if (f->nnames == 0) {
        return 1;
    }

    for (i = 0; i < f->nnames; i++) {
        if (f->names[i].len == name_len
            && memcmp(f->names[i].data, name, name_len) == 0)
        {
            return 1;
        }
    }

    return 0;
}
