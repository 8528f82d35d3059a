/*
 * geostream: nginx as a live geodata gateway for Apache Kafka.
 *
 * Declarations shared by the module's files.
 */

#ifndef _NGX_HTTP_GEOSTREAM_MODULE_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_geostream_filter.h"
#include "ngx_geostream_history.h"
#include "ngx_geostream_kafka.h"
#include "ngx_geostream_message.h"


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


/* a request's state in the module */
typedef struct {
    ngx_str_t                   topic;          /* producer locations */
    void                       *subscriber;     /* consumer locations */
    ngx_str_t                   error_json;     /* set by the error filter */
} ngx_http_geostream_ctx_t;


extern ngx_module_t  ngx_http_geostream_module;


ngx_int_t ngx_http_geostream_producer_handler(ngx_http_request_t *r);
void ngx_http_geostream_producer_init(uint32_t batch_rate);
void ngx_http_geostream_producer_stop(void);
void ngx_http_geostream_producer_exit(void);
ngx_int_t ngx_http_geostream_producer_status(cJSON *producer);
void ngx_http_geostream_producer_delivered(const rd_kafka_message_t *msg);
ngx_int_t ngx_http_geostream_status_handler(ngx_http_request_t *r);

/* the instance's counters (ngx_http_geostream_stats.c) */
ngx_shm_zone_t *ngx_http_geostream_stats_zone(ngx_conf_t *cf);
void ngx_http_geostream_stats_attach(ngx_shm_zone_t *zone, ngx_log_t *log);
void ngx_http_geostream_stats_total(ngx_shm_zone_t *zone,
    ngx_geostream_stats_t *total);
ngx_int_t ngx_http_geostream_error_filter_init(ngx_conf_t *cf);

ngx_int_t ngx_http_geostream_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *json, size_t len);
ngx_int_t ngx_http_geostream_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b);
ngx_int_t ngx_http_geostream_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *fmt, ...);
ngx_int_t ngx_http_geostream_add_header(ngx_http_request_t *r, char *key,
    char *value);
ngx_int_t ngx_http_geostream_topic(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_str_t *topic);
ngx_int_t ngx_http_geostream_topic_check(ngx_http_request_t *r,
    ngx_str_t *topic);
ngx_int_t ngx_http_geostream_topic_error(ngx_http_request_t *r,
    ngx_int_t rc, ngx_str_t *topic);
ngx_int_t ngx_http_geostream_ndjson(ngx_http_request_t *r);
ngx_int_t ngx_http_geostream_unescape(ngx_http_request_t *r,
    ngx_str_t *value);

extern ngx_uint_t  ngx_http_geostream_history_size;
extern size_t      ngx_http_geostream_history_bytes;
ngx_uint_t ngx_http_geostream_is_type(ngx_str_t *type, const char *mime);


#endif /* _NGX_HTTP_GEOSTREAM_MODULE_H_INCLUDED_ */
