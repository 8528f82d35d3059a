/*
 * librdkafka's configuration of a worker's handles: geostream's defaults
 * and the configured properties as an rd_kafka_conf_t, their check for
 * "nginx -t", the log callback, and the worker's consumer handles (the
 * reader thread's and the replay thread's).
 */

#ifndef _NGX_GEOSTREAM_KAFKA_CONF_H_INCLUDED_
#define _NGX_GEOSTREAM_KAFKA_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

/*
 * librdkafka's types go by their struct tags here, so that the
 * configuration's users (the module's configuration) need no rdkafka.h
 */
struct rd_kafka_s;
struct rd_kafka_conf_s;


typedef struct {
    ngx_str_t                   brokers;
    ngx_array_t                *options;            /* ngx_keyval_t */
    ngx_array_t                *producer_options;   /* ngx_keyval_t */
    ngx_array_t                *consumer_options;   /* ngx_keyval_t */
    ngx_msec_t                  flush_timeout;
    ngx_msec_t                  down_grace;         /* brokers down: 503 */
    ngx_int_t                   batch_rate;         /* messages/s */
    ngx_uint_t                  prompt_producer;    /* a location uses it */
    ngx_uint_t                  waiting_location;
} ngx_geostream_kafka_conf_t;


/*
 * Called on the thread that polls a consumer handle when librdkafka says
 * that all its brokers are down (the reader then checks, once they are
 * back, whether Kafka came back empty).
 */
typedef void (*ngx_geostream_kafka_down_pt)(void *data);


/*
 * What a consumer handle's callbacks need, in its owner's memory for the
 * handle's life: librdkafka hands it to them as the handle's opaque.
 */
typedef struct {
    ngx_log_t                    *log;
    ngx_geostream_kafka_down_pt   down;         /* NULL: not wanted */
    void                         *data;
} ngx_geostream_kafka_client_t;


/* checks every configured librdkafka property; for "nginx -t" */
char *ngx_geostream_kafka_check_conf(ngx_conf_t *cf,
    ngx_geostream_kafka_conf_t *kcf);

/*
 * Defaults, then the configured properties, for a handle of "type"
 * (rd_kafka_type_t); "prompt": for the prompt producer, which batches for
 * less.  NULL (and logged) when a property is refused.
 */
struct rd_kafka_conf_s *ngx_geostream_kafka_conf(ngx_log_t *log,
    ngx_geostream_kafka_conf_t *kcf, int type, ngx_uint_t prompt);
ngx_int_t ngx_geostream_kafka_conf_set(ngx_log_t *log,
    struct rd_kafka_conf_s *conf, const char *name, const char *value);

/* librdkafka's log lines, served by rd_kafka_poll() on the log queue */
void ngx_geostream_kafka_log(const struct rd_kafka_s *rk, int level,
    const char *fac, const char *buf);
/* the line an error callback logs for an error of librdkafka */
void ngx_geostream_kafka_log_error(ngx_log_t *log, struct rd_kafka_s *rk,
    int err, const char *reason);

/*
 * A consumer handle with the configured properties; its callbacks log to
 * client->log (for a thread: ngx_cycle->log) and tell client->down when
 * its brokers are all down; "partition_eof": librdkafka tells when a
 * partition's end is reached.
 */
struct rd_kafka_s *ngx_geostream_kafka_consumer_new(
    ngx_geostream_kafka_conf_t *kcf, ngx_geostream_kafka_client_t *client,
    ngx_uint_t partition_eof);


#endif /* _NGX_GEOSTREAM_KAFKA_CONF_H_INCLUDED_ */
