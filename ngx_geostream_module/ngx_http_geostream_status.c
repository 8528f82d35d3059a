/*
 * The status location.  As JSON (the default): what this worker's
 * producers and consumer have done, which topics its subscribers follow,
 * and the whole instance's counters under "instance".  For Prometheus
 * (geostream_status prometheus): the instance's counters, the same
 * whichever worker answers.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_topics.h"
#include "ngx_http_geostream_answer.h"
#include "ngx_http_geostream_stats.h"
#include "ngx_http_geostream_status.h"
#include "ngx_geostream_json_writer.h"


/*
 * What the JSON page shows, read once before it is written twice (the
 * writer measures, then writes): a counter that moved in between would
 * not fit.
 */
typedef struct {
    ngx_geostream_stats_t        worker;
    ngx_geostream_stats_t       *total;
    ngx_uint_t                   running;       /* the batching producer */
    ngx_uint_t                   unavailable;
    int                          queued;
    double                       linger[NGX_GEOSTREAM_PRODUCERS]; /* <0: - */
    cJSON                       *producer;      /* producer.c's members */
    char                        *topics;        /* consumer.c's, printed */
} ngx_http_geostream_status_page_t;


static ngx_int_t ngx_http_geostream_status_json(ngx_http_request_t *r,
    ngx_geostream_stats_t *total);
static ngx_int_t ngx_http_geostream_status_read(
    ngx_http_geostream_status_page_t *page);
static void ngx_http_geostream_status_write(ngx_geostream_json_writer_t *w,
    ngx_http_geostream_status_page_t *page);
static void ngx_http_geostream_status_producer(
    ngx_geostream_json_writer_t *w, ngx_http_geostream_status_page_t *page);
static void ngx_http_geostream_status_members(ngx_geostream_json_writer_t *w,
    cJSON *o);
static ngx_int_t ngx_http_geostream_status_prometheus(ngx_http_request_t *r,
    ngx_geostream_stats_t *total);
static double ngx_http_geostream_status_linger(ngx_uint_t which);


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

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream status page, %s",
                   glcf->status == NGX_HTTP_GEOSTREAM_STATUS_PROMETHEUS
                   ? "prometheus" : "json");

    if (glcf->status == NGX_HTTP_GEOSTREAM_STATUS_PROMETHEUS) {
        return ngx_http_geostream_status_prometheus(r, &total);
    }

    return ngx_http_geostream_status_json(r, &total);
}


static ngx_int_t
ngx_http_geostream_status_json(ngx_http_request_t *r,
    ngx_geostream_stats_t *total)
{
    ngx_int_t                          rc;
    ngx_buf_t                         *b = NULL;
    ngx_str_t                          type = ngx_string("application/json");
    ngx_geostream_json_writer_t        w;
    ngx_http_geostream_status_page_t   page;

    page.total = total;

    rc = ngx_http_geostream_status_read(&page);

    if (rc == NGX_OK) {
        ngx_geostream_jw_init(&w, NULL, 0);
        ngx_http_geostream_status_write(&w, &page);

        /* answers end with a line break, for people reading them in a shell */
        b = ngx_create_temp_buf(r->pool, w.size + 1);

        if (b == NULL) {
            rc = NGX_ERROR;

        } else {
            ngx_geostream_jw_init(&w, b->last, w.size);
            ngx_http_geostream_status_write(&w, &page);
            rc = (ngx_geostream_jw_done(&w) == 0) ? NGX_OK : NGX_ERROR;
            b->last += w.size;
            *b->last++ = LF;
        }
    }

    cJSON_Delete(page.producer);
    free(page.topics);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_geostream_send(r, NGX_HTTP_OK, &type, b);
}


