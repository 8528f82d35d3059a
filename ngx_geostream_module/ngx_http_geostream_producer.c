/*
 * The producer location: POST /producer/{topic} with a position (or a
 * batch of them), validated and handed to Kafka keyed by the entity's
 * name, so that one entity's positions stay in order within a partition.
 *
 * Nothing is answered that is not true: 202 means librdkafka holds the
 * message (and the topic is known to exist), 200 means Kafka acknowledged
 * it (geostream_produce_wait), and anything Kafka refuses is answered with
 * the reason.
 */

#include "ngx_http_geostream_module.h"


/* at most this many topics' handles are kept per worker */
#define NGX_HTTP_GEOSTREAM_TOPICS_MAX   1024


/* a topic's handles, one per producer that uses it, cached per worker */
typedef struct {
    ngx_str_node_t                    sn;          /* by name */
    ngx_str_t                         name;        /* NUL-terminated */
    rd_kafka_topic_t                 *rkt[NGX_GEOSTREAM_PRODUCERS];
    unsigned                          confirmed:1; /* a delivery succeeded */
} ngx_http_geostream_ptopic_t;


typedef struct ngx_http_geostream_pending_s  ngx_http_geostream_pending_t;

/* what became of one record */
typedef struct {
    ngx_http_geostream_pending_t     *pending;
    uint32_t                          bucket;      /* its key's, routing */
    int32_t                           partition;
    int64_t                           offset;
    rd_kafka_resp_err_t               err;
} ngx_http_geostream_delivery_t;


/*
 * A request that waits for its delivery reports.  It may outlive the
 * request (a client that hangs up), so it is not in the request's pool.
 */
struct ngx_http_geostream_pending_s {
    ngx_http_request_t               *request;    /* NULL: client gone */
    ngx_http_geostream_ptopic_t      *topic;
    ngx_geostream_record_t           *records;
    size_t                            nrecords;
    ngx_http_geostream_delivery_t    *deliveries;
    size_t                            outstanding;
    ngx_pool_cleanup_t               *cleanup;
    unsigned                          batch:1;
    unsigned                          report_offsets:1;
};


static ngx_int_t ngx_http_geostream_producer_check(ngx_http_request_t *r,
    ngx_str_t *topic);
static void ngx_http_geostream_producer_body(ngx_http_request_t *r);
static u_char *ngx_http_geostream_read_body(ngx_http_request_t *r,
    size_t *len);
static ngx_http_geostream_ptopic_t *ngx_http_geostream_ptopic(
    ngx_str_t *name, ngx_log_t *log);
static void ngx_http_geostream_produce(ngx_http_request_t *r,
    ngx_http_geostream_pending_t *p, ngx_str_t *key);
static void ngx_http_geostream_pending_cleanup(void *data);
static void ngx_http_geostream_pending_free(ngx_http_geostream_pending_t *p);
static ngx_int_t ngx_http_geostream_answer(ngx_http_request_t *r,
    ngx_http_geostream_pending_t *p);
static ngx_uint_t ngx_http_geostream_kafka_status(rd_kafka_resp_err_t err,
    const char **code);
static void ngx_http_geostream_hold(ngx_event_t *ev);


/* the cached topics, looked up by name on every request */
static ngx_rbtree_t       ngx_http_geostream_ptopics;
static ngx_rbtree_node_t  ngx_http_geostream_ptopics_sentinel;
static ngx_uint_t         ngx_http_geostream_nptopics;

/*
 * Which producer takes a message (ngx_geostream_route.h).  A message whose
 * report nobody waits for carries its key's bucket as its opaque, with the
 * low bit set, which no pointer to a delivery has.
 */
static ngx_geostream_route_t  ngx_http_geostream_route;

#define ngx_http_geostream_bucket_opaque(bucket)                              \
    ((void *) (((uintptr_t) (bucket) << 1) | 1))
#define ngx_http_geostream_is_bucket(opaque)  ((uintptr_t) (opaque) & 1)
#define ngx_http_geostream_bucket(opaque)                                     \
    ((uint32_t) ((uintptr_t) (opaque) >> 1))

/* requests waiting for delivery reports; they hold a stopping worker */
static ngx_uint_t    ngx_http_geostream_waiting;
static ngx_event_t   ngx_http_geostream_hold_ev;


