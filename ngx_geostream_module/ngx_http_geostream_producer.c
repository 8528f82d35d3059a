/*
 * The producer location: POST /producer/{topic} with a position (or a
 * batch of them), validated and handed to Kafka keyed by the entity's
 * name, so that one entity's positions stay in order within a partition.
 *
 * Nothing is answered that is not true: 202 means librdkafka holds the
 * message (and the topic is known to exist), 200 means Kafka acknowledged
 * it (geostream_produce_wait), and anything Kafka refuses is answered with
 * the reason.
 *
 * The checks return NGX_OK when the request passes, or a status whose
 * error they recorded (ngx_http_geostream_error()); the handler, or the
 * body handler, answers it once (ngx_http_geostream_answer_error()).
 */

#include "ngx_http_geostream_module.h"
#include "ngx_http_geostream_answer.h"
#include "ngx_http_geostream_request.h"
#include "ngx_http_geostream_producer.h"
#include "ngx_http_geostream_worker.h"


typedef struct ngx_http_geostream_pending_s  ngx_http_geostream_pending_t;

/*
 * A request that waits for its delivery reports.  It may outlive the
 * request (a client that hangs up), so it is not in the request's pool.
 * Each record has a delivery, whose "data" is the pending request.
 */
struct ngx_http_geostream_pending_s {
    ngx_http_request_t               *request;    /* NULL: client gone */
    ngx_geostream_producer_topic_t   *topic;
    ngx_geostream_record_t           *records;
    size_t                            nrecords;
    ngx_geostream_delivery_t         *deliveries;
    size_t                            outstanding;
    ngx_pool_cleanup_t               *cleanup;
    unsigned                          batch:1;
    unsigned                          report_offsets:1;
};


static ngx_int_t ngx_http_geostream_producer_other(ngx_http_request_t *r);
static ngx_int_t ngx_http_geostream_producer_check(ngx_http_request_t *r,
    ngx_str_t *topic);
static void ngx_http_geostream_producer_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_geostream_producer_records(ngx_http_request_t *r,
    ngx_geostream_producers_t *pr, ngx_geostream_record_t **records,
    size_t *n, int *batch);
static u_char *ngx_http_geostream_read_body(ngx_http_request_t *r,
    size_t *len);
static ngx_int_t ngx_http_geostream_pending_new(ngx_http_request_t *r,
    ngx_geostream_producers_t *pr, ngx_geostream_record_t *records, size_t n,
    int batch, ngx_http_geostream_pending_t **pp);
static void ngx_http_geostream_produce(ngx_http_request_t *r,
    ngx_geostream_producers_t *pr, ngx_http_geostream_pending_t *p,
    ngx_str_t *key);
static void ngx_http_geostream_pending_wait(ngx_http_request_t *r,
    ngx_http_geostream_pending_t *p);
static void ngx_http_geostream_pending_cleanup(void *data);
static void ngx_http_geostream_pending_free(ngx_http_geostream_pending_t *p);
static ngx_int_t ngx_http_geostream_answer(ngx_http_request_t *r,
    ngx_http_geostream_pending_t *p);
static ngx_int_t ngx_http_geostream_answer_status(ngx_http_request_t *r,
    ngx_http_geostream_pending_t *p, ngx_uint_t *status);
static ngx_uint_t ngx_http_geostream_kafka_status(int err, const char **code);


ngx_int_t
ngx_http_geostream_producer_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_geostream_ctx_t  *ctx;

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_geostream_producer_other(r);
        return ngx_http_geostream_answer_error(r, rc);
    }

    /* the topic, evaluated once, waits with the request for its body */
    ctx = ngx_http_geostream_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* everything that can be refused without the body is refused first */
    rc = ngx_http_geostream_producer_check(r, &ctx->topic);
    if (rc != NGX_OK) {
        return ngx_http_geostream_answer_error(r, rc);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream produce to topic \"%V\"", &ctx->topic);

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_geostream_producer_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* a method other than POST: a preflight is answered, the rest refused */
static ngx_int_t
ngx_http_geostream_producer_other(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_geostream_add_header(r, "Allow", "POST, OPTIONS") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        /*
         * a browser's CORS preflight for a JSON POST from another origin:
         * the Access-Control-* headers are the location's add_header ...
         * always
         */
        r->headers_out.status = NGX_HTTP_NO_CONTENT;
        r->header_only = 1;
        ngx_http_clear_content_length(r);

        return ngx_http_send_header(r);
    }

    return ngx_http_geostream_error(r, NGX_HTTP_NOT_ALLOWED,
                                    "method_not_allowed",
                                    "use POST to produce");
}


/*
 * NGX_OK to go on.  A refused request's body is discarded first, so that
 * a keepalive connection does not take it for the next request.
 */
