/*
 * Unit tests of ngx_geostream_history.c (ring, cursors) and
 * ngx_geostream_filter.c (bbox, names).  Plain C; prints TAP for prove.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ngx_geostream_filter.h"
#include "ngx_geostream_history.h"
#include "tap.h"


static int
cursor_is(const char *s, int want_n, const int64_t *want)
{
    int      n, i;
    int64_t  offsets[8];

    n = ngx_geostream_cursor_parse((const unsigned char *) s, strlen(s),
                                   offsets, 8);
    if (n != want_n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (offsets[i] != want[i]) {
            return 0;
        }
    }

    return 1;
}


static void
test_cursors(void)
{
    static const int64_t  a[] = { 1234, 998 };
    static const int64_t  b[] = { 0, 0, 7 };

    ok(cursor_is("0:1234,1:998", 2, a), "a cursor parses");
    ok(cursor_is("1:998,0:1234", 2, a), "in any order");
    ok(cursor_is("2:7", 3, b), "unnamed partitions are at 0");
    ok(cursor_is("", -1, NULL), "an empty cursor is malformed");
    ok(cursor_is("0:1,", -1, NULL), "a trailing comma is malformed");
    ok(cursor_is("0:x", -1, NULL), "a non-number is malformed");
    ok(cursor_is("0-1", -1, NULL), "a missing colon is malformed");
    ok(cursor_is("8:1", -1, NULL), "a partition beyond the limit is refused");
    ok(cursor_is("0:99999999999999999999", -1, NULL),
       "an offset that overflows is refused");
}


static void
test_ring(void)
{
    int                                   failed;
    void                                 *evicted;
    int64_t                               begin[2] = { 10, 20 };
    int64_t                               cursor[2];
    ngx_geostream_history_t               h;
    const ngx_geostream_history_entry_t  *e;

    ok(ngx_geostream_history_init(&h, 3) == 0, "a ring of 3");
    ok(ngx_geostream_history_begin(&h, begin, 2, 1000) == 0,
       "reading began at 0:10,1:20");

    cursor[0] = 10;
    cursor[1] = 20;
    ok(ngx_geostream_history_covers(&h, cursor, 2),
       "an empty ring covers the starting cursor");

    cursor[0] = 9;
    ok(!ngx_geostream_history_covers(&h, cursor, 2),
       "but not one before it");

    evicted = ngx_geostream_history_push(&h, "a", 0, 10, 1001, &failed);
    ok(evicted == NULL && !failed, "push a");
    ngx_geostream_history_push(&h, "b", 1, 20, 1002, &failed);
    ngx_geostream_history_push(&h, "c", 0, 11, 1003, &failed);
    evicted = ngx_geostream_history_push(&h, "d", 0, 12, 1004, &failed);
    ok(evicted != NULL && strcmp(evicted, "a") == 0,
       "a full ring hands back its oldest entry");

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

    ngx_geostream_history_push(&h, "e", 2, 0, 1005, &failed);
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
    ngx_geostream_history_init(&h, 3);
    ngx_geostream_history_begin(&h, begin, 2, 5000);
    ok(ngx_geostream_history_covers_time(&h, 0),
       "reading from offset 0 everywhere covers all time");
    ngx_geostream_history_free(&h);
}


static void
test_filters(void)
{
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
}


int
main(void)
{
    test_cursors();
    test_ring();
    test_filters();

    return done_testing();
}