void
ngx_http_geostream_producer_init(uint32_t batch_rate)
{
    ngx_geostream_route_init(&ngx_http_geostream_route, batch_rate);
}


/*
 * At worker exit, before its producers flush and go: the cached topics'
 * handles are released, as librdkafka wants them destroyed before their
 * producer.  A message still queued keeps the topic it needs, and its
 * delivery report still carries the handle's opaque, the cached topic.
 */
void
ngx_http_geostream_producer_stop(void)
{
    ngx_uint_t                    which;
    ngx_rbtree_node_t            *node;
    ngx_http_geostream_ptopic_t  *t;

    if (ngx_http_geostream_ptopics.root == NULL) {
        return;
    }

    for (node = ngx_rbtree_min(ngx_http_geostream_ptopics.root,
                               ngx_http_geostream_ptopics.sentinel);
         node;
         node = ngx_rbtree_next(&ngx_http_geostream_ptopics, node))
    {
        t = (ngx_http_geostream_ptopic_t *) node;

        for (which = 0; which < NGX_GEOSTREAM_PRODUCERS; which++) {
            if (t->rkt[which]) {
                rd_kafka_topic_destroy(t->rkt[which]);
                t->rkt[which] = NULL;
            }
        }
    }
}


/* ...and once the producers are gone, with their last reports: the topics */
void
ngx_http_geostream_producer_exit(void)
{
    ngx_rbtree_node_t  *node;

    if (ngx_http_geostream_ptopics.root == NULL) {
        return;
    }

    while (ngx_http_geostream_ptopics.root
           != ngx_http_geostream_ptopics.sentinel)
    {
        node = ngx_rbtree_min(ngx_http_geostream_ptopics.root,
                              ngx_http_geostream_ptopics.sentinel);
        ngx_rbtree_delete(&ngx_http_geostream_ptopics, node);
        ngx_free(node);
    }

    ngx_http_geostream_ptopics.root = NULL;
    ngx_http_geostream_nptopics = 0;
}


ngx_int_t
ngx_http_geostream_producer_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_geostream_ctx_t  *ctx;

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_geostream_add_header(r, "Allow", "POST, OPTIONS")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (r->method == NGX_HTTP_OPTIONS) {
            /*
             * a browser's CORS preflight for a JSON POST from another
             * origin: the Access-Control-* headers are the location's
             * add_header ... always
             */
            r->headers_out.status = NGX_HTTP_NO_CONTENT;
            r->header_only = 1;
            ngx_http_clear_content_length(r);

            return ngx_http_send_header(r);
        }

        return ngx_http_geostream_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                             "method_not_allowed",
                                             "use POST to produce");
    }

    /* the topic, evaluated once, waits with the request for its body */
    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_geostream_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_geostream_module);

    /* everything that can be refused without the body is refused first */
    rc = ngx_http_geostream_producer_check(r, &ctx->topic);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_geostream_producer_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * NGX_DECLINED to go on, or how the request was answered.  A refused
 * request's body is discarded first, so that a keepalive connection does
 * not take it for the next request.
 */
