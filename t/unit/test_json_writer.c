/*
 * Unit tests of ngx_geostream_json_writer.c: structure and commas, the
 * two passes agreeing, strings as cJSON prints them, numbers, and
 * failing when out of room, too deep or unbalanced.  Plain C; prints TAP
 * for prove.
 */

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ngx_geostream_json_writer.h"
#include "tap.h"


/* what a test writes, once to measure and once to write */
typedef void (*write_pt)(ngx_geostream_json_writer_t *w, const void *arg);


/*
 * The JSON "fn" writes, NUL-terminated (NULL when the writer fails);
 * the measure pass must give the written size exactly.
 */
static char *
written(write_pt fn, const void *arg)
{
    char                         *s;
    size_t                        size;
    ngx_geostream_json_writer_t   w;

    ngx_geostream_jw_init(&w, NULL, 0);
    fn(&w, arg);

    if (ngx_geostream_jw_done(&w) != 0) {
        return NULL;
    }

    size = w.size;
    s = malloc(size + 8);
    memset(s, 'G', size + 8);

    ngx_geostream_jw_init(&w, (unsigned char *) s, size);
    fn(&w, arg);

    if (ngx_geostream_jw_done(&w) != 0 || w.size != size
        || (char *) w.pos != s + size || memcmp(s + size, "GGGGGGGG", 8))
    {
        ok(0, "the write pass fills what the measure pass gave, exactly");
        free(s);
        return NULL;
    }

    s[size] = '\0';

    return s;
}


static int
written_is(write_pt fn, const void *arg, const char *want)
{
    int    rc;
    char  *s;

    s = written(fn, arg);
    rc = (s != NULL && strcmp(s, want) == 0);

    if (!rc) {
        printf("# got: %s\n# want: %s\n", s ? s : "(failed)", want);
    }

    free(s);

    return rc;
}


static void
write_nested(ngx_geostream_json_writer_t *w, const void *arg)
{
    (void) arg;

    ngx_geostream_jw_object(w);
    ngx_geostream_jw_key(w, "a");
    ngx_geostream_jw_int(w, 1);
    ngx_geostream_jw_key(w, "b");
    ngx_geostream_jw_array(w);
    ngx_geostream_jw_bool(w, 1);
    ngx_geostream_jw_bool(w, 0);
    ngx_geostream_jw_null(w);
    ngx_geostream_jw_object(w);
    ngx_geostream_jw_object_end(w);
    ngx_geostream_jw_array(w);
    ngx_geostream_jw_array_end(w);
    ngx_geostream_jw_raw(w, (const unsigned char *) "{\"x\":[1]}", 9);
    ngx_geostream_jw_array_end(w);
    ngx_geostream_jw_key(w, "c");
    ngx_geostream_jw_object(w);
    ngx_geostream_jw_key(w, "d");
    ngx_geostream_jw_uint(w, UINT64_MAX);
    ngx_geostream_jw_key(w, "e");
    ngx_geostream_jw_int(w, INT64_MIN);
    ngx_geostream_jw_key(w, "f");
    ngx_geostream_jw_int(w, INT64_MAX);
    ngx_geostream_jw_object_end(w);
    ngx_geostream_jw_key(w, "g");
    ngx_geostream_jw_string(w, "", 0);
    ngx_geostream_jw_object_end(w);
}


static void
write_two_arrays(ngx_geostream_json_writer_t *w, const void *arg)
{
    (void) arg;

    ngx_geostream_jw_array(w);
    ngx_geostream_jw_array(w);
    ngx_geostream_jw_int(w, 1);
    ngx_geostream_jw_int(w, -2);
    ngx_geostream_jw_array_end(w);
    ngx_geostream_jw_array(w);
    ngx_geostream_jw_int(w, 3);
    ngx_geostream_jw_array_end(w);
    ngx_geostream_jw_array_end(w);
}


static void
test_structure(void)
{
    ok(written_is(write_nested, NULL,
                  "{\"a\":1,\"b\":[true,false,null,{},[],{\"x\":[1]}],"
                  "\"c\":{\"d\":18446744073709551615,"
                  "\"e\":-9223372036854775808,"
                  "\"f\":9223372036854775807},\"g\":\"\"}"),
       "objects, arrays, keys and every kind of value, commas between");
    ok(written_is(write_two_arrays, NULL, "[[1,-2],[3]]"),
       "arrays in arrays");
}


/* the string "arg" (a NUL-terminated one) alone */
static void
write_string(ngx_geostream_json_writer_t *w, const void *arg)
{
    ngx_geostream_jw_string(w, arg, strlen(arg));
}


/* the double at "arg" alone */
static void
write_double(ngx_geostream_json_writer_t *w, const void *arg)
{
    ngx_geostream_jw_double(w, *(const double *) arg);
}


/* what cJSON_PrintUnformatted() makes of the same value */
static int
as_cjson(write_pt fn, const void *arg, cJSON *item)
{
    int    rc;
    char  *want;

    want = cJSON_PrintUnformatted(item);
    rc = written_is(fn, arg, want);

    free(want);
    cJSON_Delete(item);

    return rc;
}


