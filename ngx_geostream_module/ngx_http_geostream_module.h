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


extern ngx_module_t  ngx_http_geostream_module;


ngx_int_t ngx_http_geostream_producer_handler(ngx_http_request_t *r);
void ngx_http_geostream_producer_init(uint32_t batch_rate);
void ngx_http_geostream_producer_stop(void);
void ngx_http_geostream_producer_exit(void);
ngx_int_t ngx_http_geostream_producer_status(cJSON *producer);
void ngx_http_geostream_producer_delivered(const rd_kafka_message_t *msg);

extern ngx_uint_t  ngx_http_geostream_history_size;
extern size_t      ngx_http_geostream_history_bytes;


/*
 * Leftovers, for the lead: the producer's and the consumer's
 * declarations above (their helpers move them to their own headers), the
 * history globals (into the worker's state), and these headers that
 * producer.c, consumer.c and subscriber.c include through this one until
 * they include what they use.
 */

#include "ngx_http_geostream_answer.h"
#include "ngx_http_geostream_request.h"


#endif /* _NGX_HTTP_GEOSTREAM_MODULE_H_INCLUDED_ */
