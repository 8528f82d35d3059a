/*
 * Unit tests of ngx_geostream_message.c: validation, answers, SSE framing.
 * Plain C, no nginx; prints TAP for prove.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_geostream_message.h"
#include "tap.h"


/* the length argument of refusal() that means strlen() */
#define WHOLE  ((size_t) -1)


static void
is_str(const char *got, const char *want, const char *name)
{
    int  same;

    same = (got != NULL && strcmp(got, want) == 0);
    ok(same, name);

    if (!same) {
        printf("#   got:      %s\n#   expected: %s\n",
               got ? got : "(null)", want);
    }
}


static int
parses(const char *json)
{
    int                       rc;
    ngx_geostream_error_t     err;
    ngx_geostream_position_t  pos;

    rc = ngx_geostream_position_parse(&pos, (const unsigned char *) json,
                                      strlen(json), &err);
    if (rc == 0) {
        ngx_geostream_position_free(&pos);
    }

    return rc == 0;
}


/*
 * The error of a refused message, as "code: detail"; a length of -1 means
 * strlen(json).
 */
static const char *
refusal(const char *json, size_t len)
{
    static char               buf[256];
    ngx_geostream_error_t     err;
    ngx_geostream_position_t  pos;

    if (len == WHOLE) {
        len = strlen(json);
    }

    if (ngx_geostream_position_parse(&pos, (const unsigned char *) json, len,
                                     &err)
        == 0)
    {
        ngx_geostream_position_free(&pos);
        return "accepted";
    }

    snprintf(buf, sizeof(buf), "%s: %s", err.code, err.detail);

    return buf;
}


