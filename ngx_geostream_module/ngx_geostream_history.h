/*
 * A topic's recent events, per worker, that cursors point into (cursors
 * themselves are ngx_geostream_cursor.h's), and since= (where a stream
 * starts).
 *
 * The ring keeps the last events in the order they were delivered, and
 * knows from which offset on it holds every event of each partition, so it
 * can tell whether it alone can resume a cursor.
 *
 * It is bounded twice: by a number of events, and by their bytes, so that
 * large messages cannot make a topic's history take more memory than was
 * configured.
 *
 * Plain C: no nginx needed, so unit tests and fuzzers reach it.  The ring
 * stores the caller's pointers and hands evicted ones back.
 */

#ifndef _NGX_GEOSTREAM_HISTORY_H_INCLUDED_
#define _NGX_GEOSTREAM_HISTORY_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "ngx_geostream_cursor.h"


typedef struct {
    void          *data;
    size_t         size;               /* bytes it counts for */
    int32_t        partition;
    int64_t        offset;
    int64_t        timestamp;          /* ms since the epoch */
} ngx_geostream_history_entry_t;


typedef struct {
    ngx_geostream_history_entry_t  *entries;
    size_t                          capacity;
    size_t                          first;       /* the oldest entry */
    size_t                          count;
    size_t                          max_bytes;   /* 0: no bound */
    size_t                          bytes;       /* the entries' sizes */

    /* per partition: every event from this offset on is in the ring */
    int64_t                        *start;
    size_t                          npartitions;

    /* every event since this time is in the ring */
    int64_t                         start_time;
} ngx_geostream_history_t;


/* at most "capacity" events, of at most "max_bytes" in all (0: no bound) */
int ngx_geostream_history_init(ngx_geostream_history_t *h, size_t capacity,
    size_t max_bytes);
void ngx_geostream_history_free(ngx_geostream_history_t *h);

/*
 * Where reading the topic began: "offsets" per partition (partitions that
 * appear later begin at 0) at time "now".  Beginning at 0 everywhere (or
 * with no partition yet) means from the topic's very start: all time.
 */
int ngx_geostream_history_begin(ngx_geostream_history_t *h,
    const int64_t *offsets, size_t n, int64_t now);

/*
 * Makes room for an event of "size" bytes: while the ring has none, it
 * removes its oldest entry and returns its data (the caller releases it);
 * NULL once there is room, when there is nothing left to remove, or when
 * the event is over the ring's bytes by itself (the ring then keeps what
 * it has).  Call it until it returns NULL, then push.
 */
void *ngx_geostream_history_evict(ngx_geostream_history_t *h, size_t size);

/*
 * Appends an event: 0 when the ring keeps it, -1 when it does not (no
 * room: the ring holds no events or the event alone is over its bytes; or
 * memory ran out).  An event not kept is one the ring no longer claims to
 * hold: it then covers that partition from the next offset on only.
 */
int ngx_geostream_history_push(ngx_geostream_history_t *h, void *data,
    size_t size, int32_t partition, int64_t offset, int64_t timestamp);

/*
 * Removes the oldest entry and returns its data (the caller releases it);
 * NULL when the ring is empty.  To empty a ring whose events no longer
 * follow on from what comes next (a partition's log that was reset).
 */
void *ngx_geostream_history_shift(ngx_geostream_history_t *h);

/* 1 when the ring holds every event after "cursor" (n partitions) */
int ngx_geostream_history_covers(const ngx_geostream_history_t *h,
    const int64_t *cursor, size_t n);

/* 1 when the ring holds every event since "time" */
int ngx_geostream_history_covers_time(const ngx_geostream_history_t *h,
    int64_t time);

/* the i-th entry, oldest first */
const ngx_geostream_history_entry_t *ngx_geostream_history_at(
    const ngx_geostream_history_t *h, size_t i);

/* where a stream starts (since=) */
#define NGX_GEOSTREAM_SINCE_LATEST     0
#define NGX_GEOSTREAM_SINCE_BEGINNING  1
#define NGX_GEOSTREAM_SINCE_TIME       2

#define NGX_GEOSTREAM_SINCE_LEN_MAX    64

/*
 * since=: "latest", "beginning", a time in ms since the epoch (within
 * int64), or a duration back from "now" (ms): numbers of up to 9 digits
 * with units y, M (30 days), w, d, h, m, s, ms, largest first, each once
 * ("1h30m"), as nginx's time syntax without its spaces.  Returns one of
 * the NGX_GEOSTREAM_SINCE_ values (the time in "*since" for TIME), or -1.
 */
int ngx_geostream_since_parse(const unsigned char *data, size_t len,
    int64_t now, int64_t *since);


#endif /* _NGX_GEOSTREAM_HISTORY_H_INCLUDED_ */
