/*
 * The status location.  As JSON (the default): what this worker's
 * producers and consumer have done, which topics its subscribers follow,
 * and the whole instance's counters under "instance".  For Prometheus
 * (geostream_status prometheus): the instance's counters, the same
 * whichever worker answers.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_topics.h"


static ngx_int_t ngx_http_geostream_status_json(ngx_http_request_t *r,
    ngx_geostream_stats_t *total);
static cJSON *ngx_http_geostream_status_counters(ngx_geostream_stats_t *st);
static ngx_int_t ngx_http_geostream_status_prometheus(ngx_http_request_t *r,
    ngx_geostream_stats_t *total);
static ngx_int_t ngx_http_geostream_status_linger(cJSON *producer,
    const char *name, ngx_uint_t which);


/*
 * A counter of the instance: its name in the JSON page's "instance", and
 * the Prometheus sample that shows it.
 */
typedef struct {
    const char                   *json;
    const char                   *name;
    const char                   *labels;
    const char                   *type;   /* NULL: the metric goes on */
    const char                   *help;
    size_t                        offset; /* in ngx_geostream_stats_t */
} ngx_http_geostream_metric_t;


#define ngx_http_geostream_counter(field)                                     \
    offsetof(ngx_geostream_stats_t, field)

#define ngx_http_geostream_metric_value(st, m)                                \
    (*(ngx_atomic_t *) ((u_char *) (st) + (m)->offset))

static ngx_http_geostream_metric_t  ngx_http_geostream_metrics[] = {

    { "produced_prompt",
      "geostream_produced_messages_total", "{producer=\"prompt\"}",
      "counter",
      "Messages that librdkafka accepted from producer locations.",
      ngx_http_geostream_counter(produced[NGX_GEOSTREAM_PRODUCER_PROMPT]) },

    { "produced_batching",
      "geostream_produced_messages_total", "{producer=\"batching\"}",
      NULL, NULL,
      ngx_http_geostream_counter(produced[NGX_GEOSTREAM_PRODUCER_BATCHING]) },

    { "delivered", "geostream_delivered_messages_total", "", "counter",
      "Messages that Kafka acknowledged.",
      ngx_http_geostream_counter(delivered) },

    { "failed", "geostream_failed_messages_total", "", "counter",
      "Messages that Kafka refused or did not acknowledge in time.",
      ngx_http_geostream_counter(failed) },

    { "in_flight", "geostream_in_flight_messages", "", "gauge",
      "Messages accepted whose delivery report has not come yet.",
      ngx_http_geostream_counter(in_flight) },

    { "consumed", "geostream_consumed_messages_total", "", "counter",
      "Messages read from Kafka, once for each worker that read them.",
      ngx_http_geostream_counter(consumed) },

    { "skipped", "geostream_skipped_messages_total", "", "counter",
      "Messages read from Kafka that were not valid positions.",
      ngx_http_geostream_counter(skipped) },

    { "subscribers", "geostream_subscribers", "", "gauge",
      "Streams open now.",
      ngx_http_geostream_counter(subscribers) },

    { "closed_too_slow", "geostream_closed_too_slow_total", "", "counter",
      "Streams closed for falling more than geostream_backlog behind.",
      ngx_http_geostream_counter(closed_too_slow) },

    { NULL, NULL, NULL, NULL, NULL, 0 }
};


ngx_int_t
ngx_http_geostream_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_geostream_stats_t            total;
    ngx_http_geostream_loc_conf_t   *glcf;
    ngx_http_geostream_main_conf_t  *gmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);
    gmcf = ngx_http_get_module_main_conf(r, ngx_http_geostream_module);

    ngx_http_geostream_stats_total(gmcf->stats_zone, &total);

    if (glcf->status == NGX_HTTP_GEOSTREAM_STATUS_PROMETHEUS) {
        return ngx_http_geostream_status_prometheus(r, &total);
    }

    return ngx_http_geostream_status_json(r, &total);
}