static void
test_validation(void)
{
    char                      name[NGX_GEOSTREAM_NAME_MAX + 64];
    ngx_geostream_error_t     err;
    ngx_geostream_position_t  pos;
    const char               *json;

    json = "{\"name\":\"bus-1\",\"message_id\":\"42\",\"lat\":52.52,"
           "\"lon\":13.40}";

    ok(ngx_geostream_position_parse(&pos, (const unsigned char *) json,
                                    strlen(json), &err) == 0,
       "a complete position is accepted");
    is_str(pos.name, "bus-1", "its name is read");
    ok(pos.name_len == 5, "its name length is read");
    ok(pos.lat == 52.52 && pos.lon == 13.40, "lat and lon are read");
    ok(pos.message_id != NULL && strcmp(pos.message_id->valuestring, "42")
       == 0, "message_id is read");
    ok(pos.ts == -1, "ts is -1 when absent");
    ngx_geostream_position_free(&pos);

    json = "{\"name\":\"a\",\"lat\":0,\"lon\":0,\"ts\":1700000000123}";
    ok(ngx_geostream_position_parse(&pos, (const unsigned char *) json,
                                    strlen(json), &err) == 0
       && pos.ts == 1700000000123LL, "ts in milliseconds is read");
    ngx_geostream_position_free(&pos);

    ok(parses(" \r\n{\"name\":\"a\",\"lat\":-90,\"lon\":180}\n\t "),
       "whitespace around the value and the range limits are accepted");
    ok(parses("{\"name\":\"a\",\"lat\":1,\"lon\":2,\"message_id\":7}"),
       "a numeric message_id is accepted");
    ok(parses("{\"name\":\"a\",\"lat\":1,\"lon\":2,\"speed\":3,\"x\":[1]}"),
       "other members are accepted");

    is_str(refusal("", 0), "invalid_json: the body is empty",
           "an empty body is refused");
    is_str(refusal("{\"name\":", WHOLE),
           "invalid_json: malformed JSON at byte 7",
           "truncated JSON is refused with the offset");
    is_str(refusal("{\"name\":\"a\",\"lat\":1,\"lon\":2} x", WHOLE),
           "invalid_json: unexpected data after the JSON value at byte 29",
           "trailing data is refused");
    is_str(refusal("{\"name\":\"a\",\"lat\":1,\"lon\":2}{}", WHOLE),
           "invalid_json: unexpected data after the JSON value at byte 28",
           "a second value is refused");
    is_str(refusal("{\"name\":\"a\",\"lat\":1,\"lon\":2}\0", 29),
           "invalid_json: unexpected data after the JSON value at byte 28",
           "a NUL after the value is refused");
    is_str(refusal("[1,2]", WHOLE),
           "invalid_message: the message must be a JSON object",
           "an array is not a position");
    is_str(refusal("{\"lat\":1,\"lon\":2}", WHOLE),
           "invalid_message: \"name\" must be a non-empty string",
           "a missing name is refused");
    is_str(refusal("{\"name\":\"\",\"lat\":1,\"lon\":2}", WHOLE),
           "invalid_message: \"name\" must be a non-empty string",
           "an empty name is refused");
    is_str(refusal("{\"name\":5,\"lat\":1,\"lon\":2}", WHOLE),
           "invalid_message: \"name\" must be a non-empty string",
           "a numeric name is refused");

    memset(name, 0, sizeof(name));
    strcpy(name, "{\"name\":\"");
    memset(name + 9, 'n', NGX_GEOSTREAM_NAME_MAX + 1);
    strcat(name, "\",\"lat\":1,\"lon\":2}");
    is_str(refusal(name, strlen(name)),
           "invalid_message: \"name\" must be at most 256 bytes",
           "a name over 256 bytes is refused");

    is_str(refusal("{\"name\":\"a\",\"lat\":90.5,\"lon\":2}", WHOLE),
           "invalid_message: \"lat\" must be a number from -90 to 90",
           "lat out of range is refused");
    is_str(refusal("{\"name\":\"a\",\"lat\":\"1\",\"lon\":2}", WHOLE),
           "invalid_message: \"lat\" must be a number from -90 to 90",
           "lat as a string is refused");
    is_str(refusal("{\"name\":\"a\",\"lat\":1,\"lon\":-180.01}", WHOLE),
           "invalid_message: \"lon\" must be a number from -180 to 180",
           "lon out of range is refused");
    is_str(refusal("{\"name\":\"a\",\"lat\":1e999,\"lon\":2}", WHOLE),
           "invalid_json: the number at byte 18 is not a finite double",
           "an infinite lat is refused, as no JSON number may be");
    is_str(refusal("{\"name\":\"a\",\"lat\":1}", WHOLE),
           "invalid_message: \"lon\" must be a number from -180 to 180",
           "a missing lon is refused");
    is_str(refusal("{\"name\":\"a\",\"lat\":1,\"lon\":2,"
                   "\"message_id\":null}", WHOLE),
           "invalid_message: \"message_id\" must be a string or a number",
           "a null message_id is refused");
    is_str(refusal("{\"name\":\"a\",\"lat\":1,\"lon\":2,\"ts\":1.5}", WHOLE),
           "invalid_message: \"ts\" must be whole milliseconds",
           "a fractional ts is refused");
    is_str(refusal("{\"name\":\"a\",\"lat\":1,\"lon\":2,\"ts\":-1}", WHOLE),
           "invalid_message: \"ts\" must be a number from 0 to "
           "9.0072e+15", "a negative ts is refused");
}


/*
 * A reply, NUL-terminated; the size announced must hold it, which the
 * guard bytes after it would show.
 */
static char *
reply(const ngx_geostream_position_t *pos, const char *topic,
    int32_t partition, int64_t offset, const char *error)
{
    char    *json, *last;
    size_t   size;

    size = ngx_geostream_reply_size(pos, topic, error);
    json = malloc(size + 8);
    memset(json, 'G', size + 8);

    last = ngx_geostream_reply_write(json, pos, topic, partition, offset,
                                     error);

    if ((size_t) (last - json) > size || memcmp(json + size, "GGGGGGGG", 8))
    {
        ok(0, "a reply stays within its announced size");
    }

    *last = '\0';

    return json;
}


/*
 * Whatever a name or message_id holds, the reply is JSON that gives it
 * back unchanged, and numbers print as cJSON prints them.
 */
