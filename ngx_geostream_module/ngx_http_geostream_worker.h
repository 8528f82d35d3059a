/*
 * A worker's state, in one struct: its Kafka producers, its reader and
 * replay threads, its topics and their subscribers, and its slot of the
 * instance's counters; and the worker's start and exit, in the order the
 * parts depend on each other.
 *
 * Each part is a mechanism with its own header whose functions take a
 * pointer to their part; this file only holds them and starts and stops
 * them.  Locations reach the worker's parts through
 * ngx_http_geostream_worker.
 */

#ifndef _NGX_HTTP_GEOSTREAM_WORKER_H_INCLUDED_
#define _NGX_HTTP_GEOSTREAM_WORKER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_topics.h"
#include "ngx_geostream_kafka_conf.h"
#include "ngx_geostream_producer.h"
#include "ngx_geostream_reader.h"
#include "ngx_geostream_replay.h"
#include "ngx_geostream_stats.h"


typedef struct {
    ngx_cycle_t                      *cycle;
    ngx_http_geostream_main_conf_t   *conf;     /* NULL: not started */

    /* the worker's slot of the counters (ngx_http_geostream_stats.c) */
    ngx_geostream_stats_t            *stats;
    ngx_geostream_stats_t             stats_local;  /* when it has none */

    ngx_geostream_producers_t         producers;
    ngx_geostream_reader_t            reader;
    ngx_geostream_replayer_t          replayer;
    ngx_http_geostream_topics_t       topics;
} ngx_http_geostream_worker_t;


/*
 * Starts what the worker needs; its producers and its slot of the
 * counters only when it has Kafka brokers to talk to (without, it counts
 * for itself).  A worker whose producers cannot start still serves
 * everything else, and its produce requests are refused (NGX_ERROR is
 * logged, not fatal).  "delivered" is the producer location's callback
 * for the reports its requests wait for.
 */
ngx_int_t ngx_http_geostream_worker_init(ngx_cycle_t *cycle,
    ngx_http_geostream_main_conf_t *gmcf,
    ngx_geostream_delivered_pt delivered);

/*
 * The worker's exit: streams are ended (reset when their client has not
 * read all), then one deadline for all the worker waits for (threads,
 * deliveries), then what it allocated is freed, so that memcheck's leak
 * report (make test-valgrind) shows only real leaks.
 */
void ngx_http_geostream_worker_exit(ngx_cycle_t *cycle);


extern ngx_http_geostream_worker_t  ngx_http_geostream_worker;


#endif /* _NGX_HTTP_GEOSTREAM_WORKER_H_INCLUDED_ */
