/*
 * The event: what the worker's threads (reader, replay) hand to the event
 * loop, one message of a topic (or a notice about it) as subscribers
 * receive it, built once on the thread and shared by every subscriber
 * that sends it.
 *
 * Building an event needs no nginx object and no librdkafka handle: the
 * builders take a message's plain fields, so that any thread may call
 * them.
 */

#ifndef _NGX_GEOSTREAM_EVENT_H_INCLUDED_
#define _NGX_GEOSTREAM_EVENT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_geostream_cursor.h"
#include "ngx_geostream_stats.h"


typedef enum {
    NGX_GEOSTREAM_EVENT_MESSAGE = 0,
    /* from now on, everything produced to the topic will be delivered */
    NGX_GEOSTREAM_EVENT_TOPIC_READY,
    /* a replayed message, for one replay's owner only */
    NGX_GEOSTREAM_EVENT_REPLAY,
    /* a replay's notice to its owner (SSE bytes, no filter applies) */
    NGX_GEOSTREAM_EVENT_REPLAY_NOTICE,
    /* the replay is over; its owner takes it from here */
    NGX_GEOSTREAM_EVENT_REPLAY_DONE,
    /*
     * a partition's log no longer has the reader's position (it was made
     * again, or retention passed it): reading goes on from the log's
     * start; an SSE event with its new "id:" for every subscriber
     */
    NGX_GEOSTREAM_EVENT_RESET
} ngx_geostream_event_type_e;


typedef struct ngx_geostream_event_s   ngx_geostream_event_t;

/* defined in ngx_geostream_replay.h; events only point to it */
typedef struct ngx_geostream_replay_s  ngx_geostream_replay_t;


/* a topic as a thread reads it: where each partition is (the cursor) */
typedef struct {
    char                       *name;
    size_t                      name_len;
    int32_t                     partitions;
    int64_t                    *next_offsets;
} ngx_geostream_reading_t;


/*
 * One message of a topic as subscribers receive it: the complete SSE
 * event.  Owned by the event loop once handed over; "refs" counts who
 * still points at "data".  One allocation holds the event, its cursor's
 * offsets, its topic, the entity's name and the SSE bytes.
 */
struct ngx_geostream_event_s {
    ngx_geostream_event_t      *next;
    ngx_geostream_event_type_e  type;
    ngx_uint_t                  refs;
    size_t                      size;         /* the memory it was given */
    ngx_str_t                   topic;
    ngx_geostream_replay_t     *replay;
    int32_t                     partition;
    int64_t                     offset;
    int64_t                     timestamp;    /* Kafka's, ms */

    /*
     * the topic's cursor after the event (a message's "id:"); TOPIC_READY:
     * where reading began; a replay's notice or end: the replay's position
     */
    ngx_geostream_cursor_t      cursor;

    /* what filters look at */
    ngx_str_t                   name;
    double                      lat;
    double                      lon;

    /* its SSE bytes (a message, a reset, a notice); TOPIC_READY: none */
    ngx_str_t                   data;
};


/*
 * An event of "rd"'s topic, with "rd"'s cursor now, room for a name and
 * "data_len" bytes
 */
ngx_geostream_event_t *ngx_geostream_event_alloc(
    ngx_geostream_event_type_e type, ngx_geostream_reading_t *rd,
    const char *name, size_t name_len, size_t data_len);

void ngx_geostream_event_release(ngx_geostream_event_t *ev);

/*
 * A message read at "offset" of "partition" as subscribers receive it;
 * advances "rd"'s cursor past it.  NULL when the payload is not a valid
 * position (skipped: counted in "stats" and logged) or out of memory.
 */
ngx_geostream_event_t *ngx_geostream_event_message(
    ngx_geostream_reading_t *rd, int32_t partition, int64_t offset,
    int64_t timestamp, const u_char *payload, size_t len,
    ngx_geostream_stats_t *stats);

/* TOPIC_READY: reading of "rd"'s topic began at its cursor now */
ngx_geostream_event_t *ngx_geostream_event_ready(ngx_geostream_reading_t *rd);

/*
 * RESET: reading of "partition" goes on at "offset" (the cursor of "rd"
 * already says so), not at "was", for the reason "what" ("reset" or
 * "retention", which is also the SSE event's name)
 */
ngx_geostream_event_t *ngx_geostream_event_reset(ngx_geostream_reading_t *rd,
    int32_t partition, int64_t offset, int64_t was, const char *what);


#endif /* _NGX_GEOSTREAM_EVENT_H_INCLUDED_ */
