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
 * after it), after the "id: " line.  Topic names are [a-zA-Z0-9._-]:
 * nothing to escape.
 */
#define NGX_GEOSTREAM_RESET_EVENT                                             \
    "event: %s\ndata: {\"reason\":\"%s\",\"topic\":\"%s\","                \
    "\"partition\":%d,\"offset\":%lld,\"previous\":%lld}\n\n"


static u_char *ngx_geostream_event_id(u_char *p, ngx_geostream_event_t *ev);


ngx_geostream_event_t *
ngx_geostream_event_alloc(ngx_geostream_event_type_e type,
    ngx_geostream_reading_t *rd, const char *name, size_t name_len,
    size_t data_len)
{
    size_t                  size, n;
    ngx_geostream_event_t  *ev;

    n = rd->partitions > 0 ? (size_t) rd->partitions : 0;

    /* the offsets first, where the struct's own alignment holds for them */
    size = sizeof(ngx_geostream_event_t) + n * sizeof(int64_t)
           + rd->name_len + 1 + name_len + data_len;

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

    ev->cursor.next = (int64_t *) (ev + 1);
    ev->cursor.n = n;

    if (n) {
        ngx_memcpy(ev->cursor.next, rd->next_offsets, n * sizeof(int64_t));
    }

    ev->topic.len = rd->name_len;
    ev->topic.data = (u_char *) (ev->cursor.next + n);
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
    u_char                    *p;
    char                      *json;
    size_t                     json_len, size;
    ngx_geostream_event_t     *ev;
    ngx_geostream_error_t      err;
    ngx_geostream_cursor_t     cursor;
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

    cursor.next = rd->next_offsets;
    cursor.n = rd->partitions;

    /* the "id: " line, then the data lines, as sse_event_write() frames */
    size = sizeof("id: \n") - 1 + ngx_geostream_cursor_len(&cursor)
           + ngx_geostream_sse_event_size(NULL, 0, (u_char *) json, json_len);

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_MESSAGE, rd,
                                   pos.name, pos.name_len, size);
    if (ev != NULL) {
        ev->partition = partition;
        ev->offset = offset;
        ev->timestamp = timestamp;
        ev->lat = pos.lat;
        ev->lon = pos.lon;

        p = ngx_geostream_event_id(ev->data.data, ev);
        ngx_geostream_sse_event_write(p, NULL, 0, (u_char *) json, json_len);
    }

    ngx_geostream_position_free(&pos);
    free(json);

    return ev;
}


ngx_geostream_event_t *
ngx_geostream_event_ready(ngx_geostream_reading_t *rd)
{
    ngx_geostream_event_t   *ev;
    ngx_geostream_cursor_t   cursor;

    cursor.next = rd->next_offsets;
    cursor.n = rd->partitions;

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_TOPIC_READY, rd,
                                   NULL, 0, ngx_geostream_cursor_len(&cursor));
    if (ev == NULL) {
        return NULL;
    }

    /* the cursor as text too, as the consumer location reads it now */
    (void) ngx_geostream_cursor_write(ev->data.data, &ev->cursor);
    ev->timestamp = (int64_t) time(NULL) * 1000;

    return ev;
}


ngx_geostream_event_t *
ngx_geostream_event_reset(ngx_geostream_reading_t *rd, int32_t partition,
    int64_t offset, int64_t was, const char *what)
{
    int                     len;
    u_char                 *p;
    size_t                  id_len;
    ngx_geostream_event_t  *ev;
    ngx_geostream_cursor_t  cursor;

    cursor.next = rd->next_offsets;
    cursor.n = rd->partitions;

    /* "id: " first, as in a message's event, so that it places streams */
    id_len = sizeof("id: \n") - 1 + ngx_geostream_cursor_len(&cursor);

    len = snprintf(NULL, 0, NGX_GEOSTREAM_RESET_EVENT, what, what, rd->name,
                   partition, (long long) offset, (long long) was);

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_RESET, rd, NULL, 0,
                                   id_len + len + 1);
    if (ev == NULL) {
        return NULL;
    }

    ev->partition = partition;
    ev->offset = offset;
    ev->timestamp = (int64_t) time(NULL) * 1000;

    p = ngx_geostream_event_id(ev->data.data, ev);
    len = snprintf((char *) p, len + 1, NGX_GEOSTREAM_RESET_EVENT, what, what,
                   rd->name, partition, (long long) offset, (long long) was);

    ev->data.len = id_len + len;

    return ev;
}


/* the event's "id: " line: its cursor; returns where the line ends */
static u_char *
ngx_geostream_event_id(u_char *p, ngx_geostream_event_t *ev)
{
    p = ngx_cpymem(p, "id: ", sizeof("id: ") - 1);
    p = ngx_geostream_cursor_write(p, &ev->cursor);
    *p++ = '\n';

    return p;
}
