/*
 * A topic's recent events, and since=.  Plain C: see the header.
 */

#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_history.h"


static int ngx_geostream_history_partitions(ngx_geostream_history_t *h,
    size_t n);


int
ngx_geostream_history_init(ngx_geostream_history_t *h, size_t capacity,
    size_t max_bytes)
{
    memset(h, 0, sizeof(ngx_geostream_history_t));

    h->max_bytes = max_bytes;

    if (capacity == 0) {
        return 0;
    }

    h->entries = calloc(capacity, sizeof(ngx_geostream_history_entry_t));
    if (h->entries == NULL) {
        return -1;
    }

    h->capacity = capacity;

    return 0;
}


void
ngx_geostream_history_free(ngx_geostream_history_t *h)
{
    free(h->entries);
    free(h->start);
    memset(h, 0, sizeof(ngx_geostream_history_t));
}


/* partitions that appear later start at 0: all their messages are new */
static int
ngx_geostream_history_partitions(ngx_geostream_history_t *h, size_t n)
{
    int64_t  *start;

    if (n <= h->npartitions) {
        return 0;
    }

    if (n > NGX_GEOSTREAM_PARTITIONS_MAX) {
        return -1;
    }

    start = realloc(h->start, n * sizeof(int64_t));
    if (start == NULL) {
        return -1;
    }

    memset(start + h->npartitions, 0,
           (n - h->npartitions) * sizeof(int64_t));

    h->start = start;
    h->npartitions = n;

    return 0;
}


int
ngx_geostream_history_begin(ngx_geostream_history_t *h,
    const int64_t *offsets, size_t n, int64_t now)
{
    size_t  p;

    if (ngx_geostream_history_partitions(h, n) != 0) {
        return -1;
    }

    if (n) {
        memcpy(h->start, offsets, n * sizeof(int64_t));
    }

    /* from offset 0 everywhere, the ring has the topic since it began */
    h->start_time = 0;

    for (p = 0; p < n; p++) {
        if (offsets[p] != 0) {
            h->start_time = now;
            break;
        }
    }

    return 0;
}


static int
ngx_geostream_history_room(const ngx_geostream_history_t *h, size_t size)
{
    return h->count < h->capacity
           && (h->max_bytes == 0
               || (size <= h->max_bytes
                   && h->bytes <= h->max_bytes - size));
}


/* the ring no longer holds this event: it covers what comes after it */
static void
ngx_geostream_history_skip(ngx_geostream_history_t *h, int32_t partition,
    int64_t offset, int64_t timestamp)
{
    if (partition >= 0 && (size_t) partition < h->npartitions
        && h->start[partition] <= offset)
    {
        h->start[partition] = offset + 1;
    }

    if (timestamp > h->start_time) {
        h->start_time = timestamp;
    }
}


void *
ngx_geostream_history_evict(ngx_geostream_history_t *h, size_t size)
{
    ngx_geostream_history_entry_t  *e;

    if (h->count == 0 || ngx_geostream_history_room(h, size)) {
        return NULL;
    }

    if (h->max_bytes && size > h->max_bytes) {
        /* it will not be kept anyway: what is there stays */
        return NULL;
    }

    e = &h->entries[h->first];

    ngx_geostream_history_skip(h, e->partition, e->offset, e->timestamp);

    h->first = (h->first + 1) % h->capacity;
    h->count--;
    h->bytes -= e->size;

    return e->data;
}


void *
ngx_geostream_history_shift(ngx_geostream_history_t *h)
{
    ngx_geostream_history_entry_t  *e;

    if (h->count == 0) {
        return NULL;
    }

    e = &h->entries[h->first];

    h->first = (h->first + 1) % h->capacity;
    h->count--;
    h->bytes -= e->size;

    return e->data;
}


int
ngx_geostream_history_push(ngx_geostream_history_t *h, void *data,
    size_t size, int32_t partition, int64_t offset, int64_t timestamp)
{
    ngx_geostream_history_entry_t  *e;

    if (partition < 0
        || ngx_geostream_history_partitions(h, (size_t) partition + 1) != 0)
    {
        return -1;
    }

    if (!ngx_geostream_history_room(h, size)) {
        ngx_geostream_history_skip(h, partition, offset, timestamp);
        return -1;
    }

    e = &h->entries[(h->first + h->count) % h->capacity];
    e->data = data;
    e->size = size;
    e->partition = partition;
    e->offset = offset;
    e->timestamp = timestamp;

    h->count++;
    h->bytes += size;

    return 0;
}


