/*
 * Unit tests of ngx_geostream_cursor.c: cursors (parse, length, text,
 * round trips, bounds) and the ids of streams of several topics.  Plain
 * C; prints TAP for prove.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_cursor.h"
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
    int64_t               off[8];

    static const int64_t  a[] = { 1234, 998 };
    static const int64_t  b[] = { 0, 0, 7 };
    static const int64_t  max[] = { INT64_MAX };

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
    ok(cursor_is("0:9223372036854775807", 1, max)
       && cursor_is("0:9223372036854775808", -1, NULL),
       "an offset is anything within int64, INT64_MAX included");
    ok(cursor_is("0:1,0:2", -1, NULL), "a partition named twice is refused");
    ok(ngx_geostream_cursor_parse((const unsigned char *) "0:1\0", 4, off, 8)
       == -1 && cursor_is("0:+1", -1, NULL)
       && cursor_is("0: 1", -1, NULL) && cursor_is("-1:1", -1, NULL),
       "signs, spaces and NULs are refused");
}


/* the longest cursor there can be is taken, a byte more is refused */
static void
test_cursor_bound(void)
{
    int       n;
    char     *s, *p;
    size_t    i, len;
    int64_t  *offsets;

    s = malloc(NGX_GEOSTREAM_CURSOR_LEN_MAX + 2);
    offsets = malloc(NGX_GEOSTREAM_PARTITIONS_MAX * sizeof(int64_t));

    for (p = s, i = 0; i < NGX_GEOSTREAM_PARTITIONS_MAX; i++) {
        p += sprintf(p, "%s%zu:9223372036854775807", i ? "," : "", i);
    }

    len = p - s;
    n = ngx_geostream_cursor_parse((const unsigned char *) s, len, offsets,
                                   NGX_GEOSTREAM_PARTITIONS_MAX);
    ok(len <= NGX_GEOSTREAM_CURSOR_LEN_MAX
       && n == NGX_GEOSTREAM_PARTITIONS_MAX
       && offsets[NGX_GEOSTREAM_PARTITIONS_MAX - 1] == INT64_MAX,
       "a cursor of every partition at INT64_MAX is within the bound");

    /* leading zeros make a cursor longer, not another one */
    memset(s, '0', NGX_GEOSTREAM_CURSOR_LEN_MAX + 1);
    s[1] = ':';
    ok(ngx_geostream_cursor_parse((const unsigned char *) s,
                                  NGX_GEOSTREAM_CURSOR_LEN_MAX, offsets,
                                  NGX_GEOSTREAM_PARTITIONS_MAX) == 1
       && ngx_geostream_cursor_parse((const unsigned char *) s,
                                     NGX_GEOSTREAM_CURSOR_LEN_MAX + 1,
                                     offsets,
                                     NGX_GEOSTREAM_PARTITIONS_MAX) == -1,
       "a cursor over NGX_GEOSTREAM_CURSOR_LEN_MAX bytes is refused");

    free(s);
    free(offsets);
}


/* the text of "c", NUL-terminated, exactly cursor_len() long */
static char *
cursor_text(const ngx_geostream_cursor_t *c)
{
    char    *s;
    size_t   len;

    len = ngx_geostream_cursor_len(c);
    s = malloc(len + 9);
    memset(s, 'G', len + 9);

    if ((char *) ngx_geostream_cursor_write((unsigned char *) s, c)
        != s + len
        || memcmp(s + len, "GGGGGGGGG", 9) != 0)
    {
        ok(0, "a cursor's text is exactly cursor_len() long");
    }

    s[len] = '\0';

    return s;
}


static void
test_cursor_write(void)
{
    char                    *s;
    ngx_geostream_cursor_t   c;

    static int64_t  a[] = { 1234, 998 };
    static int64_t  b[] = { 0 };
    static int64_t  lim[] = { INT64_MAX, INT64_MIN, -1, 10 };

    c.next = a;
    c.n = 2;
    s = cursor_text(&c);
    ok(strcmp(s, "0:1234,1:998") == 0, "a cursor's text");
    free(s);

    c.next = b;
    c.n = 1;
    s = cursor_text(&c);
    ok(strcmp(s, "0:0") == 0, "a partition at 0");
    free(s);

    c.n = 0;
    ok(ngx_geostream_cursor_len(&c) == 0, "no partition: no text");

    c.next = lim;
    c.n = 4;
    s = cursor_text(&c);
    ok(strcmp(s, "0:9223372036854775807,1:-9223372036854775808,2:-1,3:10")
       == 0, "offsets at the int64 limits, negative ones too");
    free(s);
}


