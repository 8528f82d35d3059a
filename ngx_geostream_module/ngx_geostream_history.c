/*
 * A topic's recent events and cursors.  Plain C: see the header.
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


int
ngx_geostream_cursor_parse(const unsigned char *data, size_t len,
    int64_t *offsets, size_t max)
{
    size_t                n;
    int64_t               partition, offset, *value;
    const unsigned char  *p, *last;

    memset(offsets, 0, max * sizeof(int64_t));

    n = 0;
    p = data;
    last = data + len;

    if (len == 0) {
        return -1;
    }

    while (p < last) {
        partition = 0;
        offset = 0;

        for (value = &partition; value; /* void */) {
            if (p == last || *p < '0' || *p > '9') {
                return -1;
            }

            for ( /* void */ ; p < last && *p >= '0' && *p <= '9'; p++) {
                if (*value > (INT64_MAX - 9) / 10) {
                    return -1;
                }

                *value = *value * 10 + (*p - '0');
            }

            if (value == &partition) {
                if (p == last || *p != ':') {
                    return -1;
                }

                p++;
                value = &offset;

            } else {
                value = NULL;
            }
        }

        if (partition >= (int64_t) max) {
            return -1;
        }

        offsets[partition] = offset;

        if ((size_t) partition + 1 > n) {
            n = (size_t) partition + 1;
        }

        if (p < last) {
            if (*p != ',' || p + 1 == last) {
                return -1;
            }

            p++;
        }
    }

    return (int) n;
}