static ngx_int_t
ngx_http_geostream_producer_check(ngx_http_request_t *r, ngx_str_t *topic)
{
    ngx_int_t                        rc;
    ngx_str_t                       *type;
    ngx_http_geostream_loc_conf_t   *glcf;

    if (r->headers_in.content_length_n < 0 && !r->headers_in.chunked) {
        return ngx_http_geostream_send_error(r, NGX_HTTP_LENGTH_REQUIRED,
                                   "length_required",
                                   "send the body with Content-Length or "
                                   "chunked");
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

        return ngx_http_geostream_send_error(r,
                                   NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
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

        return ngx_http_geostream_answer_error(r, rc);
    }

    return NGX_DECLINED;
}


static void
ngx_http_geostream_producer_body(ngx_http_request_t *r)
{
    int                              batch;
    size_t                           len, n;
    u_char                          *body;
    ngx_int_t                        rc;
    ngx_str_t                        key, *keyp;
    ngx_pool_cleanup_t              *cln;
    ngx_http_geostream_ctx_t        *ctx;
    ngx_geostream_error_t            err;
    ngx_geostream_record_t          *records;
    ngx_http_geostream_ptopic_t     *ptopic;
    ngx_http_geostream_pending_t    *p;
    ngx_http_geostream_loc_conf_t   *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_geostream_module);

    body = ngx_http_geostream_read_body(r, &len);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_geostream_records_parse(&records, &n, &batch, body, len,
                                    ngx_http_geostream_is_ndjson(r),
                                    &err)
        != 0)
    {
        ngx_http_finalize_request(r,
            ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST, err.code,
                                          "%s", err.detail));
        return;
    }

    if (ngx_geostream_kafka_unavailable()) {
        /*
         * no broker for longer than the grace: a message taken now would
         * only wait in librdkafka until it expires, answered 2xx and lost
         */
        ngx_geostream_records_free(records, n);

        if (ngx_http_geostream_add_header(r, "Retry-After", "1") != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_finalize_request(r,
            ngx_http_geostream_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "kafka_unavailable",
                                          "no kafka broker is reachable"));
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

    ptopic = ngx_http_geostream_ptopic(&ctx->topic, r->connection->log);

    p = ngx_calloc(sizeof(ngx_http_geostream_pending_t), r->connection->log);
    if (p == NULL || ptopic == NULL) {
        ngx_free(p);
        ngx_geostream_records_free(records, n);
        ngx_http_finalize_request(r,
            ngx_http_geostream_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "kafka_unavailable",
                                          "the kafka producer is not "
                                          "running"));
        return;
    }

    p->request = r;
    p->topic = ptopic;
    p->records = records;
    p->nrecords = n;
    p->batch = batch;
    p->report_offsets = glcf->wait;

    p->deliveries = ngx_calloc(n * sizeof(ngx_http_geostream_delivery_t),
                               r->connection->log);
    if (p->deliveries == NULL) {
        ngx_http_geostream_pending_free(p);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_geostream_produce(r, p, keyp);

    if (p->outstanding == 0) {
        /* nothing to wait for: answered at once */
        rc = ngx_http_geostream_answer(r, p);
        ngx_http_geostream_pending_free(p);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ngx_http_geostream_waiting++ == 0) {
        ngx_http_geostream_hold(&ngx_http_geostream_hold_ev);
    }

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

    /* notice a client that hangs up while it waits */
    r->read_event_handler = ngx_http_test_reading;
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


/*
 * The cached topic, with a handle of each producer the worker has; NULL
 * on failure, or when the worker has no producer.
 */
static ngx_http_geostream_ptopic_t *
ngx_http_geostream_ptopic(ngx_str_t *name, ngx_log_t *log)
{
    uint32_t                      hash;
    rd_kafka_t                   *rk;
    ngx_uint_t                    which;
    ngx_str_node_t               *sn;
    rd_kafka_topic_conf_t        *tconf;
    ngx_http_geostream_ptopic_t  *t;

    if (ngx_geostream_kafka_producer(NGX_GEOSTREAM_PRODUCER_BATCHING)
        == NULL)
    {
        return NULL;
    }

    if (ngx_http_geostream_ptopics.root == NULL) {
        ngx_rbtree_init(&ngx_http_geostream_ptopics,
                        &ngx_http_geostream_ptopics_sentinel,
                        ngx_str_rbtree_insert_value);
    }

    hash = ngx_crc32_long(name->data, name->len);

    sn = ngx_str_rbtree_lookup(&ngx_http_geostream_ptopics, name, hash);
    if (sn != NULL) {
        t = (ngx_http_geostream_ptopic_t *) sn;
        goto found;
    }

    if (ngx_http_geostream_nptopics >= NGX_HTTP_GEOSTREAM_TOPICS_MAX) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "geostream: more than %d topics produced to by one "
                      "worker; restrict them with geostream_topics",
                      NGX_HTTP_GEOSTREAM_TOPICS_MAX);
        return NULL;
    }

    t = ngx_calloc(sizeof(ngx_http_geostream_ptopic_t) + name->len + 1, log);
    if (t == NULL) {
        return NULL;
    }

    t->name.len = name->len;
    t->name.data = (u_char *) (t + 1);
    ngx_memcpy(t->name.data, name->data, name->len);
    t->name.data[name->len] = '\0';

    t->sn.node.key = hash;
    t->sn.str = t->name;
    ngx_rbtree_insert(&ngx_http_geostream_ptopics, &t->sn.node);
    ngx_http_geostream_nptopics++;