static ngx_int_t
ngx_http_geostream_producer_check(ngx_http_request_t *r, ngx_str_t *topic)
{
    ngx_int_t                        rc;
    ngx_str_t                       *type;
    ngx_http_geostream_loc_conf_t   *glcf;

    if (r->headers_in.content_length_n < 0 && !r->headers_in.chunked) {
        return ngx_http_geostream_error(r, NGX_HTTP_LENGTH_REQUIRED,
                                        "length_required",
                                        "send the body with Content-Length "
                                        "or chunked");
    }

    type = r->headers_in.content_type ? &r->headers_in.content_type->value
                                      : NULL;

    if (type
        && !ngx_http_geostream_is_ndjson(r)
        && !ngx_http_geostream_is_type(type, "application/json")
        && !ngx_http_geostream_is_type(type, "application/geo+json"))
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_geostream_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                        "unsupported_media_type",
                                        "send application/json, "
                                        "application/geo+json or "
                                        "application/x-ndjson");
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);

    rc = ngx_http_geostream_topic(r, glcf->produce, topic);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return rc;
    }

    return NGX_OK;
}


static void
ngx_http_geostream_producer_body(ngx_http_request_t *r)
{
    int                              batch;
    size_t                           n;
    ngx_int_t                        rc;
    ngx_str_t                        key, *keyp;
    ngx_geostream_record_t          *records;
    ngx_geostream_producers_t       *pr;
    ngx_http_geostream_pending_t    *p;
    ngx_http_geostream_loc_conf_t   *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);
    pr = &ngx_http_geostream_worker.producers;

    rc = ngx_http_geostream_producer_records(r, pr, &records, &n, &batch);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, ngx_http_geostream_answer_error(r, rc));
        return;
    }

    keyp = NULL;

    if (glcf->key) {
        if (ngx_http_complex_value(r, glcf->key, &key) != NGX_OK) {
            ngx_geostream_records_free(records, n);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        keyp = &key;
    }

    p = NULL;

    rc = ngx_http_geostream_pending_new(r, pr, records, n, batch, &p);
    if (rc != NGX_OK || p == NULL) {
        ngx_http_finalize_request(r, ngx_http_geostream_answer_error(r, rc));
        return;
    }

    ngx_http_geostream_produce(r, pr, p, keyp);

    if (p->outstanding == 0) {
        /* nothing to wait for: answered at once */
        rc = ngx_http_geostream_answer(r, p);
        ngx_http_geostream_pending_free(p);
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_http_geostream_pending_wait(r, p);
}


/* the body's records, unless it is refused, or Kafka is away */
static ngx_int_t
ngx_http_geostream_producer_records(ngx_http_request_t *r,
    ngx_geostream_producers_t *pr, ngx_geostream_record_t **records,
    size_t *n, int *batch)
{
    size_t                  len;
    u_char                 *body;
    ngx_geostream_error_t   err;

    body = ngx_http_geostream_read_body(r, &len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_geostream_records_parse(records, n, batch, body, len,
                                    ngx_http_geostream_is_ndjson(r), &err)
        != 0)
    {
        return ngx_http_geostream_error(r, NGX_HTTP_BAD_REQUEST, err.code,
                                        "%s", err.detail);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream produce: %uz record(s)%s", *n,
                   *batch ? " in a batch" : "");

    if (ngx_geostream_producer_unavailable(pr)) {
        /*
         * no broker for longer than the grace: a message taken now would
         * only wait in librdkafka until it expires, answered 2xx and lost
         */
        ngx_geostream_records_free(*records, *n);

        if (ngx_http_geostream_add_header(r, "Retry-After", "1") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_geostream_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "kafka_unavailable",
                                        "no kafka broker is reachable");
    }

    return NGX_OK;
}


/*
 * The whole body in one piece of memory, whether nginx kept it in memory
 * buffers or spooled it to a temporary file.
 */
static u_char *
ngx_http_geostream_read_body(ngx_http_request_t *r, size_t *len)
{
    off_t         size;
    u_char       *data, *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return (u_char *) "";
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        /* an empty body comes as an empty buffer without memory */
        *len = cl->buf->last - cl->buf->pos;
        return *len ? cl->buf->pos : (u_char *) "";
    }

    size = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        size += ngx_buf_size(cl->buf);
    }

    data = ngx_pnalloc(r->pool, (size_t) size + 1);
    if (data == NULL) {
        return NULL;
    }

    p = data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                          b->file_pos);

        if (n != b->file_last - b->file_pos) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "geostream: short read of the body from \"%V\"",
                          &b->file->name);
            return NULL;
        }

        p += n;
    }

    *len = p - data;

    return data;
}