static void
test_reply_escapes(void)
{
    char                      *json;
    cJSON                     *back, *item;
    size_t                     i;
    const char                *in;
    ngx_geostream_error_t      err;
    ngx_geostream_position_t   pos;

    static const char  *inputs[] = {
        "{\"name\":\"a\\\"\\\\/\\u00e9\\ud83d\\ude8c\","
            "\"message_id\":\"x\\r\\u001f\\u0001\\n\\ty\",\"lat\":1,"
            "\"lon\":2}",
        "{\"name\":\"n\",\"message_id\":0.1,\"lat\":1,\"lon\":2}",
        "{\"name\":\"n\",\"message_id\":-7,\"lat\":1,\"lon\":2}",
        "{\"name\":\"n\",\"message_id\":1e300,\"lat\":1,\"lon\":2}",
        "{\"name\":\"n\",\"message_id\":123456789012345678,"
            "\"lat\":1,\"lon\":2}",
        "{\"name\":\"n\",\"message_id\":2.5e-310,\"lat\":1,\"lon\":2}",
    };

    for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        in = inputs[i];

        if (ngx_geostream_position_parse(&pos, (const unsigned char *) in,
                                         strlen(in), &err) != 0)
        {
            ok(0, err.detail);
            continue;
        }

        json = reply(&pos, "t.1", INT32_MAX, INT64_MAX, "kafka_error");
        back = cJSON_Parse(json);

        printf("# %s\n", json);

        item = cJSON_GetObjectItemCaseSensitive(back, "name");
        ok(cJSON_IsString(item) && strcmp(item->valuestring, pos.name) == 0,
           "a reply gives the name back");

        item = cJSON_GetObjectItemCaseSensitive(back, "message_id");
        ok(item != NULL && cJSON_Compare(item, pos.message_id, 1),
           "a reply gives the message_id back");

        ok(strstr(json, "\"partition\":2147483647,"
                        "\"offset\":9223372036854775807,"
                        "\"error\":\"kafka_error\"}") != NULL,
           "a reply has partition, offset and error");

        cJSON_Delete(back);
        free(json);
        ngx_geostream_position_free(&pos);
    }
}


/*
 * The fast reader takes the common bodies, with the cJSON path's result
 * (coordinates, name, time, and the answer byte for byte), and leaves
 * everything it cannot read exactly that way to the cJSON path.
 */
static void
test_scan(void)
{
    int                        taken;
    char                      *fast, *slow;
    size_t                     i;
    const char                *in;
    ngx_geostream_error_t      err;
    ngx_geostream_position_t   f, c;

    static const struct {
        const char  *body;
        int          taken;
    } cases[] = {
        { "{\"name\":\"bus-17\",\"message_id\":\"t1-42\",\"lat\":52.5042,"
          "\"lon\":13.4042,\"speed\":11.2,\"heading\":87}", 1 },
        { " {\n \"lon\" : -0.1275 , \"lat\": 51.50722, \"name\":\"x\","
          "\"message_id\":-42,\"ts\":1700000000123,\"extra\":[1,"
          "true,false,null,\"s\\n\\u00e9\xc3\xa9\",[]],\"b\":[]} \r\n", 1 },
        { "{\"name\":\"n\",\"lat\":-90,\"lon\":180,\"message_id\":0}", 1 },
        { "{\"name\":\"n\",\"lat\":1.5e1,\"lon\":-2.5E-1}", 1 },
        { "{\"name\":\"n\",\"lat\":0.1234567890123456789,\"lon\":"
          "179.99999999999999999}", 1 },
        { "{\"name\":\"n\",\"lat\":-0,\"lon\":-0.0}", 1 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"ts\":9007199254740992}", 1 },
        /* left to cJSON: it decides, or words the error */
        { "{\"name\":\"a\\\"b\",\"lat\":1,\"lon\":2}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"message_id\":1.5}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"message_id\":-0}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"message_id\":\"a\\/b\"}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"ts\":1.5}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"ts\":-1}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"lat\":3}", 0 },
        { "{\"name\":\"n\",\"lat\":91,\"lon\":2}", 0 },
        { "{\"name\":\"\",\"lat\":1,\"lon\":2}", 0 },
        { "{\"name\":\"n\",\"lat\":1}", 0 },
        { "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\","
          "\"coordinates\":[2,1]},\"properties\":{\"name\":\"n\"}}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"x\":\"\\ud83d\\ude8c\"}", 0 },
        { "{\"name\":\"n\",\"lat\":01,\"lon\":2}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2} x", 0 },
        { "[{\"name\":\"n\",\"lat\":1,\"lon\":2}]", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"x\":1e999}", 0 },
        /* strictness: the cJSON path's check refuses, or reads members */
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"x\":{\"a\":1}}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"x\":1,\"x\":2}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"x\":\"\xff\"}", 0 },
        { "{\"name\":\"n\xc0\xaf\",\"lat\":1,\"lon\":2}", 0 },
        { "{\"name\":\"n\x7f\",\"lat\":1,\"lon\":2}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"x\":\"\\u0000\"}", 0 },
        { "{\"name\":\"n\",\"lat\":1,\"lon\":2,\"x\":-0.00000000000000000000"
          "000000000000000000000000000000000000000001e+00000000000}", 0 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        in = cases[i].body;

        taken = (ngx_geostream_position_scan(&f, (const unsigned char *) in,
                                             strlen(in)) == 0);

        printf("# %s\n", in);
        ok(taken == cases[i].taken, cases[i].taken
                                    ? "the fast reader takes a plain position"
                                    : "the fast reader leaves it to cJSON");

        if (!taken) {
            continue;
        }

        if (ngx_geostream_position_parse(&c, (const unsigned char *) in,
                                         strlen(in), &err) != 0)
        {
            ok(0, "cJSON takes what the fast reader took");
            continue;
        }

        ok(f.lat == c.lat && f.lon == c.lon && f.ts == c.ts
           && f.name_len == c.name_len
           && memcmp(f.name, c.name, c.name_len) == 0,
           "both read the same coordinates, time and name");

        fast = reply(&f, "t", 2, 99, NULL);
        slow = reply(&c, "t", 2, 99, NULL);
        is_str(fast, slow, "both answer the same bytes");

        free(fast);
        free(slow);
        ngx_geostream_position_free(&c);
    }
}