static void
test_strings(void)
{
    int          all;
    char         s[2];
    unsigned     c;
    const char  *str;

    static const char  *strings[] = {
        "plain", "a \"quoted\" \\ back", "\b\f\n\r\t", "\x01\x1f\x7f",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "</script>", "", NULL
    };

    all = 1;

    for (c = 1; c < 256; c++) {
        s[0] = (char) c;
        s[1] = '\0';
        all &= as_cjson(write_string, s, cJSON_CreateString(s));
    }

    ok(all, "every byte is escaped as cJSON escapes it");

    all = 1;

    for (str = strings[0], c = 0; str; str = strings[++c]) {
        all &= as_cjson(write_string, str, cJSON_CreateString(str));
    }

    ok(all, "strings as cJSON prints them");

    ok(written_is(write_string, "\x1f", "\"\\u001f\""),
       "control characters as \\u00XX, lower case hex");
}


/* "want" for the double "d", and -"want" for -d */
static int
double_is(double d, const char *want)
{
    char  neg[64];

    if (!written_is(write_double, &d, want)) {
        return 0;
    }

    if (d == 0 || !isfinite(d)) {
        return 1;
    }

    snprintf(neg, sizeof(neg), "-%s", want);

    d = -d;

    return written_is(write_double, &d, neg);
}


/*
 * Numbers as answers have printed them: integers below 1e15 as such,
 * others in 15 digits when they read back as the same double, else 17.
 */
static void
test_numbers(void)
{
    double  d;

    ok(double_is(0, "0") && double_is(1, "1") && double_is(-0.0, "0")
       && double_is(999999999999999.0, "999999999999999"),
       "integers below 1e15 as such, -0 as 0");
    ok(double_is(1e15, "1e+15") && double_is(9007199254740992.0,
                                             "9007199254740992")
       && double_is(1e300, "1e+300"),
       "integers from 1e15 on by %g, in 15 or 17 digits");
    ok(double_is(0.1, "0.1") && double_is(12.5, "12.5")
       && double_is(52.520008, "52.520008")
       && double_is(1.0 / 3, "0.33333333333333331")
       && double_is(0.30000000000000004, "0.30000000000000004")
       && double_is(4.35, "4.35"),
       "fractions in 15 digits when they read back, else 17");
    ok(double_is(DBL_MAX, "1.7976931348623157e+308")
       && double_is(5e-324, "4.94065645841247e-324")
       && double_is(2.2250738585072014e-308, "2.2250738585072014e-308"),
       "the largest and the smallest doubles read back");

    d = NAN;
    ok(written_is(write_double, &d, "null"), "NaN is null");
    d = -INFINITY;
    ok(written_is(write_double, &d, "null"), "infinity is null");
}


static void
write_deep(ngx_geostream_json_writer_t *w, const void *arg)
{
    unsigned  i, depth;

    depth = *(const unsigned *) arg;

    for (i = 0; i < depth; i++) {
        ngx_geostream_jw_array(w);
    }

    for (i = 0; i < depth; i++) {
        ngx_geostream_jw_array_end(w);
    }
}


static void
write_unbalanced(ngx_geostream_json_writer_t *w, const void *arg)
{
    (void) arg;

    ngx_geostream_jw_object(w);
    ngx_geostream_jw_object_end(w);
    ngx_geostream_jw_object_end(w);
}


static void
write_open(ngx_geostream_json_writer_t *w, const void *arg)
{
    (void) arg;

    ngx_geostream_jw_array(w);
    ngx_geostream_jw_int(w, 1);
}


static void
write_nothing(ngx_geostream_json_writer_t *w, const void *arg)
{
    (void) w;
    (void) arg;
}


static void
test_failures(void)
{
    char                         *s;
    size_t                        i;
    unsigned                      depth;
    unsigned char                 buf[64];
    ngx_geostream_json_writer_t   w;

    depth = NGX_GEOSTREAM_JW_DEPTH_MAX - 1;
    s = written(write_deep, &depth);
    ok(s != NULL, "31 levels deep is fine");
    free(s);

    depth = NGX_GEOSTREAM_JW_DEPTH_MAX;
    ok(written(write_deep, &depth) == NULL, "32 levels deep is too deep");

    ok(written(write_unbalanced, NULL) == NULL
       && written(write_open, NULL) == NULL
       && written(write_nothing, NULL) == NULL,
       "unbalanced, unclosed or empty JSON is not done");

    /* every room short of the JSON fails, writing within the room */
    for (i = 0; i < 24; i++) {
        memset(buf, 'G', sizeof(buf));
        ngx_geostream_jw_init(&w, buf, i);
        write_nested(&w, NULL);

        if (ngx_geostream_jw_done(&w) == 0
            || memcmp(buf + i, "GGGGGGGG", 8) != 0)
        {
            break;
        }
    }

    ok(i == 24, "out of room, the writer fails and writes no further");
}


int
main(void)
{
    test_structure();
    test_strings();
    test_numbers();
    test_failures();

    return done_testing();
}
