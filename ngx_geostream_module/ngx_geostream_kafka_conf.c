/*
 * librdkafka's configuration of a worker's handles, and the worker's
 * consumer handles.  See ngx_geostream_kafka_conf.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <librdkafka/rdkafka.h>

#include "ngx_geostream_kafka_conf.h"


static void ngx_geostream_kafka_consumer_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);


/*
 * Defaults chosen to lose nothing that was accepted (producer) and to keep
 * a worker's memory bounded (consumer); every one of them can be
 * overridden from the nginx configuration.
 */
static const char  *ngx_geostream_producer_defaults[] = {
    "acks", "all",
    "enable.idempotence", "true",
    "linger.ms", "5",
    "message.timeout.ms", "30000",
    /*
     * keys hashed as Kafka's Java client (and python3-kafka) hash them, so
     * an entity's positions share a partition whoever produces them
     */
    "partitioner", "murmur2_random",
    /* a topic exists because someone made it, not because a URL named it */
    "allow.auto.create.topics", "false",
    /*
     * and one that Kafka says it does not have is refused after this long
     * (librdkafka's 30 s default would first let the message time out)
     */
    "topic.metadata.propagation.max.ms", "2000",
    /* the brokers' states, to see Kafka come back after an outage */
    "statistics.interval.ms", "1000",
    NULL
};

/*
 * A waiting client pays the whole linger.ms of its message, and so does a
 * live map for a message sent at a low rate: the prompt producer batches
 * for a shorter time, or not at all.  For 202 locations it serves only
 * low rates, where batches of one message cost nothing more; a waiting
 * location can bring it high rates, where 1 ms batches keep its
 * throughput.  Set before the configured properties, which win.
 */
static const char  *ngx_geostream_prompt_producer_defaults[] = {
    "linger.ms", "0",
    NULL
};

static const char  *ngx_geostream_prompt_waiting_producer_defaults[] = {
    "linger.ms", "1",
    NULL
};

static const char  *ngx_geostream_consumer_defaults[] = {
    "enable.partition.eof", "false",
    "queued.max.messages.kbytes", "8192",
    "auto.offset.reset", "smallest",
    "enable.auto.commit", "false",
    NULL
};


char *
ngx_geostream_kafka_check_conf(ngx_conf_t *cf,
    ngx_geostream_kafka_conf_t *kcf)
{
    rd_kafka_conf_t  *conf;

    conf = ngx_geostream_kafka_conf(cf->log, kcf, RD_KAFKA_PRODUCER, 1);
    if (conf == NULL) {
        return NGX_CONF_ERROR;
    }

    rd_kafka_conf_destroy(conf);

    conf = ngx_geostream_kafka_conf(cf->log, kcf, RD_KAFKA_CONSUMER, 0);
    if (conf == NULL) {
        return NGX_CONF_ERROR;
    }

    rd_kafka_conf_destroy(conf);

    return NGX_CONF_OK;
}


rd_kafka_conf_t *
ngx_geostream_kafka_conf(ngx_log_t *log, ngx_geostream_kafka_conf_t *kcf,
    int type, ngx_uint_t prompt)
{
    const char              **d, **defaults[2];
    ngx_uint_t                i, n;
    ngx_array_t              *lists[2];
    ngx_keyval_t             *kv;
    rd_kafka_conf_t          *conf;

    conf = rd_kafka_conf_new();

    defaults[0] = (type == RD_KAFKA_PRODUCER)
                  ? ngx_geostream_producer_defaults
                  : ngx_geostream_consumer_defaults;
    defaults[1] = NULL;

    if (type == RD_KAFKA_PRODUCER && prompt) {
        defaults[1] = kcf->waiting_location
                      ? ngx_geostream_prompt_waiting_producer_defaults
                      : ngx_geostream_prompt_producer_defaults;
    }

    for (n = 0; n < 2; n++) {
        for (d = defaults[n]; d && *d; d += 2) {
            if (ngx_geostream_kafka_conf_set(log, conf, d[0], d[1])
                != NGX_OK)
            {
                goto failed;
            }
        }
    }

    /* a worker's librdkafka logs are served on a queue, not on its threads */
    if (ngx_geostream_kafka_conf_set(log, conf, "log.queue", "true")
        != NGX_OK)
    {
        goto failed;
    }

    if (kcf->brokers.len
        && ngx_geostream_kafka_conf_set(log, conf, "bootstrap.servers",
                                        (char *) kcf->brokers.data)
           != NGX_OK)
    {
        goto failed;
    }

    lists[0] = kcf->options;
    lists[1] = (type == RD_KAFKA_PRODUCER) ? kcf->producer_options
                                           : kcf->consumer_options;

    for (n = 0; n < 2; n++) {
        if (lists[n] == NULL) {
            continue;
        }

        kv = lists[n]->elts;

        for (i = 0; i < lists[n]->nelts; i++) {
            if (ngx_geostream_kafka_conf_set(log, conf,
                                             (char *) kv[i].key.data,
                                             (char *) kv[i].value.data)
                != NGX_OK)
            {
                goto failed;
            }
        }
    }

    return conf;

failed:

    rd_kafka_conf_destroy(conf);

    return NULL;
}


