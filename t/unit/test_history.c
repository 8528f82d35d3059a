/*
 * Unit tests of ngx_geostream_history.c (ring, since) and
 * ngx_geostream_filter.c (bbox, names).  Plain C; prints TAP for prove.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_filter.h"
#include "ngx_geostream_history.h"
#include "ngx_geostream_message.h"
#include "tap.h"


static int
since_is(const char *s, int want, int64_t want_since)
{
    int      rc;
    int64_t  since;

    rc = ngx_geostream_since_parse((const unsigned char *) s, strlen(s),
                                   1700000000000LL, &since);

    return rc == want && (rc != NGX_GEOSTREAM_SINCE_TIME
                          || since == want_since);
}


static void
test_since(void)
{
    ok(since_is("latest", NGX_GEOSTREAM_SINCE_LATEST, 0)
       && since_is("beginning", NGX_GEOSTREAM_SINCE_BEGINNING, 0),
       "since=latest and since=beginning");
    ok(since_is("1690000000000", NGX_GEOSTREAM_SINCE_TIME, 1690000000000LL)
       && since_is("0", NGX_GEOSTREAM_SINCE_TIME, 0)
       && since_is("9223372036854775807", NGX_GEOSTREAM_SINCE_TIME,
                   INT64_MAX),
       "a time in ms since the epoch, up to INT64_MAX");
    ok(since_is("5m", NGX_GEOSTREAM_SINCE_TIME, 1700000000000LL - 300000)
       && since_is("1h30m", NGX_GEOSTREAM_SINCE_TIME,
                   1700000000000LL - 5400000)
       && since_is("2d3h4m5s6ms", NGX_GEOSTREAM_SINCE_TIME,
                   1700000000000LL - (((2 * 24 + 3) * 60 + 4) * 60 + 5)
                                     * 1000 - 6)
       && since_is("1y", NGX_GEOSTREAM_SINCE_TIME,
                   1700000000000LL - 365LL * 24 * 3600 * 1000),
       "durations back from now, in nginx's units");
    ok(since_is("100y", NGX_GEOSTREAM_SINCE_TIME, 0),
       "a duration back before the epoch is from the beginning of time");
    ok(since_is("", -1, 0) && since_is("1m1m", -1, 0)
       && since_is("1s1m", -1, 0) && since_is("5", NGX_GEOSTREAM_SINCE_TIME, 5)
       && since_is("5q", -1, 0) && since_is("m", -1, 0)
       && since_is("-5m", -1, 0) && since_is("5m ", -1, 0)
       && since_is("1234567890m", -1, 0)
       && since_is("9999999999999999999", -1, 0)
       && since_is("yesterday", -1, 0) && since_is("Latest", -1, 0),
       "malformed: empty, units twice or out of order, unknown, signs, "
       "spaces, too many digits");
    ok(since_is("292000000y", NGX_GEOSTREAM_SINCE_TIME, 0)
       && since_is("293000000y", -1, 0)
       && since_is("292000000y999999999w", -1, 0),
       "a duration whose sum would overflow int64 is refused");
}


static void
test_ring(void)
{
    void                                 *evicted;
    int64_t                               begin[2] = { 10, 20 };
    int64_t                               cursor[2];
    ngx_geostream_history_t               h;
    const ngx_geostream_history_entry_t  *e;

    ok(ngx_geostream_history_init(&h, 3, 0) == 0, "a ring of 3");
    ok(ngx_geostream_history_begin(&h, begin, 2, 1000) == 0,
       "reading began at 0:10,1:20");

    cursor[0] = 10;
    cursor[1] = 20;
    ok(ngx_geostream_history_covers(&h, cursor, 2),
       "an empty ring covers the starting cursor");

    cursor[0] = 9;
    ok(!ngx_geostream_history_covers(&h, cursor, 2),
       "but not one before it");

    ok(ngx_geostream_history_evict(&h, 1) == NULL
       && ngx_geostream_history_push(&h, "a", 1, 0, 10, 1001) == 0,
       "push a");
    ngx_geostream_history_push(&h, "b", 1, 1, 20, 1002);
    ngx_geostream_history_push(&h, "c", 1, 0, 11, 1003);
    evicted = ngx_geostream_history_evict(&h, 1);
    ok(evicted != NULL && strcmp(evicted, "a") == 0,
       "a full ring hands back its oldest entry");
    ok(ngx_geostream_history_evict(&h, 1) == NULL,
       "and then it has room");
    ok(ngx_geostream_history_push(&h, "d", 1, 0, 12, 1004) == 0, "push d");

    e = ngx_geostream_history_at(&h, 0);
    ok(e && strcmp(e->data, "b") == 0 && e->partition == 1
       && e->offset == 20, "the oldest is now b");
    ok(ngx_geostream_history_at(&h, 3) == NULL, "three entries");

    cursor[0] = 10;
    cursor[1] = 20;
    ok(!ngx_geostream_history_covers(&h, cursor, 2),
       "a cursor before the evicted offset is no longer covered");

    cursor[0] = 11;
    ok(ngx_geostream_history_covers(&h, cursor, 2),
       "one right after it is");
    ok(!ngx_geostream_history_covers_time(&h, 1000)
       && ngx_geostream_history_covers_time(&h, 1001),
       "time coverage starts at the evicted event's time");

    ok(strcmp(ngx_geostream_history_evict(&h, 1), "b") == 0,
       "b makes room for e");
    ngx_geostream_history_push(&h, "e", 1, 2, 0, 1005);
    cursor[0] = 11;
    cursor[1] = 21;
    ok(ngx_geostream_history_covers(&h, cursor, 2),
       "a new partition starts at 0, and a cursor without it means 0");
    cursor[1] = 20;
    ok(!ngx_geostream_history_covers(&h, cursor, 2),
       "b was evicted to make room for e");

    ngx_geostream_history_free(&h);

    begin[0] = 0;
    begin[1] = 0;
    ngx_geostream_history_init(&h, 3, 0);
    ngx_geostream_history_begin(&h, begin, 2, 5000);
    ok(ngx_geostream_history_covers_time(&h, 0),
       "reading from offset 0 everywhere covers all time");
    ngx_geostream_history_free(&h);
}


/* a reset log: the ring is emptied, then begins at the reset's cursor */
static void
test_ring_shift(void)
{
    void                     *data;
    int64_t                   begin[2] = { 5, 7 };
    int64_t                   cursor[2] = { 0, 0 };
    ngx_geostream_history_t   h;

    ngx_geostream_history_init(&h, 4, 100);
    ngx_geostream_history_begin(&h, begin, 2, 1000);
    ngx_geostream_history_push(&h, "x", 10, 0, 5, 1001);
    ngx_geostream_history_push(&h, "y", 20, 1, 7, 1002);

    data = ngx_geostream_history_shift(&h);
    ok(data && strcmp(data, "x") == 0 && h.count == 1 && h.bytes == 20,
       "shift hands back the oldest entry and forgets its bytes");
    data = ngx_geostream_history_shift(&h);
    ok(data && strcmp(data, "y") == 0 && h.count == 0 && h.bytes == 0,
       "then the next");
    ok(ngx_geostream_history_shift(&h) == NULL, "an empty ring has none");

    ok(ngx_geostream_history_begin(&h, cursor, 2, 2000) == 0
       && ngx_geostream_history_covers(&h, cursor, 2)
       && ngx_geostream_history_covers_time(&h, 0),
       "begun again at 0:0,1:0 it covers the new log from its start");
    ok(ngx_geostream_history_push(&h, "z", 10, 0, 0, 2001) == 0
       && ngx_geostream_history_at(&h, 0)->offset == 0,
       "and keeps the new log's events");

    ngx_geostream_history_free(&h);
}