/* takes "records" (freed on failure) */
static ngx_int_t
ngx_http_geostream_pending_new(ngx_http_request_t *r,
    ngx_geostream_producers_t *pr, ngx_geostream_record_t *records, size_t n,
    int batch, ngx_http_geostream_pending_t **pp)
{
    ngx_geostream_producer_topic_t  *topic;
    ngx_http_geostream_ctx_t        *ctx;
    ngx_http_geostream_pending_t    *p;
    ngx_http_geostream_loc_conf_t   *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_geostream_module);

    topic = ngx_geostream_producer_topic(pr, &ctx->topic, r->connection->log);

    p = ngx_calloc(sizeof(ngx_http_geostream_pending_t), r->connection->log);
    if (p == NULL || topic == NULL) {
        ngx_free(p);
        ngx_geostream_records_free(records, n);
        return ngx_http_geostream_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "kafka_unavailable",
                                        "the kafka producer is not running");
    }

    p->request = r;
    p->topic = topic;
    p->records = records;
    p->nrecords = n;
    p->batch = batch;
    p->report_offsets = glcf->wait;

    p->deliveries = ngx_calloc(n * sizeof(ngx_geostream_delivery_t),
                               r->connection->log);
    if (p->deliveries == NULL) {
        ngx_http_geostream_pending_free(p);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *pp = p;

    return NGX_OK;
}


/*
 * Hands every record to the producers.  Delivery reports are awaited when
 * the location waits, and also while the topic is not known to exist:
 * librdkafka takes messages for a topic that Kafka turns out not to have,
 * and would only refuse them later.
 */
static void
ngx_http_geostream_produce(ngx_http_request_t *r,
    ngx_geostream_producers_t *pr, ngx_http_geostream_pending_t *p,
    ngx_str_t *key)
{
    int                           err;
    size_t                        i;
    ngx_geostream_record_t       *rec;
    ngx_geostream_message_out_t   m;

    ngx_memzero(&m, sizeof(ngx_geostream_message_out_t));
    m.waiting = p->report_offsets;
    m.report = p->report_offsets || !p->topic->confirmed;

    for (i = 0; i < p->nrecords; i++) {
        rec = &p->records[i];

        m.key = key ? (void *) key->data : (void *) rec->pos.name;
        m.key_len = key ? key->len : rec->pos.name_len;
        m.value = rec->value;
        m.value_len = rec->value_len;
        m.timestamp = rec->pos.ts > 0 ? rec->pos.ts : 0;

        p->deliveries[i].data = p;

        err = ngx_geostream_producer_produce(pr, p->topic, &m,
                                             &p->deliveries[i],
                                             r->connection->log);

        if (err) {
            /* what was handed over stays; the rest is refused */
            for ( /* void */ ; i < p->nrecords; i++) {
                p->deliveries[i].err = err;
            }

            break;
        }

        if (m.report) {
            p->outstanding++;
        }
    }
}


/* the request waits for its reports, and notices a client that goes */
static void
ngx_http_geostream_pending_wait(ngx_http_request_t *r,
    ngx_http_geostream_pending_t *p)
{
    ngx_pool_cleanup_t  *cln;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream produce waits for %uz report(s)",
                   p->outstanding);

    ngx_geostream_producer_wait(&ngx_http_geostream_worker.producers);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        /* the reports will find no request, and free "p" */
        p->request = NULL;
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_geostream_pending_cleanup;
    cln->data = p;
    p->cleanup = cln;

    r->read_event_handler = ngx_http_test_reading;
}


/* a delivery report that a request waits for, on the event loop */
void
ngx_http_geostream_producer_delivered(ngx_geostream_producers_t *pr,
    ngx_geostream_delivery_t *d)
{
    ngx_int_t                      rc;
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_geostream_pending_t  *p;

    p = d->data;
    r = p->request;

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r ? r->connection->log : pr->log, 0,
                   "geostream delivery report: topic \"%V\", partition %D, "
                   "offset %L, %s, %uz to come", &p->topic->name,
                   d->partition, d->offset,
                   d->err ? ngx_geostream_producer_strerror(d->err) : "ok",
                   p->outstanding - 1);

    if (--p->outstanding) {
        return;
    }

    ngx_geostream_producer_waited(pr);

    if (r == NULL || pr->exiting) {
        /* the client is gone, or the worker: the message still counts */
        ngx_http_geostream_pending_free(p);
        return;
    }

    c = r->connection;

    rc = ngx_http_geostream_answer(r, p);

    ngx_http_geostream_pending_free(p);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* the request goes before its delivery reports arrive */
static void
ngx_http_geostream_pending_cleanup(void *data)
{
    ngx_http_geostream_pending_t  *p = data;

    p->request = NULL;
    p->cleanup = NULL;
}


static void
ngx_http_geostream_pending_free(ngx_http_geostream_pending_t *p)
{
    if (p->cleanup) {
        p->cleanup->handler = NULL;
    }

    ngx_geostream_records_free(p->records, p->nrecords);
    ngx_free(p->deliveries);
    ngx_free(p);
}


