/*
 * The status location.  As JSON (the default): what this worker's
 * producers and consumer have done, which topics its subscribers follow,
 * and the whole instance's counters under "instance".  For Prometheus
 * (geostream_status prometheus): the instance's counters, the same
 * whichever worker answers.
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_topics.h"
#include "ngx_http_geostream_worker.h"
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
    ngx_geostream_stats_t            worker;
    ngx_geostream_stats_t           *total;
    ngx_geostream_producer_status_t  producer;
    ngx_array_t                      topics;    /* topic_status_t */
} ngx_http_geostream_status_page_t;


static ngx_int_t ngx_http_geostream_status_json(ngx_http_request_t *r,
    ngx_geostream_stats_t *total);
static ngx_int_t ngx_http_geostream_status_read(ngx_http_request_t *r,
    ngx_http_geostream_status_page_t *page);
static void ngx_http_geostream_status_write(ngx_geostream_json_writer_t *w,
    ngx_http_geostream_status_page_t *page);
static void ngx_http_geostream_status_producer(
    ngx_geostream_json_writer_t *w, ngx_http_geostream_status_page_t *page);
static void ngx_http_geostream_status_topics(ngx_geostream_json_writer_t *w,
    ngx_array_t *topics);
static ngx_int_t ngx_http_geostream_status_prometheus(ngx_http_request_t *r,
    ngx_geostream_stats_t *total);


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

    ngx_http_geostream_stats_total(gmcf->stats_zone,
                                   ngx_http_geostream_worker.stats, &total);

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

    rc = ngx_http_geostream_status_read(r, &page);

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

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_geostream_send(r, NGX_HTTP_OK, &type, b);
}


/* the worker's figures: its counters, producers and topics */
static ngx_int_t
ngx_http_geostream_status_read(ngx_http_request_t *r,
    ngx_http_geostream_status_page_t *page)
{
    ngx_http_geostream_worker_t  *wk;

    wk = &ngx_http_geostream_worker;

    page->worker = *wk->stats;

    ngx_geostream_producer_status(&wk->producers, &page->producer);

    if (ngx_array_init(&page->topics, r->pool, 4,
                       sizeof(ngx_http_geostream_topic_status_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_geostream_topics_status(&wk->topics, &page->topics);
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
    ngx_http_geostream_status_topics(w, &page->topics);
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
    ngx_geostream_stats_t            *st;
    ngx_geostream_producer_status_t  *ps;

    st = &page->worker;
    ps = &page->producer;

    ngx_geostream_jw_object(w);
    ngx_geostream_jw_key(w, "running");
    ngx_geostream_jw_bool(w, ps->running);
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
    ngx_geostream_jw_bool(w, ps->kafka_unavailable);
    ngx_geostream_jw_key(w, "queued");
    ngx_geostream_jw_int(w, ps->queued);

    if (ps->linger_ms[NGX_GEOSTREAM_PRODUCER_BATCHING] >= 0) {
        ngx_geostream_jw_key(w, "linger_ms");
        ngx_geostream_jw_double(w,
                                ps->linger_ms[NGX_GEOSTREAM_PRODUCER_BATCHING]);
    }

    if (ps->linger_ms[NGX_GEOSTREAM_PRODUCER_PROMPT] >= 0) {
        ngx_geostream_jw_key(w, "prompt_linger_ms");
        ngx_geostream_jw_double(w,
                                ps->linger_ms[NGX_GEOSTREAM_PRODUCER_PROMPT]);
    }

    /* how the worker chooses its producers, and what each of them took */
    ngx_geostream_jw_key(w, "batch_rate");
    ngx_geostream_jw_uint(w, ps->batch_rate);
    ngx_geostream_jw_key(w, "batching");
    ngx_geostream_jw_bool(w, ps->batching);
    ngx_geostream_jw_key(w, "produced_prompt");
    ngx_geostream_jw_uint(w, st->produced[NGX_GEOSTREAM_PRODUCER_PROMPT]);
    ngx_geostream_jw_key(w, "produced_batching");
    ngx_geostream_jw_uint(w, st->produced[NGX_GEOSTREAM_PRODUCER_BATCHING]);

    ngx_geostream_jw_object_end(w);
}


/* the consumer's "topics": what the worker's streams follow */
static void
ngx_http_geostream_status_topics(ngx_geostream_json_writer_t *w,
    ngx_array_t *topics)
{
    ngx_uint_t                          i;
    ngx_http_geostream_topic_status_t  *t;

    t = topics->elts;

    ngx_geostream_jw_array(w);

    for (i = 0; i < topics->nelts; i++) {
        ngx_geostream_jw_object(w);
        ngx_geostream_jw_key(w, "topic");
        ngx_geostream_jw_string(w, (char *) t[i].name.data, t[i].name.len);
        ngx_geostream_jw_key(w, "ready");
        ngx_geostream_jw_bool(w, t[i].ready);
        ngx_geostream_jw_key(w, "subscribers");
        ngx_geostream_jw_uint(w, t[i].subscribers);
        ngx_geostream_jw_key(w, "events");
        ngx_geostream_jw_uint(w, t[i].events);
        ngx_geostream_jw_key(w, "history");
        ngx_geostream_jw_uint(w, t[i].history);
        ngx_geostream_jw_key(w, "history_bytes");
        ngx_geostream_jw_uint(w, t[i].history_bytes);
        ngx_geostream_jw_object_end(w);
    }

    ngx_geostream_jw_array_end(w);
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