static void
test_answers(void)
{
    char                      *json;
    const char                *in;
    ngx_geostream_error_t      err;
    ngx_geostream_position_t   pos;

    in = "{\"lon\":13.4,\"name\":\"bus \\\"1\\\"\",\"message_id\":42,"
         "\"lat\":52.5,\"topic\":\"spoofed\",\"speed\":3}";

    if (ngx_geostream_position_parse(&pos, (const unsigned char *) in,
                                     strlen(in), &err) != 0)
    {
        ok(0, "the answers' input parses");
        return;
    }

    json = reply(&pos, "t1", -1, -1, NULL);
    is_str(json, "{\"name\":\"bus \\\"1\\\"\",\"message_id\":42,"
           "\"topic\":\"t1\"}", "the reply echoes name, message_id, topic");
    free(json);

    json = reply(&pos, "t1", 3, 1234567, NULL);
    is_str(json, "{\"name\":\"bus \\\"1\\\"\",\"message_id\":42,"
           "\"topic\":\"t1\",\"partition\":3,\"offset\":1234567}",
           "a waiting reply has partition and offset");
    free(json);

    json = reply(&pos, "t1", -1, -1, "queue_full");
    is_str(json, "{\"name\":\"bus \\\"1\\\"\",\"message_id\":42,"
           "\"topic\":\"t1\",\"error\":\"queue_full\"}",
           "a refused record's reply has its error");
    free(json);

    json = ngx_geostream_position_event(&pos, "t1");
    is_str(json, "{\"topic\":\"t1\",\"name\":\"bus \\\"1\\\"\","
           "\"message_id\":42,\"lat\":52.5,\"lon\":13.4,\"speed\":3}",
           "the event is topic, name, message_id, lat, lon, then the "
           "other members, without the message's own topic");
    free(json);
    ngx_geostream_position_free(&pos);

    in = "{\"name\":\"a\",\"lat\":1,\"lon\":2}";
    ngx_geostream_position_parse(&pos, (const unsigned char *) in,
                                 strlen(in), &err);
    json = reply(&pos, "t", -1, -1, NULL);
    is_str(json, "{\"name\":\"a\",\"message_id\":null,\"topic\":\"t\"}",
           "a missing message_id is answered as null");
    free(json);

    json = ngx_geostream_position_event(&pos, "t");
    is_str(json, "{\"topic\":\"t\",\"name\":\"a\",\"lat\":1,\"lon\":2}",
           "an event without message_id has none");
    free(json);
    ngx_geostream_position_free(&pos);

    err.code = "invalid_json";
    strcpy(err.detail, "a \"quoted\" detail");
    json = ngx_geostream_error_json(&err);
    is_str(json, "{\"error\":\"invalid_json\","
           "\"detail\":\"a \\\"quoted\\\" detail\"}",
           "errors are JSON with code and escaped detail");
    free(json);
}