/* the worker's figures, and the parts that producer.c and consumer.c give */
static ngx_int_t
ngx_http_geostream_status_read(ngx_http_geostream_status_page_t *page)
{
    cJSON  *topics;

    page->worker = *ngx_geostream_stats;
    page->running =
        (ngx_geostream_kafka_producer(NGX_GEOSTREAM_PRODUCER_BATCHING)
         != NULL);
    page->unavailable = ngx_geostream_kafka_unavailable();
    page->queued = ngx_geostream_kafka_queued();
    page->linger[NGX_GEOSTREAM_PRODUCER_BATCHING] =
        ngx_http_geostream_status_linger(NGX_GEOSTREAM_PRODUCER_BATCHING);
    page->linger[NGX_GEOSTREAM_PRODUCER_PROMPT] =
        ngx_http_geostream_status_linger(NGX_GEOSTREAM_PRODUCER_PROMPT);
    page->topics = NULL;

    page->producer = cJSON_CreateObject();

    if (page->producer == NULL
        || ngx_http_geostream_producer_status(page->producer) != NGX_OK)
    {
        return NGX_ERROR;
    }

    topics = ngx_http_geostream_consumer_status();
    if (topics == NULL) {
        return NGX_ERROR;
    }

    page->topics = cJSON_PrintUnformatted(topics);
    cJSON_Delete(topics);

    return (page->topics != NULL) ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_geostream_status_write(ngx_geostream_json_writer_t *w,
    ngx_http_geostream_status_page_t *page)
{
    ngx_geostream_stats_t        *st;
    ngx_http_geostream_metric_t  *m;

    st = &page->worker;

    ngx_geostream_jw_object(w);

    ngx_geostream_jw_key(w, "producer");
    ngx_http_geostream_status_producer(w, page);

    ngx_geostream_jw_key(w, "consumer");
    ngx_geostream_jw_object(w);
    ngx_geostream_jw_key(w, "topics");
    ngx_geostream_jw_raw(w, (u_char *) page->topics,
                         ngx_strlen(page->topics));
    ngx_geostream_jw_key(w, "consumed");
    ngx_geostream_jw_uint(w, st->consumed);
    ngx_geostream_jw_key(w, "skipped");
    ngx_geostream_jw_uint(w, st->skipped);
    ngx_geostream_jw_key(w, "subscribers");
    ngx_geostream_jw_uint(w, st->subscribers);
    ngx_geostream_jw_key(w, "closed_too_slow");
    ngx_geostream_jw_uint(w, st->closed_too_slow);
    ngx_geostream_jw_object_end(w);

    /* the instance's counters */
    ngx_geostream_jw_key(w, "instance");
    ngx_geostream_jw_object(w);

    for (m = ngx_http_geostream_metrics; m->name; m++) {
        ngx_geostream_jw_key(w, m->json);
        ngx_geostream_jw_uint(w,
                              ngx_http_geostream_metric_value(page->total, m));
    }

    ngx_geostream_jw_object_end(w);

    ngx_geostream_jw_key(w, "pid");
    ngx_geostream_jw_int(w, ngx_pid);

    ngx_geostream_jw_object_end(w);
}


/* the page's "producer": the worker's producers */
static void
ngx_http_geostream_status_producer(ngx_geostream_json_writer_t *w,
    ngx_http_geostream_status_page_t *page)
{
    ngx_geostream_stats_t  *st;

    st = &page->worker;

    ngx_geostream_jw_object(w);
    ngx_geostream_jw_key(w, "running");
    ngx_geostream_jw_bool(w, page->running);
    ngx_geostream_jw_key(w, "produced");
    ngx_geostream_jw_uint(w, st->produced[NGX_GEOSTREAM_PRODUCER_PROMPT]
                             + st->produced[NGX_GEOSTREAM_PRODUCER_BATCHING]);
    ngx_geostream_jw_key(w, "delivered");
    ngx_geostream_jw_uint(w, st->delivered);
    ngx_geostream_jw_key(w, "failed");
    ngx_geostream_jw_uint(w, st->failed);
    ngx_geostream_jw_key(w, "in_flight");
    ngx_geostream_jw_uint(w, st->in_flight);
    ngx_geostream_jw_key(w, "kafka_unavailable");
    ngx_geostream_jw_bool(w, page->unavailable);
    ngx_geostream_jw_key(w, "queued");
    ngx_geostream_jw_int(w, page->queued);

    if (page->linger[NGX_GEOSTREAM_PRODUCER_BATCHING] >= 0) {
        ngx_geostream_jw_key(w, "linger_ms");
        ngx_geostream_jw_double(w,
                                page->linger[NGX_GEOSTREAM_PRODUCER_BATCHING]);
    }

    if (page->linger[NGX_GEOSTREAM_PRODUCER_PROMPT] >= 0) {
        ngx_geostream_jw_key(w, "prompt_linger_ms");
        ngx_geostream_jw_double(w,
                                page->linger[NGX_GEOSTREAM_PRODUCER_PROMPT]);
    }

    ngx_http_geostream_status_members(w, page->producer);

    ngx_geostream_jw_object_end(w);
}


/*
 * The members of a cJSON object that another file filled, written into
 * the object being written (until that file gives its figures as a
 * struct).
 */
static void
ngx_http_geostream_status_members(ngx_geostream_json_writer_t *w, cJSON *o)
{
    char   *value;
    cJSON  *item;

    for (item = o->child; item; item = item->next) {
        value = cJSON_PrintUnformatted(item);

        if (value == NULL) {
            w->failed = 1;
            return;
        }

        ngx_geostream_jw_key(w, item->string);
        ngx_geostream_jw_raw(w, (u_char *) value, ngx_strlen(value));

        free(value);
    }
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
 * the latency a waiting client pays at least, and what batching gets;
 * -1 when the producer does not run.
 */
static double
ngx_http_geostream_status_linger(ngx_uint_t which)
{
    char         value[32];
    size_t       size;
    rd_kafka_t  *rk;

    rk = ngx_geostream_kafka_producer(which);
    if (rk == NULL) {
        return -1;
    }

    size = sizeof(value);

    if (rd_kafka_conf_get(rd_kafka_conf(rk), "linger.ms", value, &size)
        != RD_KAFKA_CONF_OK)
    {
        return -1;
    }

    return strtod(value, NULL);
}