/* the ring's second bound: the bytes of its events */
static void
test_ring_bytes(void)
{
    void                                 *evicted;
    size_t                                n;
    int64_t                               begin[1] = { 0 };
    int64_t                               cursor[1];
    ngx_geostream_history_t               h;
    const ngx_geostream_history_entry_t  *e;

    ok(ngx_geostream_history_init(&h, 100, 1000) == 0,
       "a ring of 100 events and 1000 bytes");
    ngx_geostream_history_begin(&h, begin, 1, 1000);

    ngx_geostream_history_push(&h, "a", 400, 0, 0, 1001);
    ngx_geostream_history_push(&h, "b", 400, 0, 1, 1002);
    ok(h.bytes == 800 && h.count == 2, "two events, 800 bytes");

    evicted = ngx_geostream_history_evict(&h, 300);
    ok(evicted != NULL && strcmp(evicted, "a") == 0,
       "300 more bytes do not fit: the oldest goes");
    ok(ngx_geostream_history_evict(&h, 300) == NULL, "then they fit");
    ok(ngx_geostream_history_push(&h, "c", 300, 0, 2, 1003) == 0
       && h.bytes == 700 && h.count == 2, "c is kept: 700 bytes");

    cursor[0] = 0;
    ok(!ngx_geostream_history_covers(&h, cursor, 1),
       "what went for bytes is no longer covered");
    cursor[0] = 1;
    ok(ngx_geostream_history_covers(&h, cursor, 1),
       "what is left is");

    n = 0;
    while ((evicted = ngx_geostream_history_evict(&h, 1000)) != NULL) {
        n++;
    }
    ok(n == 2 && h.bytes == 0, "1000 bytes take the whole ring");
    ngx_geostream_history_push(&h, "d", 1000, 0, 3, 1004);

    ok(ngx_geostream_history_evict(&h, 1001) == NULL,
       "an event over the ring's bytes by itself evicts nothing");
    ok(ngx_geostream_history_push(&h, "e", 1001, 0, 4, 1005) == -1,
       "and is not kept");
    e = ngx_geostream_history_at(&h, 0);
    ok(e && strcmp(e->data, "d") == 0 && h.count == 1,
       "what the ring had stays");
    cursor[0] = 3;
    ok(!ngx_geostream_history_covers(&h, cursor, 1),
       "a cursor before the event not kept is not covered");
    cursor[0] = 5;
    ok(ngx_geostream_history_covers(&h, cursor, 1),
       "one after it is");
    ok(!ngx_geostream_history_covers_time(&h, 1004)
       && ngx_geostream_history_covers_time(&h, 1005),
       "nor is its time");

    ngx_geostream_history_free(&h);

    ngx_geostream_history_init(&h, 1, 0);
    ngx_geostream_history_begin(&h, begin, 1, 1000);
    ngx_geostream_history_push(&h, "a", 1, 0, 0, 1001);
    ok(ngx_geostream_history_push(&h, "b", 1, 0, 1, 1002) == -1,
       "a full ring takes nothing more without eviction");
    cursor[0] = 1;
    ok(!ngx_geostream_history_covers(&h, cursor, 1),
       "and no longer covers what it did not take");
    ngx_geostream_history_free(&h);

    ngx_geostream_history_init(&h, 0, 0);
    ngx_geostream_history_begin(&h, begin, 1, 1000);
    ok(ngx_geostream_history_evict(&h, 1) == NULL
       && ngx_geostream_history_push(&h, "a", 1, 0, 7, 1001) == -1,
       "a ring of no events keeps none");
    cursor[0] = 8;
    ok(ngx_geostream_history_covers(&h, cursor, 1)
       && (cursor[0] = 7, !ngx_geostream_history_covers(&h, cursor, 1)),
       "and covers only what comes after the last event");
    ngx_geostream_history_free(&h);
}