/*
 * One answer for the request: the record's (or, for a batch, every
 * record's) result.  A refused single record answers the usual error
 * object; a batch lists each record's outcome, so that a client can tell
 * which records Kafka has.
 */
static ngx_int_t
ngx_http_geostream_answer(ngx_http_request_t *r,
    ngx_http_geostream_pending_t *p)
{
    char                      *json, *last;
    size_t                     i, size;
    ngx_int_t                  rc;
    ngx_uint_t                 status;
    const char                *code;
    ngx_geostream_delivery_t  *d;

    rc = ngx_http_geostream_answer_status(r, p, &status);
    if (rc != NGX_OK) {
        return ngx_http_geostream_answer_error(r, rc);
    }

    size = p->batch ? p->nrecords + 1 : 0;   /* brackets and commas */

    for (i = 0; i < p->nrecords; i++) {
        code = NULL;

        if (p->deliveries[i].err) {
            (void) ngx_http_geostream_kafka_status(p->deliveries[i].err,
                                                   &code);
        }

        size += ngx_geostream_reply_size(&p->records[i].pos,
                                         (char *) p->topic->name.data, code);
    }

    json = ngx_pnalloc(r->pool, size);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = json;

    if (p->batch) {
        *last++ = '[';
    }

    for (i = 0; i < p->nrecords; i++) {
        d = &p->deliveries[i];
        code = NULL;

        if (d->err) {
            (void) ngx_http_geostream_kafka_status(d->err, &code);
        }

        if (i > 0) {
            *last++ = ',';
        }

        last = ngx_geostream_reply_write(last, &p->records[i].pos,
                                         (char *) p->topic->name.data,
                                         (p->report_offsets && code == NULL)
                                             ? d->partition : -1,
                                         d->offset, code);
    }

    if (p->batch) {
        *last++ = ']';
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "geostream produce answers %ui for %uz record(s)",
                   status, p->nrecords);

    return ngx_http_geostream_send_json(r, status, (u_char *) json,
                                        last - json);
}


/*
 * The answer's status: 200 or 202 when Kafka took every record.  A single
 * record that it did not take is refused (recorded: not NGX_OK); a batch
 * answers the first failure's status, a timeout's if there is one.
 */
static ngx_int_t
ngx_http_geostream_answer_status(ngx_http_request_t *r,
    ngx_http_geostream_pending_t *p, ngx_uint_t *status)
{
    size_t       i;
    ngx_uint_t   s;
    const char  *code, *first_code;

    *status = p->report_offsets ? NGX_HTTP_OK : NGX_HTTP_ACCEPTED;
    first_code = NULL;

    for (i = 0; i < p->nrecords; i++) {
        if (p->deliveries[i].err == 0) {
            continue;
        }

        s = ngx_http_geostream_kafka_status(p->deliveries[i].err, &code);

        if (first_code == NULL) {
            first_code = code;
            *status = s;

            if (!p->batch) {
                if (s == NGX_HTTP_SERVICE_UNAVAILABLE
                    && ngx_http_geostream_add_header(r, "Retry-After", "1")
                       != NGX_OK)
                {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                return ngx_http_geostream_error(r, s, code,
                           "kafka did not take the message: %s",
                           ngx_geostream_producer_strerror(
                               p->deliveries[i].err));
            }
        }

        /* a timeout says the least about what Kafka has: it wins */
        if (s == NGX_HTTP_GATEWAY_TIME_OUT) {
            *status = s;
        }
    }

    if (first_code && *status == NGX_HTTP_SERVICE_UNAVAILABLE
        && ngx_http_geostream_add_header(r, "Retry-After", "1") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/*
 * What a Kafka error means to the client.  The producers say what kind
 * of failure it is (they know librdkafka's errors); the status and the
 * code are the location's, its answer to the client.
 */
static ngx_uint_t
ngx_http_geostream_kafka_status(int err, const char **code)
{
    switch (ngx_geostream_producer_failure(err)) {

    case NGX_GEOSTREAM_PRODUCE_QUEUE_FULL:
        *code = "queue_full";
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    /* given up by a worker that stops with Kafka away */
    case NGX_GEOSTREAM_PRODUCE_PURGED:
        *code = "kafka_unavailable";
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    case NGX_GEOSTREAM_PRODUCE_TIMED_OUT:
        *code = "delivery_timeout";
        return NGX_HTTP_GATEWAY_TIME_OUT;

    case NGX_GEOSTREAM_PRODUCE_UNKNOWN_TOPIC:
        *code = "unknown_topic";
        return NGX_HTTP_NOT_FOUND;

    case NGX_GEOSTREAM_PRODUCE_TOO_LARGE:
        *code = "message_too_large";
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;

    default:
        *code = "kafka_error";
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }
}
