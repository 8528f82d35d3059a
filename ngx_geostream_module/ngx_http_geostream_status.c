/*
 * The status location: what this worker's producer and consumer have done
 * and which topics its subscribers follow, as JSON.  The figures are the
 * answering worker's own.
 */

#include "ngx_http_geostream_module.h"


static ngx_int_t ngx_http_geostream_status_linger(cJSON *producer,
    const char *name, ngx_uint_t which);


ngx_int_t
ngx_http_geostream_status_handler(ngx_http_request_t *r)
{
    char                         *json;
    cJSON                        *status, *producer, *consumer, *topics;
    ngx_int_t                     rc;
    ngx_uint_t                    subscribers, too_slow;
    rd_kafka_t                   *rk;
    ngx_geostream_kafka_stats_t  *st;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    st = &ngx_geostream_kafka_stats;
    rk = ngx_geostream_kafka_producer(NGX_GEOSTREAM_PRODUCER_BATCHING);
    ngx_http_geostream_consumer_counts(&subscribers, &too_slow);

    json = NULL;

    status = cJSON_CreateObject();
    producer = cJSON_CreateObject();
    consumer = cJSON_CreateObject();
    topics = ngx_http_geostream_consumer_status();

    if (status == NULL || producer == NULL || consumer == NULL
        || topics == NULL)
    {
        cJSON_Delete(producer);
        cJSON_Delete(consumer);
        cJSON_Delete(topics);
        goto done;
    }

    cJSON_AddItemToObject(status, "producer", producer);
    cJSON_AddItemToObject(status, "consumer", consumer);
    cJSON_AddItemToObject(consumer, "topics", topics);

    if (cJSON_AddNumberToObject(status, "pid", (double) ngx_pid) == NULL
        || cJSON_AddBoolToObject(producer, "running", rk != NULL) == NULL
        || cJSON_AddNumberToObject(producer, "produced",
                   (double) (st->produced[NGX_GEOSTREAM_PRODUCER_PROMPT]
                             + st->produced[NGX_GEOSTREAM_PRODUCER_BATCHING]))
           == NULL
        || cJSON_AddNumberToObject(producer, "delivered",
                                   (double) st->delivered) == NULL
        || cJSON_AddNumberToObject(producer, "failed",
                                   (double) st->failed) == NULL
        || cJSON_AddNumberToObject(producer, "queued",
                                   ngx_geostream_kafka_queued()) == NULL
        || ngx_http_geostream_status_linger(producer, "linger_ms",
                                            NGX_GEOSTREAM_PRODUCER_BATCHING)
           != NGX_OK
        || ngx_http_geostream_status_linger(producer, "prompt_linger_ms",
                                            NGX_GEOSTREAM_PRODUCER_PROMPT)
           != NGX_OK
        || ngx_http_geostream_producer_status(producer) != NGX_OK
        || cJSON_AddNumberToObject(consumer, "consumed",
                                   (double) st->consumed) == NULL
        || cJSON_AddNumberToObject(consumer, "skipped",
                                   (double) st->skipped) == NULL
        || cJSON_AddNumberToObject(consumer, "subscribers",
                                   (double) subscribers) == NULL
        || cJSON_AddNumberToObject(consumer, "closed_too_slow",
                                   (double) too_slow) == NULL)
    {
        goto done;
    }

    json = cJSON_PrintUnformatted(status);

done:

    cJSON_Delete(status);

    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_geostream_send_json(r, NGX_HTTP_OK, (u_char *) json,
                                      ngx_strlen(json));
    free(json);

    return rc;
}


/*
 * A producer's linger.ms as it runs, defaults and configuration applied:
 * the latency a waiting client pays at least, and what batching gets.
 */
static ngx_int_t
ngx_http_geostream_status_linger(cJSON *producer, const char *name,
    ngx_uint_t which)
{
    char         value[32];
    size_t       size;
    rd_kafka_t  *rk;

    rk = ngx_geostream_kafka_producer(which);
    if (rk == NULL) {
        return NGX_OK;
    }

    size = sizeof(value);

    if (rd_kafka_conf_get(rd_kafka_conf(rk), "linger.ms", value, &size)
        != RD_KAFKA_CONF_OK)
    {
        return NGX_OK;
    }

    if (cJSON_AddNumberToObject(producer, name, strtod(value, NULL))
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