static ngx_int_t
ngx_http_geostream_status_json(ngx_http_request_t *r,
    ngx_geostream_stats_t *total)
{
    char                   *json;
    cJSON                  *status, *producer, *consumer, *topics, *instance;
    ngx_int_t               rc;
    rd_kafka_t             *rk;
    ngx_geostream_stats_t  *st;

    st = ngx_geostream_stats;
    rk = ngx_geostream_kafka_producer(NGX_GEOSTREAM_PRODUCER_BATCHING);

    json = NULL;

    status = cJSON_CreateObject();
    producer = cJSON_CreateObject();
    consumer = cJSON_CreateObject();
    topics = ngx_http_geostream_consumer_status();
    instance = ngx_http_geostream_status_counters(total);

    if (status == NULL || producer == NULL || consumer == NULL
        || topics == NULL || instance == NULL)
    {
        cJSON_Delete(producer);
        cJSON_Delete(consumer);
        cJSON_Delete(topics);
        cJSON_Delete(instance);
        goto done;
    }

    cJSON_AddItemToObject(status, "producer", producer);
    cJSON_AddItemToObject(status, "consumer", consumer);
    cJSON_AddItemToObject(consumer, "topics", topics);
    cJSON_AddItemToObject(status, "instance", instance);

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
        || cJSON_AddNumberToObject(producer, "in_flight",
                                   (double) st->in_flight) == NULL
        || cJSON_AddBoolToObject(producer, "kafka_unavailable",
                                 ngx_geostream_kafka_unavailable()) == NULL
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
                                   (double) st->subscribers) == NULL
        || cJSON_AddNumberToObject(consumer, "closed_too_slow",
                                   (double) st->closed_too_slow) == NULL)
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


/* the instance's counters, as the JSON page's "instance" */
static cJSON *
ngx_http_geostream_status_counters(ngx_geostream_stats_t *st)
{
    cJSON                        *o;
    ngx_http_geostream_metric_t  *m;

    o = cJSON_CreateObject();
    if (o == NULL) {
        return NULL;
    }

    for (m = ngx_http_geostream_metrics; m->name; m++) {
        if (cJSON_AddNumberToObject(o, m->json,
                (double) ngx_http_geostream_metric_value(st, m))
            == NULL)
        {
            cJSON_Delete(o);
            return NULL;
        }
    }

    return o;
}


/*
 * The instance's counters in Prometheus' text format (version 0.0.4).
 * Each worker reads every message of the topics it follows, so a message
 * counts as consumed once for each worker that read it.
 */
static ngx_int_t
ngx_http_geostream_status_prometheus(ngx_http_request_t *r,
    ngx_geostream_stats_t *total)
{
    u_char                       *p;
    size_t                        size;
    ngx_buf_t                    *b;
    ngx_str_t                     type;
    ngx_http_geostream_metric_t  *m;

    ngx_str_set(&type, "text/plain; version=0.0.4; charset=utf-8");

    size = 0;

    for (m = ngx_http_geostream_metrics; m->name; m++) {
        if (m->type) {
            size += sizeof("# HELP  \n# TYPE  \n") - 1
                    + 2 * ngx_strlen(m->name) + ngx_strlen(m->help)
                    + ngx_strlen(m->type);
        }

        size += ngx_strlen(m->name) + ngx_strlen(m->labels)
                + sizeof(" \n") - 1 + NGX_ATOMIC_T_LEN;
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;

    for (m = ngx_http_geostream_metrics; m->name; m++) {
        if (m->type) {
            p = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n",
                            m->name, m->help, m->name, m->type);
        }

        p = ngx_sprintf(p, "%s%s %uA\n", m->name, m->labels,
                        ngx_http_geostream_metric_value(total, m));
    }

    b->last = p;

    return ngx_http_geostream_send(r, NGX_HTTP_OK, &type, b);
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