/*
 * Random rings and events against what the ring must never do: hold more
 * than its bounds, lose count of its bytes, or claim to cover a cursor
 * whose later events it does not all hold (a stream resumed from it would
 * miss them).  And it must keep the newest event whenever that fits.
 */
#define MODEL_PARTITIONS  3
#define MODEL_EVENTS      2000

typedef struct {
    int32_t   partition;
    int64_t   offset;
    size_t    size;
} model_event_t;


static int
model_holds(const ngx_geostream_history_t *h, const model_event_t *ev)
{
    size_t                                i;
    const ngx_geostream_history_entry_t  *e;

    for (i = 0; (e = ngx_geostream_history_at(h, i)) != NULL; i++) {
        if (e->data == ev) {
            return 1;
        }
    }

    return 0;
}


static int
model_round(unsigned seed)
{
    int                                   kept;
    size_t                                capacity, max_bytes, bytes, i, k;
    int64_t                               next[MODEL_PARTITIONS] = { 0 };
    int64_t                               begin[MODEL_PARTITIONS] = { 0 };
    model_event_t                        *events, *ev;
    ngx_geostream_history_t               h;
    const ngx_geostream_history_entry_t  *e;

    srand(seed);

    capacity = rand() % 9;                       /* 0 to 8 events */
    max_bytes = (rand() % 4) ? rand() % 200 + 1 : 0;   /* 0: no bound */

    events = calloc(MODEL_EVENTS, sizeof(model_event_t));
    if (events == NULL
        || ngx_geostream_history_init(&h, capacity, max_bytes) != 0
        || ngx_geostream_history_begin(&h, begin, MODEL_PARTITIONS, 1) != 0)
    {
        free(events);
        return 0;
    }

    for (i = 0; i < MODEL_EVENTS; i++) {
        ev = &events[i];
        ev->partition = rand() % MODEL_PARTITIONS;
        ev->offset = next[ev->partition]++;
        ev->size = rand() % 60 + 1;

        while (ngx_geostream_history_evict(&h, ev->size) != NULL) {
            /* void */
        }

        kept = (ngx_geostream_history_push(&h, ev, ev->size, ev->partition,
                                           ev->offset, (int64_t) i + 2)
                == 0);

        /* the newest event is kept whenever it can be */
        if (kept != (capacity > 0
                     && (max_bytes == 0 || ev->size <= max_bytes)))
        {
            goto failed;
        }

        /* the bounds, and the bytes it counts */
        bytes = 0;

        for (k = 0; (e = ngx_geostream_history_at(&h, k)) != NULL; k++) {
            bytes += e->size;
        }

        if (h.count > capacity || bytes != h.bytes
            || (max_bytes && bytes > max_bytes))
        {
            goto failed;
        }

        /* whatever it claims to cover, it holds */
        for (k = 0; k <= i; k++) {
            if (events[k].offset >= h.start[events[k].partition]
                && !model_holds(&h, &events[k]))
            {
                goto failed;
            }
        }
    }

    ngx_geostream_history_free(&h);
    free(events);
    return 1;

failed:

    printf("# seed %u, capacity %zu, max_bytes %zu, event %zu\n",
           seed, capacity, max_bytes, i);
    ngx_geostream_history_free(&h);
    free(events);
    return 0;
}