/* librdkafka takes topic properties on the global configuration too */
ngx_int_t
ngx_geostream_kafka_conf_set(ngx_log_t *log, rd_kafka_conf_t *conf,
    const char *name, const char *value)
{
    char  errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "geostream: kafka property \"%s\" = \"%s\": %s",
                      name, value, errstr);
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_CORE, log, 0,
                   "geostream kafka property \"%s\" = \"%s\"", name, value);

    return NGX_OK;
}


/*
 * Served where the handle is polled: the event loop for the producers,
 * a thread for a consumer.  So the log is the cycle's, which a thread may
 * use (the handles' opaque is their owner's: the producers' state).
 */
void
ngx_geostream_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    ngx_uint_t  nlevel;

    /* syslog levels as librdkafka uses them, mapped onto nginx's */
    if (level <= 2) {
        nlevel = NGX_LOG_CRIT;

    } else if (level == 3) {
        nlevel = NGX_LOG_ERR;

    } else if (level == 4) {
        nlevel = NGX_LOG_WARN;

    } else if (level <= 6) {
        nlevel = NGX_LOG_INFO;

    } else {
        nlevel = NGX_LOG_DEBUG;
    }

    ngx_log_error(nlevel, ngx_cycle->log, 0, "geostream: kafka %s %s: %s",
                  rd_kafka_name(rk), fac, buf);
}


void
ngx_geostream_kafka_log_error(ngx_log_t *log, rd_kafka_t *rk, int err,
    const char *reason)
{
    ngx_uint_t  level;

    level = (err == RD_KAFKA_RESP_ERR__FATAL) ? NGX_LOG_ALERT : NGX_LOG_ERR;

    ngx_log_error(level, log, 0, "geostream: kafka %s: %s: %s",
                  rd_kafka_name(rk), rd_kafka_err2name(err), reason);
}


/*
 * A consumer instance with the configured properties.  No group.id:
 * partitions are started directly at known offsets with the simple
 * consumer interface, so no group coordination delays or shares the
 * stream; every worker reads every partition.
 */
rd_kafka_t *
ngx_geostream_kafka_consumer_new(ngx_geostream_kafka_conf_t *kcf,
    ngx_geostream_kafka_client_t *client, ngx_uint_t partition_eof)
{
    char              errstr[512];
    ngx_log_t        *log;
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *conf;

    log = client->log;

    conf = ngx_geostream_kafka_conf(log, kcf, RD_KAFKA_CONSUMER, 0);
    if (conf == NULL) {
        return NULL;
    }

    if (partition_eof
        && ngx_geostream_kafka_conf_set(log, conf, "enable.partition.eof",
                                        "true")
           != NGX_OK)
    {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    rd_kafka_conf_set_log_cb(conf, ngx_geostream_kafka_log);
    rd_kafka_conf_set_error_cb(conf, ngx_geostream_kafka_consumer_error);
    rd_kafka_conf_set_opaque(conf, client);

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "geostream: cannot create a kafka consumer: %s",
                      errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    rd_kafka_set_log_queue(rk, NULL);

    return rk;
}


/*
 * Served on the consumer's thread by its rd_kafka_poll(); "opaque": its
 * ngx_geostream_kafka_client_t
 */
static void
ngx_geostream_kafka_consumer_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque)
{
    ngx_geostream_kafka_client_t  *client = opaque;

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && client->down) {
        client->down(client->data);
    }

    ngx_geostream_kafka_log_error(client->log, rk, err, reason);
}