found:

    for (which = 0; which < NGX_GEOSTREAM_PRODUCERS; which++) {
        rk = ngx_geostream_kafka_producer(which);

        if (rk == NULL || t->rkt[which]) {
            continue;
        }

        /* delivery reports find the cached topic through the handle */
        tconf = rd_kafka_default_topic_conf_dup(rk);
        if (tconf == NULL) {
            return NULL;
        }

        rd_kafka_topic_conf_set_opaque(tconf, t);

        t->rkt[which] = rd_kafka_topic_new(rk, (char *) t->name.data, tconf);
        if (t->rkt[which] == NULL) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "geostream: topic \"%V\": %s", name,
                          rd_kafka_err2str(rd_kafka_last_error()));
            return NULL;
        }
    }

    return t;
}


/*
 * Hands every record to librdkafka.  Delivery reports are awaited (the
 * records get an opaque) when the location waits, and also while the
 * topic is not known to exist: librdkafka takes messages for a topic that
 * Kafka turns out not to have, and would only refuse them later.
 */
static void
ngx_http_geostream_produce(ngx_http_request_t *r,
    ngx_http_geostream_pending_t *p, ngx_str_t *key)
{
    void                            *key_data, *opaque;
    size_t                           i, key_len;
    ngx_uint_t                       wait, which;
    rd_kafka_topic_t                *rkt;
    ngx_geostream_record_t          *rec;
    rd_kafka_resp_err_t              err;
    ngx_http_geostream_delivery_t   *d;

    wait = p->report_offsets || !p->topic->confirmed;

    for (i = 0; i < p->nrecords; i++) {
        rec = &p->records[i];
        d = &p->deliveries[i];

        key_data = key ? (void *) key->data : (void *) rec->pos.name;
        key_len = key ? key->len : rec->pos.name_len;

        d->pending = p;
        d->partition = -1;
        d->offset = -1;
        d->bucket = ngx_geostream_route_bucket(key_data, key_len);

        which = ngx_geostream_route_pick(&ngx_http_geostream_route,
                                         d->bucket, p->report_offsets,
                                         (uint64_t) ngx_current_msec);
        rkt = p->topic->rkt[which];
        opaque = wait ? d : ngx_http_geostream_bucket_opaque(d->bucket);

        if (rkt == NULL) {
            /* the producer did not start (logged by then) */
            err = RD_KAFKA_RESP_ERR__STATE;

        } else {
            err = rd_kafka_producev(ngx_geostream_kafka_producer(which),
                    RD_KAFKA_V_RKT(rkt),
                    RD_KAFKA_V_KEY(key_data, key_len),
                    RD_KAFKA_V_VALUE((void *) rec->value, rec->value_len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_TIMESTAMP(rec->pos.ts > 0 ? rec->pos.ts : 0),
                    RD_KAFKA_V_OPAQUE(opaque),
                    RD_KAFKA_V_END);
        }

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            ngx_geostream_route_done(&ngx_http_geostream_route, d->bucket);

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "geostream: cannot produce to topic \"%V\": %s",
                          &p->topic->name, rd_kafka_err2str(err));

            /* what was handed over stays; the rest is refused */
            for ( /* void */ ; i < p->nrecords; i++) {
                p->deliveries[i].err = err;
            }

            break;
        }

        ngx_geostream_stats_add(produced[which], 1);
        ngx_geostream_stats_add(in_flight, 1);

        if (wait) {
            p->outstanding++;
        }
    }
}


