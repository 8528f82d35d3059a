/*
 * The instance's counters in shared memory: a slot per worker, added up
 * for the status location (see ngx_http_geostream_stats.c).
 */

#ifndef _NGX_HTTP_GEOSTREAM_STATS_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_STATS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_geostream_kafka.h"            /* ngx_geostream_stats_t */


/* the zone, added while the configuration is read; NULL: failed */
ngx_shm_zone_t *ngx_http_geostream_stats_zone(ngx_conf_t *cf);

/* a starting worker takes a slot and counts in it (ngx_geostream_stats) */
void ngx_http_geostream_stats_attach(ngx_shm_zone_t *zone, ngx_log_t *log);

/* every worker's counters, those of gone ones too: the whole instance */
void ngx_http_geostream_stats_total(ngx_shm_zone_t *zone,
    ngx_geostream_stats_t *total);


#endif /* _NGX_HTTP_GEOSTREAM_STATS_H_INCLUDED_ */
