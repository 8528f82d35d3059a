/*
 * The event's memory and its builders: a message as subscribers receive
 * it, the topic-ready and reset events.  Called on the worker's threads:
 * nothing here touches nginx objects but ngx_cycle->log.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_geostream_event.h"
#include "ngx_geostream_json_writer.h"
#include "ngx_geostream_message.h"


/*
 * The event streams get when a partition's log no longer has the reader's
 * position: "reset" (its end is before it) or "retention" (its start is
 * after it), after the "id: " line.  Topic names are [a-zA-Z0-9._-]:
 * nothing to escape.
 */


static u_char *ngx_geostream_event_id(u_char *p, ngx_geostream_event_t *ev);
static void ngx_geostream_event_reset_json(ngx_geostream_json_writer_t *w,
    ngx_geostream_reading_t *rd, int32_t partition, int64_t offset,
    int64_t was, const char *what);


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
    int64_t offset, int64_t timestamp, const u_char *payload, size_t len,
    ngx_geostream_stats_t *stats)
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

    ngx_geostream_stats_add(stats, consumed, 1);

    if (ngx_geostream_position_parse(&pos, payload, len, &err) != 0) {
        ngx_geostream_stats_add(stats, skipped, 1);
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
    ngx_geostream_event_t  *ev;

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_TOPIC_READY, rd,
                                   NULL, 0, 0);
    if (ev == NULL) {
        return NULL;
    }

    ev->timestamp = (int64_t) time(NULL) * 1000;

    return ev;
}


ngx_geostream_event_t *
ngx_geostream_event_reset(ngx_geostream_reading_t *rd, int32_t partition,
    int64_t offset, int64_t was, const char *what)
{
    u_char                       *p;
    size_t                        id_len, what_len;
    ngx_geostream_event_t        *ev;
    ngx_geostream_cursor_t        cursor;
    ngx_geostream_json_writer_t   w;

    cursor.next = rd->next_offsets;
    cursor.n = rd->partitions;

    /* "id: " first, as in a message's event, so that it places streams */
    id_len = sizeof("id: \n") - 1 + ngx_geostream_cursor_len(&cursor);
    what_len = ngx_strlen(what);

    ngx_geostream_jw_init(&w, NULL, 0);
    ngx_geostream_event_reset_json(&w, rd, partition, offset, was, what);

    ev = ngx_geostream_event_alloc(NGX_GEOSTREAM_EVENT_RESET, rd, NULL, 0,
                                   id_len + sizeof("event: \ndata: ") - 1
                                   + what_len + w.size + 2);
    if (ev == NULL) {
        return NULL;
    }

    ev->partition = partition;
    ev->offset = offset;
    ev->timestamp = (int64_t) time(NULL) * 1000;

    p = ngx_geostream_event_id(ev->data.data, ev);
    p = ngx_cpymem(p, "event: ", sizeof("event: ") - 1);
    p = ngx_cpymem(p, what, what_len);
    p = ngx_cpymem(p, "\ndata: ", sizeof("\ndata: ") - 1);

    ngx_geostream_jw_init(&w, p, w.size);
    ngx_geostream_event_reset_json(&w, rd, partition, offset, was, what);
    p += w.size;

    *p++ = '\n';
    *p++ = '\n';

    ev->data.len = p - ev->data.data;

    ngx_log_debug5(NGX_LOG_DEBUG_CORE, ngx_cycle->log, 0,
                   "geostream event: %s of \"%s\" [%D] at %L, was %L",
                   what, rd->name, partition, offset, was);

    return ev;
}


/*
 * A reset's data: why, where the partition's reading goes on, and where
 * it was.  Topic names are [a-zA-Z0-9._-]: the writer escapes nothing.
 */
static void
ngx_geostream_event_reset_json(ngx_geostream_json_writer_t *w,
    ngx_geostream_reading_t *rd, int32_t partition, int64_t offset,
    int64_t was, const char *what)
{
    ngx_geostream_jw_object(w);
    ngx_geostream_jw_key(w, "reason");
    ngx_geostream_jw_string(w, what, ngx_strlen(what));
    ngx_geostream_jw_key(w, "topic");
    ngx_geostream_jw_string(w, rd->name, rd->name_len);
    ngx_geostream_jw_key(w, "partition");
    ngx_geostream_jw_int(w, partition);
    ngx_geostream_jw_key(w, "offset");
    ngx_geostream_jw_int(w, offset);
    ngx_geostream_jw_key(w, "previous");
    ngx_geostream_jw_int(w, was);
    ngx_geostream_jw_object_end(w);
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