/* how this worker chooses its producers, and what each of them took */
ngx_int_t
ngx_http_geostream_producer_status(cJSON *producer)
{
    ngx_atomic_t           *produced;
    ngx_geostream_route_t  *route;

    route = &ngx_http_geostream_route;
    produced = ngx_geostream_stats->produced;

    if (cJSON_AddNumberToObject(producer, "batch_rate",
                                (double) route->batch_rate) == NULL
        || cJSON_AddBoolToObject(producer, "batching", route->batching)
           == NULL
        || cJSON_AddNumberToObject(producer, "produced_prompt",
                          (double) produced[NGX_GEOSTREAM_PRODUCER_PROMPT])
           == NULL
        || cJSON_AddNumberToObject(producer, "produced_batching",
                          (double) produced[NGX_GEOSTREAM_PRODUCER_BATCHING])
           == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a delivery report, served on the event loop by rd_kafka_poll() */
void
ngx_http_geostream_producer_delivered(const rd_kafka_message_t *msg)
{
    ngx_int_t                        rc;
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_geostream_ptopic_t     *t;
    ngx_http_geostream_pending_t    *p;
    ngx_http_geostream_delivery_t   *d;

    t = rd_kafka_topic_opaque(msg->rkt);

    if (t != NULL && msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        t->confirmed = 1;
    }

    if (ngx_http_geostream_is_bucket(msg->_private)) {
        /* a message that nobody waits for */
        ngx_geostream_route_done(&ngx_http_geostream_route,
                                 ngx_http_geostream_bucket(msg->_private));
        return;
    }

    d = msg->_private;

    if (d == NULL) {
        return;
    }

    ngx_geostream_route_done(&ngx_http_geostream_route, d->bucket);

    d->err = msg->err;
    d->partition = msg->partition;
    d->offset = msg->offset;

    p = d->pending;

    if (--p->outstanding) {
        return;
    }

    ngx_http_geostream_waiting--;

    r = p->request;

    if (r == NULL || ngx_geostream_kafka_exiting) {
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
    char                            *json, *last;
    size_t                           i, size;
    ngx_uint_t                       status, s;
    const char                      *code, *first_code;
    ngx_http_geostream_delivery_t   *d;

    status = p->report_offsets ? NGX_HTTP_OK : NGX_HTTP_ACCEPTED;
    first_code = NULL;

    for (i = 0; i < p->nrecords; i++) {
        d = &p->deliveries[i];

        if (d->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            continue;
        }

        s = ngx_http_geostream_kafka_status(d->err, &code);

        if (first_code == NULL) {
            first_code = code;
            status = s;

            if (!p->batch) {
                if (s == NGX_HTTP_SERVICE_UNAVAILABLE
                    && ngx_http_geostream_add_header(r, "Retry-After", "1")
                       != NGX_OK)
                {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                return ngx_http_geostream_send_error(r, s, code,
                                   "kafka did not take the message: %s",
                                   rd_kafka_err2str(d->err));
            }
        }

        /* a timeout says the least about what Kafka has: it wins */
        if (s == NGX_HTTP_GATEWAY_TIME_OUT) {
            status = s;
        }
    }

    if (first_code && status == NGX_HTTP_SERVICE_UNAVAILABLE
        && ngx_http_geostream_add_header(r, "Retry-After", "1") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    size = p->batch ? p->nrecords + 1 : 0;   /* brackets and commas */

    for (i = 0; i < p->nrecords; i++) {
        code = NULL;

        if (p->deliveries[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
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

        if (d->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
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

    return ngx_http_geostream_send_json(r, status, (u_char *) json,
                                        last - json);
}


/* what a librdkafka error means to the client */
static ngx_uint_t
ngx_http_geostream_kafka_status(rd_kafka_resp_err_t err, const char **code)
{
    switch (err) {

    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        *code = "queue_full";
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    /* given up by a worker that stops with Kafka away */
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        *code = "kafka_unavailable";
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        *code = "delivery_timeout";
        return NGX_HTTP_GATEWAY_TIME_OUT;

    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        *code = "unknown_topic";
        return NGX_HTTP_NOT_FOUND;

    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        *code = "message_too_large";
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;

    default:
        *code = "kafka_error";
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }
}


/*
 * Keeps a gracefully stopping worker (reload) alive while requests wait
 * for their delivery reports, so that they get their answers; nginx exits
 * a worker once only cancelable timers are left.  Not for longer than
 * geostream_kafka_flush_timeout, though: with Kafka away the reports would
 * come only as messages expire, so then what is still undelivered is given
 * up, and its reports answer the waiting requests.
 */
static void
ngx_http_geostream_hold(ngx_event_t *ev)
{
    if (ngx_http_geostream_waiting && ngx_exiting) {
        (void) ngx_geostream_kafka_stopping();
    }

    if (ngx_http_geostream_waiting == 0) {
        return;
    }

    ev->handler = ngx_http_geostream_hold;
    ev->log = ngx_cycle->log;
    ev->cancelable = 0;

    /* nginx's debug log reads a timer's data as a connection: not NULL */
    ev->data = ev;

    ngx_add_timer(ev, 200);
}
