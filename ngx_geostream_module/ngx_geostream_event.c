/*
 * The event's memory and its builders: a message as subscribers receive
 * it, the topic-ready and reset events.  Called on the worker's threads:
 * nothing here touches nginx objects but ngx_cycle->log.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_geostream_event.h"
#include "ngx_geostream_message.h"

/*
 * for ngx_geostream_stats and its add macro only, until they have their
 * own header (ngx_geostream_stats.h)
 */
#include "ngx_geostream_kafka.h"


/*
 * The event streams get when a partition's log no longer has the reader's
 * position: "reset" (its end is before it) or "retention" (its start is
 * after it).  Topic names are [a-zA-Z0-9._-]: nothing to escape.
 */
#define NGX_GEOSTREAM_RESET_EVENT                                             \
    "id: %.*s\nevent: %s\ndata: {\"reason\":\"%s\",\"topic\":\"%s\","       \
    "\"partition\":%d,\"offset\":%lld,\"previous\":%lld}\n\n"


static size_t ngx_geostream_event_cursor(ngx_geostream_reading_t *rd,
    u_char **cursor);


ngx_geostream_event_t *
ngx_geostream_event_alloc(ngx_geostream_event_type_e type,
    ngx_geostream_reading_t *rd, const char *name, size_t name_len,
    size_t data_len)
{
    size_t                  size;
    ngx_geostream_event_t  *ev;

    size = sizeof(ngx_geostream_event_t) + rd->name_len + 1 + name_len
           + data_len;

    ev = malloc(size);
    if (ev == NULL) {
        return NULL;
    }

    ngx_memzero(ev, sizeof(ngx_geostream_event_t));

    ev->type = type;
    ev->refs = 1;
    ev->size = size;
    ev->partition = -1;
    ev->offset = -1;

    ev->topic.len = rd->name_len;
    ev->topic.data = (u_char *) (ev + 1);
    ngx_memcpy(ev->topic.data, rd->name, rd->name_len);
    ev->topic.data[rd->name_len] = '\0';

    ev->name.len = name_len;
    ev->name.data = ev->topic.data + rd->name_len + 1;
    ngx_memcpy(ev->name.data, name, name_len);

    ev->data.len = data_len;
    ev->data.data = ev->name.data + name_len;

    return ev;
}


void
ngx_geostream_event_release(ngx_geostream_event_t *ev)
{
    if (--ev->refs == 0) {
        free(ev);
    }
}


ngx_geostream_event_t *
ngx_geostream_event_message(ngx_geostream_reading_t *rd, int32_t partition,
    int64_t offset, int64_t timestamp, const u_char *payload, size_t len)
{
    u_char                    *id;
    char                      *json;
    size_t                     id_len, json_len;
    ngx_geostream_event_t     *ev;
    ngx_geostream_error_t      err;
    ngx_geostream_position_t   pos;

    if (partition >= 0 && partition < rd->partitions) {
        rd->next_offsets[partition] = offset + 1;
    }

    ngx_geostream_stats_add(consumed, 1);

    if (ngx_geostream_position_parse(&pos, payload, len, &err) != 0) {
        ngx_geostream_stats_add(skipped, 1);
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "geostream: skipped message at \"%s\" [%d] offset %O: "
                      "%s: %s", rd->name, partition, (off_t) offset,
                      err.code, err.detail);
        return NULL;
    }

    json = ngx_geostream_position_event(&pos, rd->name);

    if (json == NULL) {
        ngx_geostream_position_free(&pos);
        return NULL;
    }

    json_len = ngx_strlen(json);

    id_len = ngx_geostream_event_cursor(rd, &id);
    if (id == NULL) {
        free(json);
        ngx_geostream_position_free(&pos);
        return NULL;
    }

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_MESSAGE, rd,
                                   pos.name, pos.name_len,
                                   ngx_geostream_sse_event_size(id, id_len,
                                               (u_char *) json, json_len));
    if (ev != NULL) {
        ev->partition = partition;
        ev->offset = offset;
        ev->timestamp = timestamp;
        ev->lat = pos.lat;
        ev->lon = pos.lon;
        ngx_geostream_sse_event_write(ev->data.data, id, id_len,
                                      (u_char *) json, json_len);
    }

    ngx_geostream_position_free(&pos);
    free(id);
    free(json);

    return ev;
}


ngx_geostream_event_t *
ngx_geostream_event_ready(ngx_geostream_reading_t *rd)
{
    u_char                 *cursor;
    size_t                  n;
    ngx_geostream_event_t  *ev;

    n = ngx_geostream_event_cursor(rd, &cursor);
    if (cursor == NULL) {
        return NULL;
    }

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_TOPIC_READY, rd,
                                   NULL, 0, n);
    if (ev != NULL) {
        ngx_memcpy(ev->data.data, cursor, n);
        ev->timestamp = (int64_t) time(NULL) * 1000;
    }

    free(cursor);

    return ev;
}


ngx_geostream_event_t *
ngx_geostream_event_reset(ngx_geostream_reading_t *rd, int32_t partition,
    int64_t offset, int64_t was, const char *what)
{
    int                     len;
    u_char                 *cursor;
    size_t                  n;
    ngx_geostream_event_t  *ev;

    n = ngx_geostream_event_cursor(rd, &cursor);
    if (cursor == NULL) {
        return NULL;
    }

    /* "id: " first, as in a message's event, so that it places streams */
    len = snprintf(NULL, 0, NGX_GEOSTREAM_RESET_EVENT, (int) n, cursor, what,
                   what, rd->name, partition, (long long) offset,
                   (long long) was);

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_RESET, rd, NULL, 0,
                                   len + 1);
    if (ev != NULL) {
        ev->partition = partition;
        ev->offset = offset;
        ev->timestamp = (int64_t) time(NULL) * 1000;
        ev->data.len = snprintf((char *) ev->data.data, len + 1,
                                NGX_GEOSTREAM_RESET_EVENT, (int) n, cursor,
                                what, what, rd->name, partition,
                                (long long) offset, (long long) was);
    }

    free(cursor);

    return ev;
}


/* the topic's cursor now: every partition's next offset, "0:12,1:7" */
static size_t
ngx_geostream_event_cursor(ngx_geostream_reading_t *rd, u_char **cursor)
{
    u_char   *p, *last;
    size_t    size;
    int32_t   i;

    size = rd->partitions * (NGX_INT32_LEN + NGX_INT64_LEN + 2) + 1;

    *cursor = malloc(size);
    if (*cursor == NULL) {
        return 0;
    }

    p = *cursor;
    last = p + size;

    for (i = 0; i < rd->partitions; i++) {
        p = ngx_slprintf(p, last, "%s%D:%L", i ? "," : "", i,
                         rd->next_offsets[i]);
    }

    return p - *cursor;
}
