/*
 * Per-subscriber filters: a bounding box and a list of entity names.
 *
 * Plain C, like ngx_geostream_message.[ch]: no nginx needed, so unit tests
 * and fuzzers reach it.
 */

#ifndef _NGX_GEOSTREAM_FILTER_H_INCLUDED_
#define _NGX_GEOSTREAM_FILTER_H_INCLUDED_


#include <stddef.h>


#define NGX_GEOSTREAM_FILTER_NAMES_MAX   64

/* "-180.000000000000": a longer bbox number is no more precise */
#define NGX_GEOSTREAM_FILTER_NUMBER_MAX  32


typedef struct {
    const unsigned char  *data;
    size_t                len;
} ngx_geostream_name_t;


/*
 * Every subscriber has one, so it is small: the names live in storage the
 * caller gives only when there is a name filter.
 */
typedef struct {
    int                   has_bbox;
    double                west, south, east, north;
    size_t                nnames;      /* 0: every name */
    ngx_geostream_name_t *names;
} ngx_geostream_filter_t;


/*
 * "west,south,east,north" in degrees, each a plain decimal
 * (-?[0-9]+(.[0-9]+)?, at most 32 characters).  west > east is a box that
 * crosses the antimeridian.  Returns 0, or -1 when the box is malformed.
 */
int ngx_geostream_filter_bbox(ngx_geostream_filter_t *f,
    const unsigned char *data, size_t len);

/*
 * "a,b,c": the names to keep, at most "max", kept in "names" (storage for
 * "max" of them).  The filter points into "data" and "names", which must
 * outlive it.  Returns 0, or -1 when there are too many, or one that no
 * position could have: empty, over NGX_GEOSTREAM_NAME_MAX bytes, not
 * UTF-8, or with a control character.
 */
int ngx_geostream_filter_names(ngx_geostream_filter_t *f,
    const unsigned char *data, size_t len, ngx_geostream_name_t *names,
    size_t max);

/* 1 when a position passes the filter */
int ngx_geostream_filter_match(const ngx_geostream_filter_t *f,
    const unsigned char *name, size_t name_len, double lat, double lon);


#endif /* _NGX_GEOSTREAM_FILTER_H_INCLUDED_ */
