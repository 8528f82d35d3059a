/*
 * geostream: nginx as a live geodata gateway for Apache Kafka.
 *
 * The module's configuration: its main and location configuration and
 * the module itself.
 */

#ifndef _NGX_HTTP_GEOSTREAM_MODULE_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_geostream_kafka_conf.h"


typedef struct {
    ngx_geostream_kafka_conf_t  kafka;
    ngx_uint_t                  history;        /* events per topic */
    size_t                      history_bytes;  /* their bytes */
    ngx_shm_zone_t             *stats_zone;     /* the workers' counters */
} ngx_http_geostream_main_conf_t;


typedef struct {
    ngx_http_complex_value_t   *produce;
    ngx_http_complex_value_t   *key;
    ngx_flag_t                  wait;
    ngx_http_complex_value_t   *consume;
#if (NGX_PCRE)
    ngx_regex_t                *topics;         /* allow-list */
#endif
    ngx_uint_t                  status;         /* NGX_HTTP_GEOSTREAM_* */
    ngx_msec_t                  heartbeat;
    ngx_msec_t                  lifetime;
    ngx_flag_t                  detach;         /* streams leave requests */
    size_t                      backlog;
} ngx_http_geostream_loc_conf_t;


/* what a status location answers */
#define NGX_HTTP_GEOSTREAM_STATUS_JSON        1
#define NGX_HTTP_GEOSTREAM_STATUS_PROMETHEUS  2


extern ngx_module_t  ngx_http_geostream_module;


#endif /* _NGX_HTTP_GEOSTREAM_MODULE_H_INCLUDED_ */