static void
test_geojson(void)
{
    char                      *json;
    const char                *in;
    ngx_geostream_error_t      err;
    ngx_geostream_position_t   pos;

    in = "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\","
         "\"coordinates\":[13.4,52.5]},\"properties\":{\"name\":\"f-1\","
         "\"message_id\":\"m\",\"ts\":1700000000000,\"colour\":\"red\"}}";

    ok(ngx_geostream_position_parse(&pos, (const unsigned char *) in,
                                    strlen(in), &err) == 0
       && pos.lat == 52.5 && pos.lon == 13.4 && pos.ts == 1700000000000LL
       && strcmp(pos.name, "f-1") == 0,
       "a GeoJSON Point Feature is a position, [lon, lat] in that order");

    json = ngx_geostream_position_event(&pos, "g");
    is_str(json, "{\"topic\":\"g\",\"name\":\"f-1\",\"message_id\":\"m\","
           "\"lat\":52.5,\"lon\":13.4,\"ts\":1700000000000,"
           "\"colour\":\"red\"}",
           "a Feature's event has the API's shape and its properties");
    free(json);
    ngx_geostream_position_free(&pos);

    is_str(refusal("{\"type\":\"Feature\",\"geometry\":{\"type\":"
                   "\"LineString\",\"coordinates\":[[1,2],[3,4]]},"
                   "\"properties\":{\"name\":\"f\"}}", WHOLE),
           "invalid_message: a Feature needs a Point geometry with "
           "[lon, lat] coordinates", "only Point geometries");
    is_str(refusal("{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\","
                   "\"coordinates\":[52.5,113.4]},\"properties\":"
                   "{\"name\":\"f\"}}", WHOLE),
           "invalid_message: the latitude (coordinates[1]) must be a "
           "number from -90 to 90", "swapped coordinates are caught");
    is_str(refusal("{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\","
                   "\"coordinates\":[1,2]}}", WHOLE),
           "invalid_message: a Feature needs \"properties\" with a "
           "\"name\"", "a Feature without properties is refused");
}


static void
records_are(const char *body, int ndjson, size_t want_n, int want_batch,
    const char *want_last_value, const char *name)
{
    int                      batch, rc;
    size_t                   n;
    ngx_geostream_error_t    err;
    ngx_geostream_record_t  *recs;

    rc = ngx_geostream_records_parse(&recs, &n, &batch,
                                     (const unsigned char *) body,
                                     strlen(body), ndjson, &err);

    ok(rc == 0 && n == want_n && batch == want_batch
       && recs[n - 1].value_len == strlen(want_last_value)
       && memcmp(recs[n - 1].value, want_last_value, recs[n - 1].value_len)
          == 0, name);

    if (rc == 0) {
        ngx_geostream_records_free(recs, n);

    } else {
        printf("#   refused: %s: %s\n", err.code, err.detail);
    }
}


static const char *
records_refusal(const char *body, int ndjson)
{
    static char              buf[256];
    int                      batch;
    size_t                   n;
    ngx_geostream_error_t    err;
    ngx_geostream_record_t  *recs;

    if (ngx_geostream_records_parse(&recs, &n, &batch,
                                    (const unsigned char *) body,
                                    strlen(body), ndjson, &err)
        == 0)
    {
        ngx_geostream_records_free(recs, n);
        return "accepted";
    }

    snprintf(buf, sizeof(buf), "%s: %s", err.code, err.detail);

    return buf;
}