static void
test_ring_model(void)
{
    unsigned  seed, passed;

    passed = 0;

    for (seed = 1; seed <= 200; seed++) {
        passed += model_round(seed);
    }

    ok(passed == 200, "200 random rings of 2,000 events keep to their "
                      "bounds and hold all they claim to cover");
}


static void
test_filters(void)
{
    char                     long_name[NGX_GEOSTREAM_NAME_MAX + 1];
    const char              *names;
    ngx_geostream_name_t     storage[2];
    ngx_geostream_filter_t   f;

    memset(&f, 0, sizeof(f));
    ok(ngx_geostream_filter_match(&f, (const unsigned char *) "x", 1, 0, 0),
       "no filter lets everything through");

    ok(ngx_geostream_filter_bbox(&f, (const unsigned char *) "13,52,14,53",
                                 11) == 0, "a bbox parses");
    ok(ngx_geostream_filter_match(&f, (const unsigned char *) "x", 1,
                                  52.5, 13.4), "inside the box");
    ok(!ngx_geostream_filter_match(&f, (const unsigned char *) "x", 1,
                                   51.9, 13.4), "south of it");
    ok(!ngx_geostream_filter_match(&f, (const unsigned char *) "x", 1,
                                   52.5, 14.1), "east of it");

    ok(ngx_geostream_filter_bbox(&f, (const unsigned char *) "170,-10,-170,10",
                                 15) == 0
       && ngx_geostream_filter_match(&f, (const unsigned char *) "x", 1,
                                     0, 179)
       && ngx_geostream_filter_match(&f, (const unsigned char *) "x", 1,
                                     0, -179)
       && !ngx_geostream_filter_match(&f, (const unsigned char *) "x", 1,
                                      0, 0),
       "a box across the antimeridian");

    ok(ngx_geostream_filter_bbox(&f, (const unsigned char *) "1,2,3", 5) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) "1,2,3,4,5",
                                    9) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) "0,10,1,5",
                                    8) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) "0,0,1,x",
                                    7) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) "0,0,181,1",
                                    9) != 0,
       "malformed boxes are refused");

    memset(&f, 0, sizeof(f));
    names = "bus-1,tram-2";
    ok(ngx_geostream_filter_names(&f, (const unsigned char *) names,
                                  strlen(names), storage, 2) == 0
       && f.nnames == 2, "names parse");
    ok(ngx_geostream_filter_match(&f, (const unsigned char *) "tram-2", 6,
                                  0, 0)
       && !ngx_geostream_filter_match(&f, (const unsigned char *) "tram-", 5,
                                      0, 0)
       && !ngx_geostream_filter_match(&f, (const unsigned char *) "bus-10",
                                      6, 0, 0),
       "only the named entities pass, exactly");
    ok(ngx_geostream_filter_names(&f, (const unsigned char *) "a,,b", 4,
                                  storage, 2) != 0,
       "an empty name is refused");
    ok(ngx_geostream_filter_names(&f, (const unsigned char *) "a,b,c", 5,
                                  storage, 2) != 0 && f.nnames == 0,
       "more names than there is room for are refused");

    memset(long_name, 'n', sizeof(long_name));
    ok(ngx_geostream_filter_names(&f, (const unsigned char *) long_name,
                                  NGX_GEOSTREAM_NAME_MAX, storage, 2) == 0
       && ngx_geostream_filter_names(&f, (const unsigned char *) long_name,
                                     NGX_GEOSTREAM_NAME_MAX + 1, storage, 2)
          != 0,
       "a name is at most NGX_GEOSTREAM_NAME_MAX bytes, as a position's");
    ok(ngx_geostream_filter_names(&f, (const unsigned char *) "a,b\x01", 4,
                                  storage, 2) != 0
       && ngx_geostream_filter_names(&f, (const unsigned char *) "a\0b", 3,
                                     storage, 2) != 0
       && ngx_geostream_filter_names(&f, (const unsigned char *) "\x7f", 1,
                                     storage, 2) != 0
       && ngx_geostream_filter_names(&f, (const unsigned char *) "\xc2\x85",
                                     2, storage, 2) != 0,
       "a name with a control character (C0, DEL, C1) is refused");
    ok(ngx_geostream_filter_names(&f, (const unsigned char *) "\xff", 1,
                                  storage, 2) != 0
       && ngx_geostream_filter_names(&f, (const unsigned char *) "a\xc3", 2,
                                     storage, 2) != 0
       && ngx_geostream_filter_names(&f, (const unsigned char *)
                                     "Z\xc3\xbcrich,\xf0\x9f\x9a\x8c", 12,
                                     storage, 2) == 0,
       "a name is UTF-8: invalid or truncated refused, any other taken");

    memset(&f, 0, sizeof(f));
    ok(ngx_geostream_filter_bbox(&f, (const unsigned char *) "0x10,0,20,10",
                                 12) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) "1\0,2,3,4",
                                    8) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) "1e1,2,30,4",
                                    10) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) "inf,2,3,4",
                                    9) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) "nan,2,3,4",
                                    9) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) " 1,2,3,4",
                                    8) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) "+1,2,3,4",
                                    8) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) "1.,2,3,4",
                                    8) != 0
       && ngx_geostream_filter_bbox(&f, (const unsigned char *) ".5,2,3,4",
                                    8) != 0
       && !f.has_bbox,
       "bbox numbers are plain decimals: no hex, exponent, inf, nan, NUL, "
       "space, sign or bare point");
    ok(ngx_geostream_filter_bbox(&f, (const unsigned char *)
                                 "-180,-90.0,180.000,90", 21) == 0
       && f.west == -180 && f.south == -90 && f.east == 180
       && f.north == 90,
       "plain decimals at the limits are taken");
}


int
main(void)
{
    test_since();
    test_ring();
    test_ring_shift();
    test_ring_bytes();
    test_ring_model();
    test_filters();

    return done_testing();
}
