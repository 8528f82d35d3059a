/*
 * The producer location: POST /producer/{topic} with a position, which is
 * validated and handed to Kafka keyed by the entity's name, so that one
 * entity's positions stay in order within a partition.
 */

#include "ngx_http_geostream_module.h"


static void ngx_http_geostream_producer_body(ngx_http_request_t *r);
static u_char *ngx_http_geostream_read_body(ngx_http_request_t *r,
    size_t *len);
static ngx_int_t ngx_http_geostream_produce(ngx_http_request_t *r,
    ngx_str_t *topic, ngx_geostream_position_t *pos, u_char *body,
    size_t len);


ngx_int_t
ngx_http_geostream_producer_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_geostream_add_header(r, "Allow", "POST") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_geostream_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                             "method_not_allowed",
                                             "use POST to produce");
    }

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_geostream_producer_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_geostream_producer_body(ngx_http_request_t *r)
{
    size_t                          len;
    u_char                         *body;
    ngx_int_t                       rc;
    ngx_str_t                       topic;
    ngx_geostream_error_t           err;
    ngx_geostream_position_t        pos;
    ngx_http_geostream_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_geostream_module);

    rc = ngx_http_geostream_topic(r, glcf->produce, &topic);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST,
                                "invalid_topic",
                                "a topic is 1 to 249 of a-z, A-Z, 0-9, "
                                "'.', '_' and '-'"));
        return;
    }

    body = ngx_http_geostream_read_body(r, &len);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_geostream_position_parse(&pos, body, len, &err) != 0) {
        ngx_http_finalize_request(r,
            ngx_http_geostream_send_error(r, NGX_HTTP_BAD_REQUEST, err.code,
                                          "%s", err.detail));
        return;
    }

    rc = ngx_http_geostream_produce(r, &topic, &pos, body, len);

    ngx_geostream_position_free(&pos);

    ngx_http_finalize_request(r, rc);
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
        *len = cl->buf->last - cl->buf->pos;
        return cl->buf->pos;
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


static ngx_int_t
ngx_http_geostream_produce(ngx_http_request_t *r, ngx_str_t *topic,
    ngx_geostream_position_t *pos, u_char *body, size_t len)
{
    char                 *json, *topic_name;
    ngx_int_t             rc;
    rd_kafka_t           *rk;
    rd_kafka_resp_err_t   err;

    rk = ngx_geostream_kafka_producer();

    if (rk == NULL) {
        return ngx_http_geostream_send_error(r,
                                  NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "kafka_unavailable",
                                  "the kafka producer is not running");
    }

    topic_name = (char *) ngx_pnalloc(r->pool, topic->len + 1);
    if (topic_name == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(topic_name, topic->data, topic->len);
    topic_name[topic->len] = '\0';

    err = rd_kafka_producev(rk,
                            RD_KAFKA_V_TOPIC(topic_name),
                            RD_KAFKA_V_KEY(pos->name, pos->name_len),
                            RD_KAFKA_V_VALUE(body, len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_TIMESTAMP(pos->ts > 0 ? pos->ts : 0),
                            RD_KAFKA_V_END);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "geostream: cannot produce to topic \"%V\": %s",
                      topic, rd_kafka_err2str(err));

        if (ngx_http_geostream_add_header(r, "Retry-After", "1") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_geostream_send_error(r,
                                  NGX_HTTP_SERVICE_UNAVAILABLE,
                                  err == RD_KAFKA_RESP_ERR__QUEUE_FULL
                                      ? "queue_full" : "kafka_unavailable",
                                  "kafka did not take the message: %s",
                                  rd_kafka_err2str(err));
    }

    ngx_geostream_kafka_stats.produced++;

    json = ngx_geostream_position_reply(pos, topic->data, topic->len);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_geostream_send_json(r, NGX_HTTP_ACCEPTED, (u_char *) json,
                                      ngx_strlen(json));
    free(json);

    return rc;
}