static void
test_records(void)
{
    records_are(" {\"name\":\"a\",\"lat\":1, \"lon\":2} ", 0, 1, 0,
                " {\"name\":\"a\",\"lat\":1, \"lon\":2} ",
                "one object is one record, stored as sent");
    records_are("[{\"name\":\"a\",\"lat\":1,\"lon\":2},\n"
                " {\"name\":\"b\", \"lat\":3.50,\"lon\":4}]", 0, 2, 1,
                "{\"name\":\"b\", \"lat\":3.50,\"lon\":4}",
                "an array is a batch; elements are stored as sent");
    records_are(" [ {\"name\":\"a\",\"lat\":51.985544558058109,\"lon\":2,"
                "\"x\":[1,{\"y\":\"]}\\\"\"}]} ,\t{\"name\":\"b\",\"lat\":1,"
                "\"lon\":-0.0}\r\n] ", 0, 2, 1,
                "{\"name\":\"b\",\"lat\":1,\"lon\":-0.0}",
                "array elements keep every digit, their brackets in strings "
                "too");
    records_are("[{\"name\":\"a\",\"lat\":51.985544558058109,\"lon\":2}]", 0,
                1, 1, "{\"name\":\"a\",\"lat\":51.985544558058109,\"lon\":2}",
                "an element's lat is stored with all 17 digits, not cJSON's "
                "15");
    records_are("{\"name\":\"a\",\"lat\":1,\"lon\":2}\r\n\n"
                "{\"name\":\"b\",\"lat\":3, \"lon\":4}\n", 1, 2, 1,
                "{\"name\":\"b\",\"lat\":3, \"lon\":4}",
                "NDJSON: a record a line, stored as sent, blank lines "
                "skipped, CRLF allowed");
    records_are("{\"name\":\"a\",\"lat\":1,\"lon\":2}", 1, 1, 1,
                "{\"name\":\"a\",\"lat\":1,\"lon\":2}",
                "NDJSON without a final line break");

    is_str(records_refusal("[{\"name\":\"a\",\"lat\":1,\"lon\":2},"
                           "{\"name\":\"b\",\"lat\":100,\"lon\":2}]", 0),
           "invalid_message: record 1: \"lat\" must be a number from -90 "
           "to 90", "a batch is refused whole, naming the bad record");
    is_str(records_refusal("{\"name\":\"a\",\"lat\":1,\"lon\":2}\n\n"
                           "{\"name\":\"b\",\"lat\":1,\"lon\":2}\n"
                           "{\"name\":\"c\",\"lat\":1,\"lon\":\n", 1),
           "invalid_json: record 2: malformed JSON at byte 25",
           "NDJSON errors name the record (blank lines not counted)");
    is_str(records_refusal("[]", 0), "invalid_json: the batch has no records",
           "an empty array is refused");
    is_str(records_refusal("\n \n", 1),
           "invalid_json: the batch has no records",
           "an empty NDJSON body is refused");
    is_str(records_refusal("[1,2", 0), "invalid_json: malformed JSON at "
           "byte 3", "a broken array is malformed JSON");
    is_str(records_refusal("[{\"name\":\"a\",\"lat\":1,\"lon\":2}] x", 0),
           "invalid_json: unexpected data after the JSON value at byte 31",
           "an array with trailing data is refused");
}


/*
 * The strict check: each finding of issue 11 (the bytes that were stored
 * as sent) refused, in every body form, with the detail that names it;
 * and what is valid still accepted.  The fast reader never takes what the
 * check refuses.
 */