/* parsed, written, parsed again: the same; every partition written */
static void
test_cursor_round_trip(void)
{
    int                      n;
    char                    *s;
    size_t                   i;
    int64_t                 *offsets, *again;
    ngx_geostream_cursor_t   c;

    offsets = malloc(NGX_GEOSTREAM_PARTITIONS_MAX * sizeof(int64_t));
    again = malloc((NGX_GEOSTREAM_PARTITIONS_MAX + 1) * sizeof(int64_t));

    n = ngx_geostream_cursor_parse((const unsigned char *) "2:7,0:005", 9,
                                   offsets, 8);
    c.next = offsets;
    c.n = n;
    s = cursor_text(&c);
    ok(n == 3 && strcmp(s, "0:5,1:0,2:7") == 0,
       "a cursor written back names every partition, in order");
    free(s);

    /* every partition at INT64_MAX, and at values of every length */
    for (i = 0; i < NGX_GEOSTREAM_PARTITIONS_MAX; i++) {
        offsets[i] = (i % 2) ? INT64_MAX : (int64_t) (i * 1000003);
    }

    c.next = offsets;
    c.n = NGX_GEOSTREAM_PARTITIONS_MAX;
    s = cursor_text(&c);
    n = ngx_geostream_cursor_parse((const unsigned char *) s, strlen(s),
                                   again, NGX_GEOSTREAM_PARTITIONS_MAX);
    ok(strlen(s) <= NGX_GEOSTREAM_CURSOR_LEN_MAX
       && n == NGX_GEOSTREAM_PARTITIONS_MAX
       && memcmp(offsets, again, n * sizeof(int64_t)) == 0,
       "1024 partitions round trip, within NGX_GEOSTREAM_CURSOR_LEN_MAX");
    free(s);

    n = ngx_geostream_cursor_parse((const unsigned char *) "1024:0", 6,
                                   again, NGX_GEOSTREAM_PARTITIONS_MAX + 1);
    ok(n == -1, "partition 1024 is beyond NGX_GEOSTREAM_PARTITIONS_MAX");

    free(offsets);
    free(again);
}


/* finds "topic" in "id": the rc, and the cursor text when found */
static int
find_is(const char *id, const char *topic, int want, const char *want_text)
{
    int                   rc;
    size_t                len;
    const unsigned char  *text;

    text = NULL;
    len = 0;

    rc = ngx_geostream_stream_id_find((const unsigned char *) id,
                                      strlen(id),
                                      (const unsigned char *) topic,
                                      strlen(topic), &text, &len);

    if (rc != want) {
        return 0;
    }

    return rc != 1 || (len == strlen(want_text)
                       && memcmp(text, want_text, len) == 0);
}


static void
test_stream_ids(void)
{
    int                           rc, n;
    const char                   *id;
    const unsigned char          *p;
    ngx_geostream_stream_part_t   part;

    ok(ngx_geostream_stream_id_single((const unsigned char *) "0:1,1:2", 7)
       && ngx_geostream_stream_id_single((const unsigned char *) "", 0)
       && !ngx_geostream_stream_id_single((const unsigned char *) "a=0:1",
                                          5),
       "an id without '=' is one topic's cursor");

    id = "a=0:12,1:7;b=0:3";
    ok(find_is(id, "a", 1, "0:12,1:7") && find_is(id, "b", 1, "0:3"),
       "each topic's part is found");
    ok(find_is(id, "c", 0, NULL) && find_is(id, "", 0, NULL)
       && find_is(id, "a=", 0, NULL),
       "a topic not named is not found");
    ok(find_is("a=0:1;", "a", 1, "0:1"), "a trailing ';' ends the id");
    ok(find_is("a=;b=0:1", "a", 1, ""), "an empty cursor is a part too");
    ok(find_is("a=0:1;b", "a", -1, NULL)
       && find_is("b;a=0:1", "a", -1, NULL)
       && find_is("a=0:1;;b=0:2", "b", -1, NULL),
       "a pair without '=' makes the id malformed, wherever it is");
    ok(find_is("a=0:1;a=0:2", "a", 1, "0:2"),
       "a topic named twice is found at its last pair");
    ok(find_is("x=junk;a=0:1", "a", 1, "0:1")
       && find_is("a=b=c", "a", 1, "b=c"),
       "the cursors are not checked here");

    n = 0;
    p = (const unsigned char *) id;

    while ((rc = ngx_geostream_stream_id_next(&p,
                                              (const unsigned char *) id
                                              + strlen(id), &part))
           == 1)
    {
        n++;
    }

    ok(rc == 0 && n == 2 && part.topic_len == 1 && part.topic[0] == 'b'
       && part.cursor == NULL, "the pairs of an id, in turn");
}


static void
test_stream_id_write(void)
{
    char                         *s;
    size_t                        len;
    ngx_geostream_cursor_t        c;
    ngx_geostream_stream_part_t   parts[3];

    static int64_t  a[] = { 12, 7 };

    c.next = a;
    c.n = 2;

    memset(parts, 0, sizeof(parts));
    parts[0].topic = (const unsigned char *) "a";
    parts[0].topic_len = 1;
    parts[0].cursor = &c;
    parts[1].topic = (const unsigned char *) "b.c";
    parts[1].topic_len = 3;
    parts[1].text = (const unsigned char *) "1:3";
    parts[1].text_len = 3;
    parts[2].topic = (const unsigned char *) "d";
    parts[2].topic_len = 1;

    len = ngx_geostream_stream_id_len(parts, 3);
    s = malloc(len + 1);
    *ngx_geostream_stream_id_write((unsigned char *) s, parts, 3) = '\0';

    ok(strlen(s) == len && strcmp(s, "a=0:12,1:7;b.c=1:3;d=") == 0,
       "an id from cursors, texts as sent, and no cursor yet");

    ok(find_is(s, "a", 1, "0:12,1:7") && find_is(s, "b.c", 1, "1:3")
       && find_is(s, "d", 1, ""), "what is written is found again");
    free(s);

    ok(ngx_geostream_stream_id_len(parts, 0) == 0, "no part: no id");
}


int
main(void)
{
    test_cursors();
    test_cursor_bound();
    test_cursor_write();
    test_cursor_round_trip();
    test_stream_ids();
    test_stream_id_write();

    return done_testing();
}
