/*
 * The instance's counters in shared memory: a slot per worker, added up
 * for the status location (see ngx_http_geostream_stats.c).
 */

#ifndef _NGX_HTTP_GEOSTREAM_STATS_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_STATS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_geostream_stats.h"


/* the zone, added while the configuration is read; NULL: failed */
ngx_shm_zone_t *ngx_http_geostream_stats_zone(ngx_conf_t *cf);

/*
 * A starting worker takes a slot to count in: NULL when there is none
 * (then its counts are its own, not on the status page)
 */
ngx_geostream_stats_t *ngx_http_geostream_stats_attach(ngx_shm_zone_t *zone,
    ngx_log_t *log);

/*
 * every worker's counters, those of gone ones too: the whole instance;
 * without a zone, the worker's own ("mine")
 */
void ngx_http_geostream_stats_total(ngx_shm_zone_t *zone,
    ngx_geostream_stats_t *mine, ngx_geostream_stats_t *total);


#endif /* _NGX_HTTP_GEOSTREAM_STATS_H_INCLUDED_ */