static void
test_strict(void)
{
    size_t                    i, len;
    const char               *body, *got;
    ngx_geostream_position_t  f;

    static const struct {
        const char  *body;
        size_t       len;
        const char  *want;
    } cases[] = {
        { "{\"name\":\"\xff\xfe\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_json: invalid UTF-8 at byte 9" },
        { "{\"name\":\"\xc0\xaf\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_json: invalid UTF-8 at byte 9" },
        { "{\"name\":\"\xe0\x80\xaf\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_json: invalid UTF-8 at byte 9" },
        { "{\"name\":\"\xed\xa0\x80\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_json: invalid UTF-8 at byte 9" },
        { "{\"name\":\"\xe2\x82\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_json: invalid UTF-8 at byte 9" },
        { "{\"name\":\"\xf4\x90\x80\x80\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_json: invalid UTF-8 at byte 9" },
        { "{\"name\":\"a\",\"lat\":1,\"lon\":2,\"x\":\"\x80\"}", WHOLE,
          "invalid_json: invalid UTF-8 at byte 33" },
        { "{\"name\":\"a\nb\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_json: a control character (0x0a) in a string at byte "
          "10; escape it" },
        { "{\"name\":\"a\",\"lat\":1,\"lon\":2,\"x\":\"\r\"}", WHOLE,
          "invalid_json: a control character (0x0d) in a string at byte "
          "33; escape it" },
        { "{\"name\":\"a\0b\",\"lat\":1,\"lon\":2}", 30,
          "invalid_json: a control character (0x00) in a string at byte "
          "10; escape it" },
        { "{\"name\":\"a\",\0\"lat\":1,\"lon\":2}", 29,
          "invalid_json: malformed JSON at byte 12" },
        { "{\"name\":\"nul\\u0000tail\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_json: \\u0000 in a string at byte 12: no string may "
          "hold a NUL" },
        { "{\"name\":\"d\",\"lat\":1,\"lat\":999,\"lon\":2}", WHOLE,
          "invalid_json: member \"lat\" is named twice" },
        { "{\"name\":\"d\",\"lat\":1,\"\\u006cat\":999,\"lon\":2}", WHOLE,
          "invalid_json: member \"lat\" is named twice" },
        { "{\"name\":\"d\",\"lat\":1,\"lon\":2,\"x\":[{\"a\":1,\"b\":2,"
          "\"a\":3}]}", WHOLE,
          "invalid_json: member \"a\" is named twice" },
        { "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\","
          "\"coordinates\":[2,1]},\"properties\":{\"name\":\"n\","
          "\"name\":\"m\"}}", WHOLE,
          "invalid_json: member \"name\" is named twice" },
        { "{\"name\":\"big\",\"message_id\":1e999,\"lat\":1,\"lon\":2}",
          WHOLE,
          "invalid_json: the number at byte 27 is not a finite double" },
        { "{\"name\":\"big\",\"lat\":1,\"lon\":2,\"p\":{\"q\":[-1e309]}}",
          WHOLE,
          "invalid_json: the number at byte 40 is not a finite double" },
        { "\xef\xbb\xbf{\"name\":\"bom\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_json: the body starts with a byte order mark; send "
          "UTF-8 without one" },
        { "{\"name\":\"a\",\"lat\":1,\"lon\":2,\"x\":\"\\ud83d\"}", WHOLE,
          "invalid_json: malformed JSON at byte 33" },
        { "{\"name\":\"a\",\"lat\":1,\"lon\":2,\"x\":\"\\ude8c\"}", WHOLE,
          "invalid_json: malformed JSON at byte 33" },
        { "{\"name\":\"a\\u0007\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_message: \"name\" must not hold control characters" },
        { "{\"name\":\"a\xc2\x85\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_message: \"name\" must not hold control characters" },
        { "{\"name\":\"a\x7f\",\"lat\":1,\"lon\":2}", WHOLE,
          "invalid_message: \"name\" must not hold control characters" },
        /* still good */
        { "{\"name\":\"Z\xc3\xbcrich \xf0\x9f\x9a\x8c\\ud83d\\ude8c\","
          "\"lat\":1,\"lon\":2,\"x\":{\"a\":{\"a\":1}},\"y\":[{\"a\":1},"
          "{\"a\":2}],\"z\":1e-999,\"w\":\"\\t\\u001f\x7f\"}", WHOLE,
          "accepted" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        body = cases[i].body;
        len = (cases[i].len == WHOLE) ? strlen(body) : cases[i].len;

        got = refusal(body, len);
        is_str(got, cases[i].want, cases[i].want);

        if (strcmp(cases[i].want, "accepted") != 0) {
            ok(ngx_geostream_position_scan(&f, (const unsigned char *) body,
                                           len) != 0,
               "the fast reader does not take it either");
        }
    }

    /* the same in the batch forms */
    is_str(records_refusal("[{\"name\":\"a\",\"lat\":1,\"lon\":2},"
                           "{\"name\":\"b\",\"lat\":1,\"lat\":2,\"lon\":2}]",
                           0),
           "invalid_json: member \"lat\" is named twice",
           "a member named twice in an array element is refused");
    is_str(records_refusal("[{\"name\":\"a\",\"lat\":1,\"lon\":2,"
                           "\"n\":1e400}]", 0),
           "invalid_json: the number at byte 33 is not a finite double",
           "a number that is not finite in an array element is refused");
    is_str(records_refusal("{\"name\":\"a\",\"lat\":1,\"lon\":2}\n"
                           "{\"name\":\"\xff\",\"lat\":1,\"lon\":2}\n", 1),
           "invalid_json: record 1: invalid UTF-8 at byte 9",
           "an NDJSON line with invalid UTF-8 is refused, by its record");
    is_str(records_refusal("\xef\xbb\xbf[{\"name\":\"a\",\"lat\":1,"
                           "\"lon\":2}]", 0),
           "invalid_json: the body starts with a byte order mark; send "
           "UTF-8 without one", "a batch with a byte order mark is refused");

    ok(ngx_geostream_utf8_valid((const unsigned char *) "\xf4\x8f\xbf\xbf",
                                4)
       && !ngx_geostream_utf8_valid((const unsigned char *) "\xf8\x88\x80"
                                    "\x80\x80", 5)
       && ngx_geostream_utf8_cut((const unsigned char *) "ab\xc3\xbc", 4, 3)
          == 2,
       "UTF-8: the last code point, no 5-byte forms, cut between characters");
}


static void
test_topics(void)
{
    char  long_name[300];

    ok(ngx_geostream_topic_valid((const unsigned char *) "geo.stream_1-a",
                                 14), "a topic of allowed characters");
    ok(!ngx_geostream_topic_valid((const unsigned char *) "", 0),
       "an empty topic is invalid");
    ok(!ngx_geostream_topic_valid((const unsigned char *) ".", 1)
       && !ngx_geostream_topic_valid((const unsigned char *) "..", 2),
       "\".\" and \"..\" are invalid");
    ok(!ngx_geostream_topic_valid((const unsigned char *) "a/b", 3)
       && !ngx_geostream_topic_valid((const unsigned char *) "a b", 3)
       && !ngx_geostream_topic_valid((const unsigned char *) "a\"b", 3),
       "'/', ' ' and '\"' are invalid");

    memset(long_name, 'a', sizeof(long_name));
    ok(ngx_geostream_topic_valid((unsigned char *) long_name, 249)
       && !ngx_geostream_topic_valid((unsigned char *) long_name, 250),
       "249 characters at most");
}


static void
sse_is(const char *id, const char *data, const char *want, const char *name)
{
    char            buf[512];
    size_t          size;
    unsigned char  *end;

    size = ngx_geostream_sse_event_size((const unsigned char *) id,
                                        id ? strlen(id) : 0,
                                        (const unsigned char *) data,
                                        strlen(data));

    end = ngx_geostream_sse_event_write((unsigned char *) buf,
                                        (const unsigned char *) id,
                                        id ? strlen(id) : 0,
                                        (const unsigned char *) data,
                                        strlen(data));
    *end = '\0';

    ok(size == (size_t) ((char *) end - buf), "size matches what is written");
    is_str(buf, want, name);
}


static void
test_sse(void)
{
    sse_is("0:5,1:7", "{\"a\":1}", "id: 0:5,1:7\ndata: {\"a\":1}\n\n",
           "one line with an id");
    sse_is(NULL, "x", "data: x\n\n", "no id");
    sse_is(NULL, "", "data: \n\n", "empty data");
    sse_is(NULL, "a\nb\r\nc\rd", "data: a\ndata: b\ndata: c\ndata: d\n\n",
           "LF, CRLF and CR each split data lines");
    sse_is(NULL, "a\n\nid: 9\nevent: x",
           "data: a\ndata: \ndata: id: 9\ndata: event: x\n\n",
           "a payload cannot end the event or inject fields");
    sse_is(NULL, "a\n", "data: a\n\n", "a trailing line break adds no line");
    sse_is(NULL, "a\r\n\r\n", "data: a\ndata: \n\n",
           "a blank line inside stays a data line");
}


int
main(void)
{
    test_validation();
    test_answers();
    test_reply_escapes();
    test_scan();
    test_geojson();
    test_records();
    test_strict();
    test_topics();
    test_sse();

    return done_testing();
}