int
ngx_geostream_history_covers(const ngx_geostream_history_t *h,
    const int64_t *cursor, size_t n)
{
    size_t   p;
    int64_t  next;

    for (p = 0; p < h->npartitions; p++) {
        next = (p < n) ? cursor[p] : 0;

        if (next < h->start[p]) {
            return 0;
        }
    }

    return 1;
}


int
ngx_geostream_history_covers_time(const ngx_geostream_history_t *h,
    int64_t time)
{
    return time >= h->start_time;
}


const ngx_geostream_history_entry_t *
ngx_geostream_history_at(const ngx_geostream_history_t *h, size_t i)
{
    if (i >= h->count) {
        return NULL;
    }

    return &h->entries[(h->first + i) % h->capacity];
}


/* a duration's units, largest first, as nginx's ngx_parse_time() has them */
static const struct {
    const char  *unit;
    size_t       len;
    int64_t      ms;
} ngx_geostream_since_units[] = {
    { "y", 1, 365LL * 24 * 3600 * 1000 },
    { "M", 1, 30LL * 24 * 3600 * 1000 },
    { "w", 1, 7LL * 24 * 3600 * 1000 },
    { "d", 1, 24LL * 3600 * 1000 },
    { "h", 1, 3600LL * 1000 },
    { "ms", 2, 1 },                 /* before "m": the longer unit first */
    { "m", 1, 60LL * 1000 },
    { "s", 1, 1000 },
};


/* the order in which a duration's units may follow each other */
static const int  ngx_geostream_since_rank[] = { 0, 1, 2, 3, 4, 7, 5, 6 };


int
ngx_geostream_since_parse(const unsigned char *data, size_t len,
    int64_t now, int64_t *since)
{
    int                   rank, last_rank;
    size_t                i, u, digits;
    int64_t               n, total;
    const unsigned char  *p, *end;

    *since = 0;

    if (len == 6 && memcmp(data, "latest", 6) == 0) {
        return NGX_GEOSTREAM_SINCE_LATEST;
    }

    if (len == 9 && memcmp(data, "beginning", 9) == 0) {
        return NGX_GEOSTREAM_SINCE_BEGINNING;
    }

    if (len == 0 || len > NGX_GEOSTREAM_SINCE_LEN_MAX) {
        return -1;
    }

    /* only digits: a time in ms since the epoch */
    for (i = 0; i < len && data[i] >= '0' && data[i] <= '9'; i++) {
        /* void */
    }

    if (i == len) {
        for (n = 0, i = 0; i < len; i++) {
            if (n > (INT64_MAX - (data[i] - '0')) / 10) {
                return -1;
            }

            n = n * 10 + (data[i] - '0');
        }

        *since = n;
        return NGX_GEOSTREAM_SINCE_TIME;
    }

    /* a duration back from now: 90s, 5m, 1h30m, each unit once, in order */
    p = data;
    end = data + len;
    total = 0;
    last_rank = -1;

    while (p < end) {
        n = 0;

        for (digits = 0; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits == 9) {
                return -1;
            }

            n = n * 10 + (*p - '0');
        }

        if (digits == 0) {
            return -1;
        }

        for (u = 0; u < sizeof(ngx_geostream_since_units)
                        / sizeof(ngx_geostream_since_units[0]); u++)
        {
            if ((size_t) (end - p) >= ngx_geostream_since_units[u].len
                && memcmp(p, ngx_geostream_since_units[u].unit,
                          ngx_geostream_since_units[u].len) == 0)
            {
                break;
            }
        }

        if (u == sizeof(ngx_geostream_since_units)
                 / sizeof(ngx_geostream_since_units[0]))
        {
            return -1;
        }

        rank = ngx_geostream_since_rank[u];

        if (rank <= last_rank) {
            return -1;
        }

        last_rank = rank;
        p += ngx_geostream_since_units[u].len;

        if (n > (INT64_MAX - total) / ngx_geostream_since_units[u].ms) {
            return -1;
        }

        total += n * ngx_geostream_since_units[u].ms;
    }

    /* back before the epoch is from the very beginning of time */
    *since = (total < now) ? now - total : 0;

    return NGX_GEOSTREAM_SINCE_TIME;
}
